import BinanceSource
import Columnar
import DurableFiles
import Foundation
import FuturesArchive
import JobModel
import JobState
import KlineArchive
import Logging

/// One funding-rate (monthly) or metrics (daily) archive of a job, and the key its rows go to.
public struct FuturesUnit: WorkUnit, Equatable {
    public var address: FuturesArchiveAddress
    public var key: String
    /// The listing's fingerprint; for a period the plan found absent from its listing,
    /// `FuturesUnit.absent`; nil for a period not listed this run.
    public var listing: String?
    /// A month of funding from REST (`to: now`): the monthly archive's address, a `rest/` id.
    public var fromREST = false
    /// Metrics: what the day before has (an end-labelled day carries that day's last period).
    public var dayBefore: DayBefore = .unarchived

    public enum DayBefore: Sendable, Equatable {
        /// Its own archive writes its last period.
        case archived
        /// No archive, between the key's first and last: its gap, which the row may narrow.
        case hole(GapRecord)
        /// No archive, before the key's first (or outside the job).
        case unarchived
    }

    public init(address: FuturesArchiveAddress, key: String, listing: String? = nil) {
        (self.address, self.key, self.listing) = (address, key, listing)
    }

    public var id: String { fromREST ? "rest/" + address.remotePath.dropFirst("data/".count) : address.remotePath }
    package var archive: any PublishedArchive { address }
    package var gapStep: Int64? { fromREST ? nil : address.dataset.slotSeconds }

    /// The fingerprint recorded for a period that its listing did not show: only such a period
    /// is settled as unpublished (a 404 from a CDN that lags its listing is looked at again).
    public static let absent = "absent from the listing"

    /// The slots of the period, as a gap ([first, last] slot starts).
    var wholePeriod: GapRecord {
        GapRecord(key: key, first: address.period.start, last: address.period.end - address.dataset.slotSeconds, state: .unexplained, unit: id)
    }

    /// The gap of the day before when it is a hole: without its last slot when this day's file
    /// holds that period (an end-labelled 00:00 row, kept).
    func gapOfDayBefore(keptItsLastPeriod: Bool) -> GapRecord? {
        guard case var .hole(gap) = dayBefore else { return nil }
        if keptItsLastPeriod { gap.last -= address.dataset.slotSeconds }
        return gap
    }
}

/// The units of a funding-rate or metrics job: symbol x period over the job's range. Funding
/// archives are monthly: one listing of the symbol's folder a run. Metrics archives are daily:
/// the recent months are listed by month every run; older days by year, unless the state says
/// every day of that year is settled (done, or absent from an earlier listing) and no deep check
/// is due (`recheck_days`), so a nightly over years of history costs a few requests a symbol.
/// A period with no archive between the key's first and last archive is a gap of the whole
/// period (binance-public-data #287, #276, #258: metrics days missing); before the first or after
/// the last, a listing or a delisting.
public struct FuturesPlan: Sendable {
    public var keys: [String] = []
    /// Archives listed (or settled in the state): imported, or skipped when done and unchanged.
    public var units: [FuturesUnit] = []
    /// Periods without an archive: recorded as not published.
    public var notPublished: [FuturesUnit] = []
    /// The not-published periods between a key's first and last archive: gaps in the data.
    public var holes: [FuturesUnit] = []
    /// Per key, the periods before its first archive or after its last.
    public var notPublishedRanges: [String: String] = [:]
    /// Keys with no archive in the range (a wrong symbol), or whose listing failed, with why,
    /// and their periods (failed units).
    public var failedKeys: [(key: String, reason: String, periods: [FuturesUnit])] = []
    /// Funding with `to: now`: per key, the months after its last archive (within the recent
    /// months) through the current one, from REST.
    public var restMonths: [[FuturesUnit]] = []
}

/// A futures run's decisions before any work, as `PlannedRun` is for klines.
struct PlannedFuturesRun {
    var dataset: FuturesDataset
    var plan: FuturesPlan
    var work: [FuturesUnit]
    var index: [String: UnitIndexEntry]
    var fetcher: any ArchiveSource
    var binding: PlannedBinding
    var decisions: PlanDecisions
}

