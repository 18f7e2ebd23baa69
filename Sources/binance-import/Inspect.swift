import ArgumentParser
import Columnar
import Foundation
import FuturesArchive
import KlineArchive
import TradeArchive

/// `binance-import inspect ARCHIVE.zip`: decode one archive and print its validation report.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode one archive (klines, funding rates, futures metrics, trades or aggTrades) and print its validation report.",
        discussion: "Exits 1 when the archive does not decode (the reason is printed), and, with --strict, when it has anomalies."
    )

    @Argument(help: "A Binance archive: klines (SYMBOL-INTERVAL-YYYY-MM[-DD].zip), funding rates (SYMBOL-fundingRate-YYYY-MM.zip), metrics (SYMBOL-metrics-YYYY-MM-DD.zip), trades or aggTrades (SYMBOL-trades-YYYY-MM[-DD].zip).")
    var archive: String

    @Option(help: "Kline interval (1s, 1m, ... 1d); default: from the file name.")
    var interval: String?

    @Option(help: "Float width of price and volume columns: float32 or float64.")
    var dtype: FloatType = .float32

    @Option(help: "Columns, comma-separated (Open,High,Low,Close,Volume,QuoteVolume,Trades,TakerBuyBaseVolume,TakerBuyQuoteVolume).")
    var columns: String = "Open,High,Low,Close,Volume"

    @Option(help: "Inflater: isal (default, fast) or zlib (the reference), to cross-check an archive.")
    var inflater: InflateEngine = .isal

    @Option(help: "Print the first N rows as parsed.")
    var head: Int = 0

    @Flag(help: "Fail (exit 1) on any anomaly, as the `strict` validation policy does.")
    var strict = false

    @Flag(help: "Print JSON for scripts instead of text.")
    var json = false

    func validate() throws {
        if let interval, KlineInterval(interval) == nil {
            throw ValidationError("unknown interval '\(interval)'; expected one of \(KlineInterval.all.map(\.name).joined(separator: " "))")
        }
        for name in columns.split(separator: ",") where KlineColumn(name: String(name)) == nil {
            throw ValidationError("unknown column '\(name)'; expected \(KlineColumn.allCases.map(\.rawValue).joined(separator: ","))")
        }
        guard head >= 0 else { throw ValidationError("--head must be >= 0") }
    }

    @Option(help: "The archive's market: spot, um (USDⓈ-M) or cm (COIN-M); default: from its path (data/spot/..., data/futures/um/...). A trades archive's columns depend on it; a metrics archive follows its market's labelling (um labelled the end of each 5 minutes before 2026-06-25; default um).")
    var market: TradeMarket?

    /// The market the option or the archive's path names.
    var archiveMarket: TradeMarket? {
        if let market { return market }
        for (folder, market) in [("/spot/", TradeMarket.spot), ("/futures/um/", .um), ("/futures/cm/", .cm)] where archive.contains(folder) { return market }
        return nil
    }

    func run() throws {
        if let name = TradeArchiveName(fileName: archive) { return try inspectTrades(name) }
        if FuturesArchiveName(fileName: archive) != nil { return try inspectFutures() }
        let options = KlineDecodeOptions(
            interval: interval.flatMap(KlineInterval.init),
            columns: columns.split(separator: ",").compactMap { KlineColumn(name: String($0)) },
            floatType: dtype,
            policy: strict ? .strict : .report,
            inflater: inflater)
        var report: KlineReport
        var batch: KlineBatch?
        do {
            if head > 0 {
                let decoded = try KlineArchiveDecoder.decode(path: archive, options: options)
                (batch, report) = (decoded.batch, decoded.report)
            } else {
                report = try KlineArchiveDecoder.stream(path: archive, options: options, chunkRows: 65536) { _ in }
            }
        } catch KlineDecodeError.strict(_, let failed) {
            print(json ? try reportJSON(failed, nil) : ReportText.render(failed, nil))
            FileHandle.standardError.write(Data("error: \(archive): strict validation failed\n".utf8))
            throw ExitCode(1)
        }
        print(json ? try reportJSON(report, batch) : ReportText.render(report, batch.map { headRows($0) }))
    }

    /// A funding-rate or metrics archive: its report (and first rows), as text or JSON.
    private func inspectFutures() throws {
        let market: FuturesMarket
        switch archiveMarket ?? .um {
        case .um: market = .um
        case .cm: market = .cm
        case .spot: throw ValidationError("--market spot: funding rates and metrics are futures archives (um or cm)")
        }
        let (batch, report) = try FuturesArchiveDecoder.decode(path: archive, market: market, inflater: inflater)
        let names = report.dataset.columns.map(\.name)
        let head = Self.rows(epochs: batch.epochs, columns: Array(zip(names, batch.columns)), count: min(self.head, batch.count))
        if json {
            print(try Self.json(report, adding: self.head > 0 ? ["head": head] : [:]))
        } else {
            var lines = ["archive: \(report.archive)", "dataset: \(report.dataset.rawValue) (\(report.symbol), \(report.period))",
                         "rows: \(report.rows) of \(report.csvRows) read"]
            if report.dataset.hasLabelConvention { lines.append("labels: \(report.labels.rawValue)") }
            if let first = report.firstEpoch, let last = report.lastEpoch { lines.append("first..last: \(UTCCalendar.iso8601(first))..\(UTCCalendar.iso8601(last))") }
            if report.dataset.hasLabelConvention { lines[lines.count - 1] += report.labelsFrom == .content ? " (read from the rows)" : " (by the file's date)" }
            if report.labelsContradictDate { lines.append("labels: the rows contradict the file's date (2026-06-25 change): read by the rows") }
            for (label, n) in [("shifted to the period start", report.shifted), ("the day before's last period (its own archive writes it when it has one)", report.neighbourRows),
                               ("outside the archive's period (dropped)", report.outsidePeriod),
                               ("duplicates (last kept)", report.duplicates), ("times taken to their slot (under a second off)", report.offSlot),
                               ("times off their slot (floored)", report.offHour),
                               ("empty values (NaN)", report.emptyValues), ("nan or inf values (NaN)", report.notANumber), ("missing slots", report.missingSlots)] where n > 0 {
                lines.append("\(label): \(n)")
            }
            for time in report.offHourTimes { lines.append("off its slot: \(time)") }
            for gap in report.gaps.prefix(20) { lines.append("gap: \(gap)") }
            for change in report.intervalChanges { lines.append("funding interval: \(change)") }
            if let column = report.intervalColumn { lines.append("funding interval column: \(column.rawValue)") }
            for row in head { lines.append((["Epoch"] + names).map { "\($0)=\(row[$0] ?? "")" }.joined(separator: " ")) }
            print(lines.joined(separator: "\n"))
        }
        if strict, report.anomalies > 0 {
            FileHandle.standardError.write(Data("error: \(archive): strict validation failed\n".utf8))
            throw ExitCode(1)
        }
    }

    private func headRows(_ batch: KlineBatch) -> KlineBatch {
        let n = min(head, batch.count)
        return KlineBatch(epochs: Array(batch.epochs.prefix(n)), columns: batch.columns.map { c in (c.column, c.values.slice(0..<n)) })
    }

    private func reportJSON(_ report: KlineReport, _ batch: KlineBatch?) throws -> String {
        var extra: [String: Any] = ["header": report.header]
        if let batch {
            extra["head"] = Self.rows(epochs: batch.epochs, columns: batch.columns.map { ($0.column.rawValue, $0.values) }, count: min(head, batch.count))
        }
        return try Self.json(report, adding: extra)
    }

    /// The first `count` rows as JSON objects: Epoch and each named column.
    static func rows(epochs: [Int64], columns: [(String, ColumnValues)], count: Int) -> [[String: Any]] {
        (0..<count).map { i in
            var row: [String: Any] = ["Epoch": epochs[i]]
            for (name, values) in columns {
                switch values {
                // JSON has no NaN or infinity: such a value (an empty metrics field) is null.
                case let .float32(v): row[name] = v[i].isFinite ? Double(v[i]) : NSNull()
                case let .float64(v): row[name] = v[i].isFinite ? v[i] : NSNull()
                case let .int64(v): row[name] = v[i]
                case let .int32(v): row[name] = Int(v[i])
                case let .int8(v): row[name] = Int(v[i])
                case let .uint8(v): row[name] = Int(v[i])
                }
            }
            return row
        }
    }

    /// A report as snake_case JSON, with `extra` fields added, sorted and indented.
    static func json(_ report: some Encodable, adding extra: [String: Any]) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard var object = try JSONSerialization.jsonObject(with: encoder.encode(report)) as? [String: Any] else { throw ExitCode(1) }
        object.merge(extra) { _, new in new }
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]), as: UTF8.self)
    }
}

// Options typed by the parser: a wrong value is a usage error (exit 2) that lists the choices.
extension FloatType: ExpressibleByArgument {}
extension InflateEngine: ExpressibleByArgument {}
extension TradeMarket: ExpressibleByArgument {}
