import Columnar
import KlineArchive

/// The human form of a validation report (and of the first rows).
enum ReportText {
    static func render(_ r: KlineReport, _ head: KlineBatch?) -> String {
        var out: [String] = []
        out.append("archive     \(r.archive)")
        out.append("member      \(r.member) (\(r.csvBytes) bytes of CSV)")
        let name = [r.symbol, r.interval, r.period].compactMap { $0 }.joined(separator: "  ")
        out.append("kline       \(name)")
        out.append("rows        \(r.rows) distinct open times, \(r.rowsInFile) lines of data"
            + (r.expectedRows.map { ", \($0) expected" } ?? ""))
        if let first = r.firstOpenTime, let last = r.lastOpenTime {
            out.append("open times  \(UTCCalendar.iso8601(first)) .. \(UTCCalendar.iso8601(last)) (\(first) .. \(last))")
        }
        out.append("time unit   \(r.timeUnit ?? "-"), header line: \(r.header ? "yes" : "no")")
        if r.anomalies.isEmpty {
            out.append("anomalies   none")
        } else {
            out.append("anomalies   \(r.anomalyCount)")
            for a in r.anomalies {
                out.append("  \(a.kind.rawValue): \(a.count)")
                for ex in a.examples {
                    out.append("    " + (ex.line > 0 ? "line \(ex.line): " : "") + ex.detail)
                }
            }
        }
        if let head, head.count > 0 {
            out.append("")
            let header = ["Epoch", "UTC"] + head.columns.map(\.column.rawValue)
            var rows = [header]
            for i in 0..<head.count {
                var row = [String(head.epochs[i]), UTCCalendar.iso8601(head.epochs[i])]
                for c in head.columns { row.append(c.values.text(at: i)) }
                rows.append(row)
            }
            let widths = header.indices.map { k in rows.map { $0[k].count }.max() ?? 0 }
            for row in rows {
                out.append(row.enumerated().map { k, cell in
                    String(repeating: " ", count: widths[k] - cell.count) + cell
                }.joined(separator: "  "))
            }
        }
        return out.joined(separator: "\n")
    }
}
