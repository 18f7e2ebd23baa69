import BinanceSource
import Columnar
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive
import MarketStoreModel

/// What a run did; printed as a table and written as JSON next to the manifest.
public struct RunSummary: Codable, Sendable {
    public var job: String
    /// The job's dataset (klines, markPriceKlines, ..., fundingRate, metrics).
    public var dataset = "klines"
    public var startedAt: String
    public var seconds: Double = 0
    public var units = 0
    public var done = 0
    public var failed = 0
    public var skipped = 0
    public var notPublished = 0
    public var superseded = 0
    public var rows = 0
    public var anomalies = 0
    public var downloads = 0
    public var writeRequests = 0
    /// Rows written that MarketStore will not serve back (the 1 January row of 1D buckets).
    public var rowsNotServedByMarketStore = 0
    public var rowsPerSecond: Double = 0
    public var exitCode: Int32 = 0
    /// Peak resident memory of the importer process (VmHWM), bytes.
    public var peakRssBytes: Int = 0
    /// Stopped by SIGINT/SIGTERM before the end; a re-run resumes.
    public var interrupted = false
    /// Failed units (or keys, for a symbol with no archive at all) and why.
    public var failures: [String: String] = [:]
    /// The manifest could not be saved (e.g. a full disk); units since the last save are written
    /// again by the next run.
    public var stateError: String?
    /// Per key, the months of the range with no archive before its first one or after its last.
    public var notPublishedRanges: [String: String] = [:]
    /// Per key, the days that a monthly archive lacked and their daily archives supplied in this
    /// run, as ranges ("2024-07-08..2024-07-31").
    public var repairedFromDailyArchives: [String: String] = [:]
    /// Per key, days in no archive: that a monthly kline archive lacks and no daily archive has,
    /// or (metrics) with no daily archive between the key's first and last: gaps in the data.
    public var daysInNoArchive: [String: String] = [:]
    /// Per key, the gaps recorded in the state ("FIRST..LAST unexplained|filled|exchange_gap"),
    /// and their count by state; REST requests made to explain them (`gaps: rest`).
    public var gaps: [String: [String]] = [:]
    public var gapCounts: [String: Int] = [:]
    public var gapRequests = 0
    /// Trades: per key, the holes in its IDs (inside an archive or between two), with their
    /// ranges and time spans (see `TradeContinuity`); any fails the run (exit 1).
    public var idHoles: [String: [String]] = [:]
    public var manifest: String = ""
    /// REST work (`to: now`): requests made, their documented weight, the highest
    /// X-MBX-USED-WEIGHT-1M seen against the run's budget (share x limit), waits for the next
    /// minute, 429 answers, and why REST work stopped (a 418 ban), if it did.
    public var restRequests = 0
    public var restWeight = 0
    public var restMaxUsedWeight1m = 0
    public var restWeightBudget = 0
    public var restBudgetWaits = 0
    public var restRateLimited = 0
    public var restStopped: String?
    /// Per key, rows acknowledged by the target and when the last of them was (UTC s).
    public var rowsByKey: [String: Int] = [:]
    public var lastWriteByKey: [String: Double] = [:]
    public var requestsByKey: [String: Int] = [:]
    /// Refused or failed write requests by kind (schema, timeframe, refused, directory, transport).
    public var writeErrors: [String: Int] = [:]
    /// Funding rates and metrics: rows adjusted by the stated rules, by kind
    /// (`shifted_to_period_start`: USDⓈ-M metrics labelled by the end of their 5 minutes before
    /// 2026-06-25; `outside_period_dropped`: a row of the neighbouring file's period, which that
    /// file writes; `off_slot_floored`: a funding time a few ms after the hour).
    public var adjusted: [String: Int] = [:]