extension Planner {
    func planFutures(_ dataset: FuturesDataset, _ options: RunOptions, state: StateRecorder, binding: PlannedBinding, summary: inout RunSummary) async throws -> PlannedFuturesRun {
        let index = await state.index()
        let deepCheck = try await deepCheck(options, state: state)
        let plan = try await makeFuturesPlan(dataset, symbols: try await symbols(), today: options.today, index: index, force: options.force,
                                             deepCheck: deepCheck.due)
        summary.units = plan.units.count + plan.failedKeys.map(\.periods.count).reduce(0, +)
        summary.notPublishedRanges = plan.notPublishedRanges
        let fetcher = makeFetcher()
        let (work, decisions) = await unitsToImport(plan.units, index: index, fetcher: fetcher, state: state, force: options.force, deepCheck: deepCheck,
                                                    summary: &summary)
        return PlannedFuturesRun(dataset: dataset, plan: plan, work: work, index: index, fetcher: fetcher, binding: binding, decisions: decisions)
    }

    /// The plan of every symbol, `spec.listings` symbols at a time, assembled in symbol order. A
    /// symbol whose listing failed fails alone; when every one failed, the source is wrong.
    package func makeFuturesPlan(_ dataset: FuturesDataset, symbols: [String], today: ArchivePeriod, index: [String: UnitIndexEntry], force: Bool = false,
                                 deepCheck: Bool = true) async throws -> FuturesPlan {
        let parts = await inOrder(count: symbols.count, atOnce: spec.listings) { i in
            try await self.planFuturesKey(dataset, symbol: symbols[i], today: today, index: index, force: force, deepCheck: deepCheck)
        }
        if !symbols.isEmpty, case let failures = parts.compactMap(\.failure), failures.count == symbols.count { throw listingMistake(failures[0]) }
        var plan = FuturesPlan()
        for (i, part) in parts.enumerated() {
            switch part {
            case let .success(p):
                plan.keys += p.keys
                plan.units += p.units
                plan.notPublished += p.notPublished
                plan.holes += p.holes
                plan.notPublishedRanges.merge(p.notPublishedRanges) { a, _ in a }
                plan.failedKeys += p.failedKeys
                plan.restMonths += p.restMonths
            case let .failure(error):
                let key = try spec.keys(symbol: symbols[i])[0]
                plan.keys.append(key)
                let periods = try futuresPeriods(dataset, today: today).map { try futuresUnit(dataset, symbols[i], $0, key: key) }
                plan.failedKeys.append((key, "listing the \(dataset.rawValue) archives of \(symbols[i]) failed: \(error)", periods))
            }
        }
        return plan
    }

    /// The periods of the job that can be out by `today`: months before the current one
    /// (funding), days before today (metrics).
    func futuresPeriods(_ dataset: FuturesDataset, today: ArchivePeriod) -> [ArchivePeriod] {
        let months = spec.months(today: today)
        guard !dataset.isMonthly else {
            let current = ArchivePeriod(year: today.year, month: today.month)!
            return months.filter { $0 < current }
        }
        return months.flatMap { PeriodPlanner.days(of: $0).filter { $0 < today } }
    }

    func futuresUnit(_ dataset: FuturesDataset, _ symbol: String, _ period: ArchivePeriod, key: String, listing: String? = nil) throws -> FuturesUnit {
        FuturesUnit(address: try FuturesArchiveAddress(market: spec.market, symbol: symbol, dataset: dataset, period: period), key: key, listing: listing)
    }

