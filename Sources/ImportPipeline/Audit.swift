import BinanceSource
import Columnar
import Foundation
import JobModel
import JobState
import KlineArchive
import Logging

/// `audit`: whether the sources agree with each other and the target with the state.
/// - A done monthly kline archive against the daily archives of its month, row by row and column
///   by column (every column of the CSV, parsed as float64): rows one has and the other lacks,
///   and values that differ, for the days with a daily archive.
/// - The target against the state (`verify`'s comparison).
/// Results are kept per monthly archive in `<manifest>.audit.json` with the checksums they were
/// made from, so a re-run audits only archives that changed or were not audited yet.
package struct Auditor {
    package struct Disagreement: Codable, Equatable, Sendable, CustomStringConvertible {
        /// `value`, `missing_in_monthly` (a daily row the monthly lacks), `extra_in_monthly` (a
        /// monthly row the daily lacks), `target_vs_state`.
        package var kind: String
        package var unit: String
        package var openTime: String?
        package var column: String?
        package var monthly: String?
        package var daily: String?
        package var detail: String?

        package var description: String {
            var parts = ["\(kind)", unit]
            if let openTime { parts.append(openTime) }
            if let column { parts.append(column) }
            if monthly != nil || daily != nil { parts.append("monthly \(monthly ?? "-"), daily \(daily ?? "-")") }
            if let detail { parts.append(detail) }
            return parts.joined(separator: " ")
        }
    }

    /// One monthly archive's audit, kept between runs.
    package struct MonthlyAudit: Codable, Equatable, Sendable {
        package var monthlySHA256: String?
        /// Each daily archive compared: its listing fingerprint.
        package var dailies: [String: String]
        package var daysWithoutDaily: [String]
        package var disagreements: [Disagreement]
    }

    package struct Report: Codable, Sendable {
        package var auditedNow: [String] = []
        package var reused: [String] = []
        package var unitsChecked: Int = 0
        package var disagreements: [Disagreement] = []
        package var daysWithoutDaily: [String: [String]] = [:]
        /// Trades archives that `--trades` found no archive for.
        package var tradesNotPublished: [String] = []
    }

    package let spec: JobSpec
    package let planner: Planner
    package let logger: Logger

    package init(spec: JobSpec, logger: Logger, listing: (any FolderListing)? = nil, archives: (any ArchiveSource)? = nil) {
        self.spec = spec
        self.logger = logger
        planner = Planner(spec: spec, logger: logger, listing: listing, archives: archives)
    }

    /// At most `n` of `items`, spread evenly over them (all of them when n is nil or enough).
    static func spread<T>(_ items: [T], _ n: Int?) -> [T] {
        guard let n, n < items.count else { return items }
        let step = Double(items.count) / Double(max(1, n))
        return (0..<max(1, n)).map { items[Int(Double($0) * step)] }
    }

    /// At most `n` of the done archive units (not REST) that `isArchive` accepts, by id, spread.
    static func sampledArchives(_ manifest: Manifest, _ n: Int?, _ isArchive: (UnitRecord) -> Bool) -> [UnitRecord] {
        spread(manifest.units.values.filter { $0.status == .done && !$0.isREST && isArchive($0) }.sorted { $0.id < $1.id }, n)
    }

    package static func recordPath(_ manifest: String) -> String { Manifest.databasePath(manifest) + ".audit.json" }

    /// Audits the job's done monthly kline archives (`sample`: at most that many, spread over the
    /// job's units) and, unless `target` is false, the target against the state.
    package func audit(sample: Int? = nil, target: Bool = true, restDays: Int = 0, restClient: RestClient? = nil, tradeDays: Int = 0) async throws -> Report {
        guard spec.dataset is KlineDataset || spec.dataset is FundingRates else {
            throw JobFileError(file: spec.file, key: "dataset", reason: "audit compares kline and funding-rate archives in this version, not \(spec.dataset.name)")
        }
        let manifest = try Manifest.load(path: spec.manifest, job: spec.name)
        let monthlies = Self.sampledArchives(manifest, sample) { !$0.isDaily && KlineArchiveName(fileName: $0.id) != nil }
        var kept = (try? JSONDecoder().decode([String: MonthlyAudit].self, from: Data(contentsOf: URL(fileURLWithPath: Self.recordPath(spec.manifest))))) ?? [:]
        var report = Report()
        let lister = planner.makeLister(), fetcher = planner.makeFetcher()
        for record in monthlies {
            guard let name = KlineArchiveName(fileName: record.id),
                  let address = try? ArchiveAddress(market: spec.market, symbol: name.symbol, interval: name.interval, period: name.period, dataset: spec.dataset as? KlineDataset ?? .klines)
            else { continue }
            let dailies = try await lister.published(market: spec.market, dataset: address.dataset, symbol: name.symbol, interval: name.interval, daily: true, month: name.period)
            let fingerprints = Dictionary(uniqueKeysWithValues: dailies.map { ("\($0.key)", $0.value.fingerprint) })
            if let previous = kept[record.id], previous.monthlySHA256 == record.sha256, previous.dailies == fingerprints {
                report.reused.append(record.id)
                report.disagreements += previous.disagreements
                if !previous.daysWithoutDaily.isEmpty { report.daysWithoutDaily[record.id] = previous.daysWithoutDaily }
                continue
            }
            let audit = try await compare(record.id, address, dailies: dailies, fingerprints: fingerprints, fetcher: fetcher)
            kept[record.id] = audit
            report.auditedNow.append(record.id)
            report.disagreements += audit.disagreements
            if !audit.daysWithoutDaily.isEmpty { report.daysWithoutDaily[record.id] = audit.daysWithoutDaily }
            // Kept after each archive: a stopped audit resumes where it stopped.
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            try encoder.encode(kept).write(to: URL(fileURLWithPath: Self.recordPath(spec.manifest)), options: .atomic)
        }
        if restDays > 0 {
            report.disagreements += try await compareWithREST(days: restDays, manifest: manifest, client: restClient ?? spec.restClient())
        }
        if tradeDays > 0 {
            let (found, skipped) = try await compareWithTrades(days: tradeDays, manifest: manifest)
            report.disagreements += found
            report.tradesNotPublished = skipped
        }
        if target {
            let (checked, differences) = try await JobVerifier(spec: spec).verify()
            report.unitsChecked = checked
            report.disagreements += differences.map { Disagreement(kind: "target_vs_state", unit: $0.unit, detail: $0.detail) }
        }
        return report
    }

    /// One monthly archive against its month's daily archives.
    func compare(_ id: String, _ monthly: ArchiveAddress, dailies: [ArchivePeriod: ListedFile], fingerprints: [String: String],
                 fetcher: any ArchiveSource) async throws -> MonthlyAudit {
        let options = KlineDecodeOptions(interval: monthly.interval, columns: KlineColumn.allCases, floatType: .float64)
        guard case let .ready(monthArchive) = try await fetcher.fetch(monthly) else {
            throw SourceError.io(path: monthly.remotePath, reason: "the monthly archive is no longer published")
        }
        let month = try KlineArchiveDecoder.decode(path: monthArchive.path, options: options).batch
        var audit = MonthlyAudit(monthlySHA256: monthArchive.sha256, dailies: fingerprints, daysWithoutDaily: [], disagreements: [])
        for day in PeriodPlanner.days(of: monthly.period) {
            guard dailies[day] != nil else {
                audit.daysWithoutDaily.append("\(day)")
                continue
            }
            let address = try ArchiveAddress(market: monthly.market, symbol: monthly.symbol, interval: monthly.interval, period: day, dataset: monthly.dataset)
            guard case let .ready(dayArchive) = try await fetcher.fetch(address) else {
                audit.daysWithoutDaily.append("\(day)")
                continue
            }
            let daily = try KlineArchiveDecoder.decode(path: dayArchive.path, options: options).batch
            audit.disagreements += Self.compare(RowBatch(month), RowBatch(daily), within: day.start..<day.end, unit: id, names: ("monthly", "daily"),
                                                other: address.fileName)
        }
        return audit
    }

    /// The rows of `a` and `b` with times in `range`, row by row and column by column (the
    /// columns `a` and `b` both have): `value` (a column differs), `missing_in_<a>` and
    /// `extra_in_<a>` (a row only `b`, or only `a`, has); `other` names `b`'s source in the details.
    static func compare(_ a: RowBatch, _ b: RowBatch, within range: Range<Int64>, unit: String, names: (String, String), other: String) -> [Disagreement] {
        func rows(_ batch: RowBatch) -> [Int64: Int] {
            Dictionary(batch.epochs.enumerated().filter { range.contains($0.element) }.map { ($1, $0) }, uniquingKeysWith: { _, last in last })
        }
        let (aRows, bRows) = (rows(a), rows(b))
        let shared = a.columns.compactMap { column in b.columns.first { $0.name == column.name }.map { (column.name, column.values, $0.values) } }
        var out: [Disagreement] = []
        for epoch in Set(aRows.keys).union(bRows.keys).sorted() {
            let time = UTCCalendar.iso8601(epoch)
            switch (aRows[epoch], bRows[epoch]) {
            case let (i?, j?):
                for (name, mine, theirs) in shared {
                    let (x, y) = (mine.double(at: i), theirs.double(at: j))
                    if x == y || (x.isNaN && y.isNaN) { continue }
                    var d = Disagreement(kind: "value", unit: unit, openTime: time, column: name, detail: names.0 == "monthly" ? nil : "against \(other)")
                    (d.monthly, d.daily) = (mine.text(at: i), theirs.text(at: j))
                    out.append(d)
                }
            case (nil, _?):
                out.append(Disagreement(kind: "missing_in_\(names.0)", unit: unit, openTime: time, detail: "in \(other)"))
            case (_?, nil):
                out.append(Disagreement(kind: "extra_in_\(names.0)", unit: unit, openTime: time, detail: "not in \(other)"))
            case (nil, nil):
                break
            }
        }
        return out
    }

    /// Archives against Binance's REST klines for `days` days of the job's done units (spread
    /// over them: a monthly's 15th, a daily's own day), one request or two a day, within the
    /// job's REST weight budget. For a value, `monthly` holds the archive's and `daily` REST's.
    package func compareWithREST(days: Int, manifest: Manifest, client: RestClient) async throws -> [Disagreement] {
        if spec.dataset is FundingRates { return try await compareFundingWithREST(months: days, manifest: manifest, client: client) }
        guard days > 0, let dataset = spec.dataset as? KlineDataset else { return [] }
        let units = Self.sampledArchives(manifest, days) { KlineArchiveName(fileName: $0.id) != nil }
        let fetcher = planner.makeFetcher()
        var out: [Disagreement] = []
        for record in units {
            guard let name = KlineArchiveName(fileName: record.id), let seconds = name.interval.seconds, seconds <= 86400,
                  let address = try? ArchiveAddress(market: spec.market, symbol: name.symbol, interval: name.interval, period: name.period, dataset: dataset),
                  let day = name.period.kind == .day ? name.period : ArchivePeriod(year: name.period.year, month: name.period.month, day: 15),
                  case let .ready(archive) = try await fetcher.fetch(address) else { continue }
            let options = KlineDecodeOptions(interval: name.interval, columns: KlineColumn.allCases, floatType: .float64)
            let rows = try KlineArchiveDecoder.decode(path: archive.path, options: options).batch
            let klines = try await client.klines(dataset: dataset, instrument: name.symbol, interval: name.interval, fromMs: day.start * 1000, toMs: day.end * 1000 - 1)
            var csv: [UInt8] = []
            for kline in klines { csv += Array(kline.csvLine.utf8) + [0x0A] }
            let rest = try KlineArchiveDecoder.decodeCSV(csv, source: "REST \(name.symbol) \(day)", options: KlineDecodeOptions(interval: name.interval, period: day,
                                                                                                                        columns: KlineColumn.allCases, floatType: .float64)).batch
            out += Self.compare(RowBatch(rows), RowBatch(rest), within: day.start..<day.end, unit: record.id, names: ("archive", "REST"), other: "REST \(day)")
        }
        return out
    }
}