    public var table: String {
        let lines: [(String, String)] = [
            ("units", "\(units)"), ("done", "\(done)"), ("failed", "\(failed)"), ("skipped (already done)", "\(skipped)"),
            ("not published", "\(notPublished)"), ("superseded", "\(superseded)"), ("rows written", "\(rows)"),
            ("anomalies", "\(anomalies)"), ("downloads", "\(downloads)"), ("write requests", "\(writeRequests)"),
            ("rows MarketStore will not serve (1 Jan, 1D)", "\(rowsNotServedByMarketStore)"),
            ("time", String(format: "%.1f s", seconds)), ("rows/s", String(format: "%.0f", rowsPerSecond)),
        ] + (restRequests == 0 ? [] : [
            ("REST requests (weight)", "\(restRequests) (\(restWeight))"),
            ("REST weight used per minute (budget)", "at most \(restMaxUsedWeight1m) (\(restWeightBudget))"),
        ])
        let width = lines.map(\.0.count).max() ?? 0
        var out = lines.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }
        if let stateError { out.append("manifest not saved: \(stateError)") }
        if let restStopped { out.append("REST stopped: \(restStopped)") }
        for (key, days) in repairedFromDailyArchives.sorted(by: { $0.key < $1.key }).prefix(50) { out.append("repaired from daily archives: \(key) \(days)") }
        for (key, days) in daysInNoArchive.sorted(by: { $0.key < $1.key }).prefix(50) { out.append("in no archive: \(key) \(days)") }
        if !adjusted.isEmpty { out.append("adjusted by rule: " + adjusted.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")) }
        if !gapCounts.isEmpty {
            out.append("gaps in the archives: " + gapCounts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                       + (gapCounts["unexplained", default: 0] > 0 && !["fundingRate", "metrics"].contains(dataset) ? " (gaps: rest, or --confirm-gaps, asks REST about them)" : ""))
        }
        for (key, list) in idHoles.sorted(by: { $0.key < $1.key }).prefix(20) {
            out.append("ID holes: \(key): \(list.prefix(5).joined(separator: "; "))\(list.count > 5 ? "; ... (\(list.count))" : "")")
        }
        for (key, list) in idHoles.sorted(by: { $0.key < $1.key }).prefix(20) { out.append("ID holes: \(key): \(list.prefix(5).joined(separator: "; "))\(list.count > 5 ? "; ... (\(list.count))" : "")") }
        for (key, list) in gaps.sorted(by: { $0.key < $1.key }).prefix(20) { out.append("gaps: \(key): \(list.prefix(5).joined(separator: "; "))\(list.count > 5 ? "; ... (\(list.count))" : "")") }
        for (key, gaps) in notPublishedRanges.sorted(by: { $0.key < $1.key }).prefix(50) { out.append("not published: \(key): \(gaps)") }
        if notPublishedRanges.count > 50 { out.append("... and \(notPublishedRanges.count - 50) more keys with months not published (see the report)") }
        for (id, error) in failures.sorted(by: { $0.key < $1.key }).prefix(20) { out.append("failed: \(id): \(error)") }
        if failures.count > 20 { out.append("... and \(failures.count - 20) more failures (see the manifest)") }
        return out.joined(separator: "\n")
    }

    /// The report as JSON; throws rather than write an empty report (a value JSON cannot hold).
    public func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }
}

/// Sorted `YYYY-MM-DD` days as ranges of consecutive days: "2024-07-08..2024-07-31, 2024-08-02".
package func daySpans(_ days: [String]) -> String {
    let periods = Set(days.compactMap(ArchivePeriod.init(day:))).sorted()
    var spans: [(ArchivePeriod, ArchivePeriod)] = []
    for day in periods {
        if let last = spans.last, PeriodPlanner.day(after: last.1) == day { spans[spans.count - 1].1 = day } else { spans.append((day, day)) }
    }
    return spans.map { $0 == $1 ? "\($0)" : "\($0)..\($1)" }.joined(separator: ", ")
}

/// Peak resident set of this process (VmHWM from /proc/self/status), or 0 where unavailable.
package func peakRSS() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else { return 0 }
    return kb * 1024
}