    /// One symbol's part of the plan (see `FuturesPlan`).
    func planFuturesKey(_ dataset: FuturesDataset, symbol: String, today: ArchivePeriod, index: [String: UnitIndexEntry], force: Bool,
                        deepCheck: Bool) async throws -> FuturesPlan {
        let key = try spec.keys(symbol: symbol)[0]
        let periods = futuresPeriods(dataset, today: today)
        let lister = makeLister()
        let current = ArchivePeriod(year: today.year, month: today.month)!
        let recentStart = PeriodPlanner.months(back: ImportPlan.recentMonths, from: current)
        // The fingerprint of each period's archive: listed now, or recorded in the state for the
        // days of a settled year.
        var fingerprints: [ArchivePeriod: String] = [:]
        if dataset.isMonthly {
            fingerprints = try await lister.published(market: spec.market, dataset: dataset, symbol: symbol).mapValues(\.fingerprint)
        } else {
            func month(_ day: ArchivePeriod) -> ArchivePeriod { ArchivePeriod(year: day.year, month: day.month)! }
            let old = periods.filter { month($0) < recentStart }
            for year in Set(old.map(\.year)).sorted() {
                let days = old.filter { $0.year == year }
                let entries = try days.map { (day: $0, entry: index[try futuresUnit(dataset, symbol, $0, key: key).id]) }
                let settled = !deepCheck && !force && entries.allSatisfy {
                    $0.entry?.status == .done || ($0.entry?.status == .notPublished && $0.entry?.listing == FuturesUnit.absent)
                }
                if settled {
                    for (day, entry) in entries where entry?.status == .done { fingerprints[day] = entry?.listing ?? "recorded" }
                } else {
                    fingerprints.merge(try await lister.published(market: spec.market, dataset: dataset, symbol: symbol, year: year).mapValues(\.fingerprint)) { a, _ in a }
                }
            }
            for recent in Set(periods.filter { month($0) >= recentStart }.map(month)).sorted() {
                fingerprints.merge(try await lister.published(market: spec.market, dataset: dataset, symbol: symbol, month: recent).mapValues(\.fingerprint)) { a, _ in a }
            }
        }
        var plan = FuturesPlan(keys: [key])
        let found = periods.filter { fingerprints[$0] != nil }
        guard let first = found.first, let last = found.last else {
            if let from = periods.first, let to = periods.last {
                plan.failedKeys.append((key, "no \(dataset.rawValue) archive published for \(symbol) in \(from)..\(to); check the symbol",
                                        try periods.map { try futuresUnit(dataset, symbol, $0, key: key) }))
            }
            return plan
        }
        var before: [ArchivePeriod] = [], after: [ArchivePeriod] = []
        for period in periods {
            if let fingerprint = fingerprints[period] {
                var unit = try futuresUnit(dataset, symbol, period, key: key, listing: fingerprint)
                if !dataset.isMonthly, let dayBefore = periods.last(where: { $0 < period }), dayBefore.start == period.start - 86400 {
                    if fingerprints[dayBefore] != nil {
                        unit.dayBefore = .archived
                    } else if dayBefore > first {
                        unit.dayBefore = .hole(try futuresUnit(dataset, symbol, dayBefore, key: key).wholePeriod)
                    }
                }
                plan.units.append(unit)
                continue
            }
            let absent = try futuresUnit(dataset, symbol, period, key: key, listing: FuturesUnit.absent)
            plan.notPublished.append(absent)
            if period < first { before.append(period) } else if period > last { after.append(period) } else { plan.holes.append(absent) }
        }
        var ranges: [String] = []
        if !before.isEmpty { ranges.append("\(KeyCoverage.span(before)) (before its first archive)") }
        if !after.isEmpty { ranges.append("\(KeyCoverage.span(after)) (after its last archive)") }
        if !ranges.isEmpty { plan.notPublishedRanges[key] = ranges.joined(separator: "; ") }
        // `to: now` (funding): the months after the last archive, within the recent months (a key
        // whose archives ended long ago is delisted, not late), through the current one.
        if spec.toNow, dataset.continuesFromREST {
            let months = try spec.months(today: today).filter { $0 > last && $0 >= recentStart }.map { month -> FuturesUnit in
                var unit = try futuresUnit(dataset, symbol, month, key: key)
                unit.fromREST = true
                return unit
            }
            if !months.isEmpty { plan.restMonths.append(months) }
        }
        return plan
    }
}

extension ImportRunner {
    func printDryRun(_ planned: PlannedFuturesRun, summary: RunSummary) {
        let plan = planned.plan
        printPlanHead("plan for \(spec.name) (\(planned.dataset.rawValue))", units: plan.units.count, work: planned.work, fetcher: planned.fetcher,
                      binding: planned.binding, deepCheck: planned.decisions.deepCheck, summary: summary)
        for (key, ranges) in plan.notPublishedRanges.sorted(by: { $0.key < $1.key }) { print("  not published: \(key): \(ranges)") }
        for hole in plan.holes { print("  gap (no archive): \(hole.key): \(hole.address.period)") }
        for failed in plan.failedKeys { print("  fails: \(failed.key): \(failed.reason)") }
        for months in plan.restMonths {
            guard let first = months.first, let last = months.last else { continue }
            print("  from REST (to: now): \(first.key): \(first.address.period)..\(last.address.period), up to the last funding")
        }
    }

