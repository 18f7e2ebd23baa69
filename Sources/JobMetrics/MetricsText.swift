import Foundation

/// Metrics in Prometheus' text exposition format (0.0.4), the format node_exporter's textfile
/// collector reads. Written by hand: a few counters and gauges do not need a metrics library.
package struct MetricsText {
    private var lines: [String] = []

    package init() {}

    /// One metric family: its HELP and TYPE lines, then a sample per label set.
    package mutating func add(_ name: String, _ type: String, _ help: String, _ samples: [([(String, String)], Double)]) {
        guard !samples.isEmpty else { return }
        lines.append("# HELP \(name) \(help)")
        lines.append("# TYPE \(name) \(type)")
        for (labels, value) in samples { lines.append(Self.sample(name, labels, value)) }
    }

    package mutating func appendRaw(_ line: String) { lines.append(line) }

    /// `name{label="value",...} number`.
    package static func sample(_ name: String, _ labels: [(String, String)], _ value: Double) -> String {
        let text = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(escape($0.1))\"" }.joined(separator: ",") + "}"
        return "\(name)\(text) \(number(value))"
    }

    package var text: String { lines.joined(separator: "\n") + "\n" }

    /// Label values escape backslash, double quote and newline.
    package static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Go's ParseFloat spellings, which Prometheus reads: NaN, +Inf, -Inf (Swift prints nan, inf).
    package static func number(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v < 0 ? "-Inf" : "+Inf" }
        return v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}

extension MetricsText {
    /// The write counters `run`/`nightly` (metrics file) and `follow` (/metrics) share.
    package mutating func addWrites(job: [(String, String)], _ w: WriteCounters) {
        add("binance_import_rows_written_total", "counter", "Rows acknowledged by the target.",
            [(job, Double(w.rowsByKey.values.reduce(0, +)))] + w.rowsByKey.sorted { $0.key < $1.key }.map { (job + [("key", $0.key)], Double($0.value)) })
        add("binance_import_write_requests_total", "counter", "Write requests sent (per key: acknowledged ones that carried its rows).",
            [(job, Double(w.requests))] + w.requestsByKey.sorted { $0.key < $1.key }.map { (job + [("key", $0.key)], Double($0.value)) })
        add("binance_import_write_errors_total", "counter", "Write requests refused or failed, by kind.",
            WriteErrorKind.allCases.map { (job + [("kind", $0.rawValue)], Double(w.errorsByKind[$0] ?? 0)) })
        add("binance_import_last_write_timestamp_seconds", "gauge", "When the target last acknowledged rows of the key (UTC).",
            w.lastWriteByKey.sorted { $0.key < $1.key }.map { (job + [("key", $0.key)], $0.value) })
    }
}
