import ArgumentParser
import Columnar
import Foundation
import KlineArchive
import TradeArchive

extension Inspect {
    /// A trades or aggTrades archive, decoded as it streams: its report (ID range, holes, time
    /// unit) and first rows, as text or JSON.
    func inspectTrades(_ name: TradeArchiveName) throws {
        guard let market = archiveMarket else {
            throw ValidationError("\(archive): give --market spot, um or cm (a trades archive's columns depend on its market; its path does not say)")
        }
        var firstRows: [[String: Any]] = []
        let wanted = head
        let layout = TradeLayout(dataset: name.dataset, market: market)
        let report: TradeReport
        switch dtype {
        case .float32:
            report = try TradeArchiveDecoder.decode(path: archive, market: market, as: Float.self, inflater: inflater) { firstRows += Self.rows($0, layout, wanted - firstRows.count) }
        case .float64:
            report = try TradeArchiveDecoder.decode(path: archive, market: market, as: Double.self, inflater: inflater) { firstRows += Self.rows($0, layout, wanted - firstRows.count) }
        }
        if json {
            print(try Self.json(report, adding: head > 0 ? ["head": firstRows] : [:]))
        } else {
            print(Self.text(report, head: firstRows, columns: Self.columnNames(layout)))
        }
        if strict, report.holeCount + report.outOfOrder + report.timeBackwards + report.outsidePeriod > 0 {
            FileHandle.standardError.write(Data("error: \(archive): strict validation failed\n".utf8))
            throw ExitCode(1)
        }
    }

    /// The columns a trade row is shown with (MarketStore's names).
    static func columnNames(_ layout: TradeLayout) -> [String] {
        var names = ["Epoch", "Nanoseconds", "Price", "Qty"]
        if let amount = layout.amountName { names.append(amount) }
        names += layout.dataset == .trades ? ["TradeID"] : ["AggTradeID", "FirstTradeID", "LastTradeID"]
        names.append("IsBuyerMaker")
        if layout.hasBestMatch { names.append("IsBestMatch") }
        return names
    }

    /// The first `count` rows of a chunk (those --head still wants).
    static func rows<F: KlineFloat>(_ batch: TradeBatch<F>, _ layout: TradeLayout, _ count: Int) -> [[String: Any]] {
        (0..<batch.count).prefix(max(0, count)).map { i in
            var row: [String: Any] = ["Epoch": batch.epochs[i], "Nanoseconds": Int(batch.nanoseconds[i]), "Price": Double(batch.prices[i]),
                                      "Qty": Double(batch.quantities[i]), "IsBuyerMaker": batch.buyerMaker[i]]
            if let amount = layout.amountName { row[amount] = Double(batch.amounts[i]) }
            if batch.firstTradeIDs.isEmpty { row["TradeID"] = batch.ids[i] } else {
                row["AggTradeID"] = batch.ids[i]
                row["FirstTradeID"] = batch.firstTradeIDs[i]
                row["LastTradeID"] = batch.lastTradeIDs[i]
            }
            if !batch.bestMatch.isEmpty { row["IsBestMatch"] = batch.bestMatch[i] }
            return row
        }
    }

    /// A time in µs as ISO 8601 with its microseconds.
    static func iso(micros: Int64) -> String {
        let seconds = floorDiv(micros, 1_000_000)
        return String(UTCCalendar.iso8601(seconds).dropLast()) + String(format: ".%06dZ", micros - seconds * 1_000_000)
    }

    static func text(_ report: TradeReport, head: [[String: Any]], columns: [String]) -> String {
        var lines = ["archive: \(report.archive)", "dataset: \(report.dataset.rawValue) (\(report.symbol), \(report.period), \(report.market.rawValue))",
                     "rows: \(report.rows)", "header: \(report.hasHeader ? "yes" : "no")"]
        if let unit = report.timeUnit { lines.append("times in: \(unit.rawValue)") }
        if let first = report.firstMicros, let last = report.lastMicros { lines.append("first..last: \(iso(micros: first))..\(iso(micros: last))") }
        if let first = report.firstID, let last = report.lastID {
            lines.append("\(report.dataset == .trades ? "trade" : "aggregate") IDs: \(first)..\(last)")
        }
        if let first = report.firstTradeID, let last = report.lastTradeID { lines.append("trade IDs: \(first)..\(last)") }
        lines.append(report.holeCount == 0 ? "ID holes: none" : "ID holes: \(report.holeCount) (\(report.idsMissing) IDs missing)")
        for hole in report.holes.prefix(20) {
            lines.append("hole: \(hole.kind) \(hole.first)..\(hole.last) (\(hole.count) missing) between \(iso(micros: hole.afterMicros)) and \(iso(micros: hole.beforeMicros))")
        }
        if report.holeCount > 20 { lines.append("... and \(report.holeCount - 20) more holes (--json lists the first \(TradeReport.maxListedHoles))") }
        for (label, n) in [("IDs repeated or stepping back", report.outOfOrder), ("times stepping back", report.timeBackwards),
                           ("rows outside the archive's period (kept)", report.outsidePeriod)] where n > 0 {
            lines.append("\(label): \(n)")
        }
        for row in head { lines.append(columns.map { "\($0)=\(row[$0].map { "\($0)" } ?? "")" }.joined(separator: " ")) }
        return lines.joined(separator: "\n")
    }
}