    /// The work: periods without an archive recorded (the holes as gaps), keys that fail as a
    /// whole, then the archives through the pipeline.
    func execute(_ planned: PlannedFuturesRun, state: StateRecorder, writer: Writer, progress: Progress, summary: inout RunSummary) async throws {
        let plan = planned.plan
        await recordNotPublished(plan.notPublished, index: planned.index, state: state)
        summary.notPublished = plan.notPublished.count
        for hole in plan.holes where planned.index[hole.id]?.status != .done {
            // The day after may hold the hole's last period (an end-labelled 00:00 row it kept):
            // its record says so; a day imported this run sets the gap again when decoded.
            var gap = hole.wholePeriod
            if let next = plan.units.first(where: { $0.gapOfDayBefore(keptItsLastPeriod: false)?.unit == hole.id }),
               (await state.record(next.id)?.anomalies?["neighbour_row_kept"] ?? 0) > 0 {
                gap = next.gapOfDayBefore(keptItsLastPeriod: true) ?? gap
            }
            await state.gaps(of: hole.id, [gap])
        }
        var holes: [String: [String]] = [:]
        for hole in plan.holes {
            let period = hole.address.period
            holes[hole.key, default: []] += period.kind == .day ? ["\(period)"] : PeriodPlanner.days(of: period).map { "\($0)" }
        }
        summary.daysInNoArchive = holes.mapValues(daySpans)
        await recordFailedKeys(plan.failedKeys.map { ($0.key, $0.reason, $0.periods) }, state: state, summary: &summary)
        let market = planned.work.first?.address.futuresMarket ?? .um
        do {
            try await runPipeline(work: planned.work, fetcher: planned.fetcher, writer: writer) { unit, result, thread, pieces in
                await self.decodeFutures(unit, result, market: market, on: thread, state: state, progress: progress, into: pieces)
            }
            if !plan.restMonths.isEmpty {
                await progress.add(units: plan.restMonths.map(\.count).reduce(0, +))
                summary.record(try await fillFunding(plan.restMonths, state: state, writer: writer, progress: progress))
            }
            try await writer.flush()
            // REST months whose monthly archive is now done: the archive's rows are the same slots.
            summary.superseded += await RestFiller.supersedeDays(state: state)
        } catch let error as FileWriteError {
            summary.stateError = "\(error)"
        } catch is StopRequested {
            // A signal cut a write short: the summary says so; its units are pending.
        }
    }

    /// Decodes one fetched funding-rate or metrics archive into one piece for the writer (the
    /// archives are small: a month of funding is 3 KB, a day of metrics 30 KB); records failures.
    func decodeFutures(_ unit: FuturesUnit, _ result: Result<FetchResult, Error>, market: FuturesMarket, on thread: DispatchQueue,
                       state: StateRecorder, progress: Progress, into pieces: BoundedQueue<DecodedPiece>) async {
        guard let archive = await fetchedArchive(unit, result, state: state, progress: progress) else { return }
        let dataset = unit.address.dataset, strict = spec.validation == .strict
        do {
            let dayBefore = try await onThread(thread) { () -> GapRecord? in
                let decoded = try FuturesArchiveDecoder.decode(path: archive.path, market: market)
                let (batch, report) = FuturesArchiveDecoder.placeNeighbourRows(decoded.batch, decoded.report, dayBeforeHasArchive: unit.dayBefore == .archived)
                if strict, report.anomalies > 0 { throw StrictValidationFailed(report: report) }
                let rows = RowBatch(batch, dataset)
                var digest = ColumnDigest()
                digest.add(epochs: rows.epochs, columns: rows.columns)
                let size = try FileManager.default.attributesOfItem(atPath: archive.path)[.size] as? UInt64
                // Put from the decode thread: it blocks while the writer is behind.
                pieces.put(DecodedPiece(unit: unit, batch: rows, outcome: UnitOutcome(archive: archive, facts: UnitFacts(report, bytes: size ?? 0), digest: digest)))
                return unit.gapOfDayBefore(keptItsLastPeriod: report.neighbourKept > 0)
            }
            if let dayBefore { await state.gaps(of: dayBefore.unit, [dayBefore]) }
        } catch {
            await state.fail(unit, "\(error)", progress: progress, logger: logger)
        }
    }
}
