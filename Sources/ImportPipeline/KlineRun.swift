import BinanceSource
import Columnar
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive

// The kline datasets' plan and run: months and days of archives per interval, monthly archives
// repaired from their dailies, decoded by KlineArchive (`KlineDataset`'s `PipelineDataset` plan).

/// What a kline run decided before any work: the plan, the units to import, the state's index and
/// binding as planned, and the fetcher (its connections carry on into the downloads).
struct PlannedKlineRun {
    var dataset: KlineDataset
    var plan: ImportPlan
    var work: [PlannedUnit]
    var index: [String: UnitIndexEntry]
    var fetcher: any ArchiveSource
    var binding: PlannedBinding
    var decisions: PlanDecisions
}

extension Planner {
    /// The units to import: the plan against the listing and the state, less the done units
    /// whose archives did not change.
    func plan(_ dataset: KlineDataset, _ options: RunOptions, state: StateRecorder, binding: PlannedBinding, summary: inout RunSummary) async throws -> PlannedKlineRun {
        let symbols = try await symbols()
        let index = await state.index()
        let deepCheck = try await deepCheck(options, state: state)
        let plan = try await makePlan(dataset, symbols: symbols, today: options.today, index: index, force: options.force, deepCheck: deepCheck.due)
        // The months of a key with no archive at all fail: units of the run all the same.
        summary.units = plan.units.count + plan.unpublishedKeys.map(\.1.count).reduce(0, +)
        for coverage in plan.coverage { if let gaps = coverage.gaps { summary.notPublishedRanges[coverage.key] = gaps } }
        let fetcher = makeFetcher()
        let (work, decisions) = await unitsToImport(plan.units, index: index, fetcher: fetcher, state: state, force: options.force, deepCheck: deepCheck,
                                                    summary: &summary)
        return PlannedKlineRun(dataset: dataset, plan: plan, work: work, index: index, fetcher: fetcher, binding: binding, decisions: decisions)
    }

    /// The plan; a listing endpoint that answers with something other than a listing is a job
    /// file error (a wrong `listing_url` or `base_url`), not an empty source.
    package func makePlan(_ dataset: KlineDataset, symbols: [String], today: ArchivePeriod, index: [String: UnitIndexEntry], force: Bool = false, deepCheck: Bool = true) async throws -> ImportPlan {
        do {
            return try await ImportPlan.make(spec: spec, dataset: dataset, symbols: symbols, today: today, lister: makeLister(), index: index, force: force,
                                             listings: spec.listings, deepCheck: deepCheck)
        } catch {
            throw listingMistake(error)
        }
    }
}

extension ImportRunner {
    func printDryRun(_ planned: PlannedKlineRun, summary: RunSummary) {
        let plan = planned.plan
        printPlanHead("plan for \(spec.name)", units: plan.units.count, work: planned.work, fetcher: planned.fetcher, binding: planned.binding,
                      deepCheck: planned.decisions.deepCheck, summary: summary)
        for (daily, monthly) in plan.superseded.sorted(by: { $0.key < $1.key }) { print("  superseded when done: \(daily) by \(monthly)") }
        for (key, gaps) in summary.notPublishedRanges.sorted(by: { $0.key < $1.key }) { print("  not published: \(key): \(gaps)") }
        for (coverage, _) in plan.unpublishedKeys { print("  fails: \(coverage.key): \(coverage.noArchiveMessage)") }
        for edge in plan.restEdges {
            guard let first = edge.days.first, let last = edge.days.last else { continue }
            print("  from REST (to: now): \(edge.key): \(first.address.period)..\(last.address.period), up to the last closed candle")
        }
    }

    /// The repair units of a run (days a monthly lacks) and the days no daily archive has.
    struct Repairs {
        var units: [PlannedUnit]
        var inNoArchive: [PlannedUnit]
    }

    /// The work: what the listing shows without a request, the archives, the days monthly
    /// archives lack, the gaps asked of REST (`gaps: rest`), then REST to the last closed candle.
    func execute(_ planned: PlannedKlineRun, state: StateRecorder, writer: Writer, progress: Progress, summary: inout RunSummary) async throws -> Repairs {
        let (plan, work) = (planned.plan, planned.work)
        await recordNotPublished(plan.notPublished, index: planned.index, state: state)
        summary.notPublished = plan.notPublished.count
        for (coverage, months) in plan.unpublishedKeys {
            logger.error("\(coverage.key): \(coverage.noArchiveMessage)")
            for unit in months { await state.failed(unit.id, key: unit.key, coverage.noArchiveMessage) }
            summary.failed += months.count
            summary.failures[coverage.key] = coverage.noArchiveMessage
        }
        let fetcher = planned.fetcher
        // Days a monthly lacks, and days between a key's archives, that no daily archive has.
        var repairs = Repairs(units: work.filter(\.repairs), inNoArchive: plan.notPublished.filter(\.repairs) + plan.holes)
        do {
            try await runPipeline(work: work, fetcher: fetcher, writer: writer, state: state, progress: progress)
            // Monthly archives of this run that lack whole days: those days from their dailies,
            // written after the monthly.
            let found = await repairUnits(of: work, state: state, progress: progress)
            repairs.units += found.units
            repairs.inNoArchive += found.notPublished
            await progress.add(units: found.units.count)
            try await runPipeline(work: found.units, fetcher: fetcher, writer: writer, state: state, progress: progress)
            await recordNotPublished(found.notPublished, index: await state.index(), state: state)
            // A day with no archive at all: a gap of a whole day.
            for day in repairs.inNoArchive {
                guard let step = day.address.interval.seconds else { continue }
                let p = day.address.period
                await state.gaps(of: day.id, [GapRecord(key: day.key, first: p.start, last: p.end - step, state: .unexplained, unit: day.id)])
            }
            if spec.confirmGaps {
                summary.gapRequests = try await explainGaps(keys: Set(plan.coverage.map(\.key)), of: planned.dataset, state: state, writer: writer)
            }
            // `to: now`: the days after the archives, from REST, once the archives are written.
            let outcome = try await rest(planned.dataset).fill(plan.restEdges, state: state, writer: writer, progress: progress)
            try await writer.flush()
            summary.record(outcome)
        } catch let error as FileWriteError {
            // The manifest could not be saved (a full disk): what is recorded stays consistent, the
            // rest is written again by the re-run (fixed-length slots make that idempotent).
            summary.stateError = "\(error)"
        } catch is StopRequested {
            // A signal cut a write short: the summary says so; its units are pending.
        }
        return repairs
    }

    /// After the work: units superseded, repairs and gaps summarized, the state saved and, once
    /// whole, bound to this run's target and schema.
    func settle(_ planned: PlannedKlineRun, repairs: Repairs, state: StateRecorder, progress: Progress, summary: inout RunSummary) async throws {
        // Daily units replaced by their monthly unit, now done, unless the monthly lacks their day.
        let index = await state.index()
        for (daily, monthly) in planned.plan.superseded {
            guard let entry = index[monthly], entry.status == .done else { continue }
            if let lacking = entry.lacking, lacking.contains(String(daily.dropLast(".zip".count).suffix(10))) { continue }
            await state.superseded(daily)
            summary.superseded += 1
        }
        summary.superseded += await RestFiller.supersedeDays(state: state)
        var repaired: [String: [String]] = [:], inNoArchive: [String: [String]] = [:]
        for unit in repairs.units where index[unit.id]?.status == .done { repaired[unit.key, default: []].append("\(unit.address.period)") }
        for unit in repairs.inNoArchive { inNoArchive[unit.key, default: []].append("\(unit.address.period)") }
        summary.repairedFromDailyArchives = repaired.mapValues(daySpans)
        summary.daysInNoArchive = inNoArchive.mapValues(daySpans)
        try await closeState(keys: Set(planned.plan.coverage.map(\.key)), binding: planned.binding, state: state, progress: progress, summary: &summary)
    }

    /// The days that monthly units of `work`, now done, lack a whole day or more of: their daily
    /// archives as repair units (one listing of the month's dailies each), and the days that no
    /// daily archive has either. A listing that fails fails those days (the run exits 1 and the
    /// next one repairs them: the plan finds unsettled repairs in the state).
    package func repairUnits(of work: [PlannedUnit], state: StateRecorder, progress: Progress) async -> (units: [PlannedUnit], notPublished: [PlannedUnit]) {
        var units: [PlannedUnit] = [], notPublished: [PlannedUnit] = []
        let lister = planner.makeLister()
        for monthly in work where monthly.address.period.kind == .month && !monthly.fromREST {
            // The index, not the record: this runs for every monthly unit of a run.
            guard let entry = await state.entry(monthly.id), entry.status == .done, let lacking = entry.lacking else { continue }
            let a = monthly.address
            var days: [PlannedUnit] = []
            for day in lacking {
                // A recorded day that names no archive is the state's fault: said, not skipped.
                do {
                    guard let period = ArchivePeriod(day: day) else {
                        logger.error("\(monthly.id): the state records it lacking \"\(day)\", which is not a day")
                        continue
                    }
                    var unit = PlannedUnit(address: try ArchiveAddress(market: a.market, symbol: a.symbol, interval: a.interval, period: period, dataset: a.dataset),
                                           key: monthly.key)
                    unit.repairs = true
                    days.append(unit)
                } catch {
                    logger.error("\(monthly.id): its lacking day \(day) cannot be repaired: \(error)")
                }
            }
            logger.notice("\(monthly.id) lacks \(lacking.count) day(s) (\(daySpans(lacking))): looking for their daily archives")
            do {
                let listed = try await lister.published(market: a.market, dataset: a.dataset, symbol: a.symbol, interval: a.interval, daily: true,
                                                        month: a.period)
                for var day in days {
                    if let file = listed[day.address.period] {
                        if let entry = await state.entry(day.id), entry.status == .done, entry.listing == file.fingerprint { continue }  // repaired before
                        day.listing = file.fingerprint
                        units.append(day)
                    } else {
                        notPublished.append(day)
                    }
                }
            } catch {
                for day in days { await state.fail(day, "listing the daily archives that repair \(monthly.id): \(error)", progress: progress, logger: logger) }
            }
        }
        return (units, notPublished)
    }

    /// Downloads (N in parallel), decoders (one per core, at most 4) and the writer, joined by
    /// bounded queues.
    package func runPipeline(work: [PlannedUnit], fetcher: any ArchiveSource, writer: Writer, state: StateRecorder, progress: Progress) async throws {
        try await runPipeline(work: work, fetcher: fetcher, writer: writer) { unit, result, thread, pieces in
            await self.decode(unit, result, on: thread, state: state, progress: progress, into: pieces)
        }
    }

    /// Decodes one fetched archive into pieces for the writer; records failures in the manifest.
    package func decode(_ unit: PlannedUnit, _ result: Result<FetchResult, Error>, on thread: DispatchQueue, state: StateRecorder, progress: Progress,
                into pieces: BoundedQueue<DecodedPiece>) async {
        guard let archive = await fetchedArchive(unit, result, state: state, progress: progress) else { return }
        let options = KlineDecodeOptions(interval: unit.address.interval, period: unit.address.period, columns: spec.columns,
                                         floatType: spec.floatType, policy: spec.validation)
        do {
            try await onThread(thread) { try self.decodeBlocking(unit, archive, options: options, into: pieces) }
        } catch {
            await state.fail(unit, "\(error)", progress: progress, logger: logger)
        }
    }

    /// The decode itself, on a thread of its own (it blocks while the writer is behind: that is
    /// the backpressure). Sends the unit's pieces; the last one carries the outcome.
    package func decodeBlocking(_ unit: PlannedUnit, _ archive: LocalArchive, options: KlineDecodeOptions,
                        into pieces: BoundedQueue<DecodedPiece>) throws {
        func send(_ piece: DecodedPiece) { pieces.put(piece) }  // blocks while the writer is behind
        if spec.validation == .strict {
            // Strict: the whole archive is checked before any of its rows is written.
            try KlineArchiveDecoder.stream(path: archive.path, options: options, chunkRows: spec.chunkRows) { _ in }
        }
        // Small units are decoded whole before they go to the writer, so a unit that fails half
        // way writes nothing; large ones (a month of 1s) stream in chunks.
        let slots = Int((unit.address.period.end - unit.address.period.start) / (unit.address.interval.seconds ?? 86400))
        let streaming = slots > 250_000
        var held: [KlineBatch] = []
        var digest = ColumnDigest()
        var report = try KlineArchiveDecoder.stream(path: archive.path, options: options, chunkRows: spec.chunkRows) { batch in
            digest.add(batch)
            if streaming { send(DecodedPiece(unit: unit, batch: batch, outcome: nil)) } else { held.append(batch) }
        }
        if report.duplicates > 0 || !report.daysLacking.isEmpty {
            // The target keeps the last row of a slot, and the days a monthly lacks belong to the
            // daily archives that repair them: record and digest the rows that are this unit's.
            let own = RepairDays(report.daysLacking).without(try KlineArchiveDecoder.decode(path: archive.path, options: options).batch)
            digest = ColumnDigest()
            digest.add(own)
            report.rows = own.count
        }
        let outcome = UnitOutcome(archive: archive, facts: UnitFacts(report), digest: digest)
        if held.isEmpty { held = [spec.emptyBatch()] }
        for (i, batch) in held.enumerated() {
            send(DecodedPiece(unit: unit, batch: batch, outcome: i == held.count - 1 ? outcome : nil))
        }
    }
}

extension JobSpec {
    /// A batch of the job's columns with no rows (a unit whose archive holds none).
    package func emptyBatch() -> KlineBatch {
        KlineBatch(epochs: [], columns: columns.map {
            ($0, $0 == .trades ? ColumnValues.int64([]) : floatType == .float32 ? .float32([]) : .float64([]))
        })
    }
}

/// The days a monthly archive lacks (`UnitRecord.lacking`), which its repair units cover.
package struct RepairDays {
    package let days: Set<Int64>  // days since 1970

    package init(_ lacking: [String]) { days = Set(lacking.compactMap(ArchivePeriod.init(day:)).map { $0.start / 86400 }) }

    /// The indices of `epochs` outside those days.
    package func kept(_ epochs: [Int64]) -> [Int] { epochs.indices.filter { !days.contains(floorDiv(epochs[$0], 86400)) } }

    /// `ranges` ([first, last] open times, slots of `step`) without the parts in these days.
    package func clip(_ ranges: [[Int64]], step: Int64) -> [[Int64]] {
        guard !days.isEmpty else { return ranges }
        var out: [[Int64]] = []
        for r in ranges {
            for day in floorDiv(r[0], 86400)...floorDiv(r[1], 86400) where !days.contains(day) {
                let first = max(r[0], day * 86400), last = min(r[1], (day + 1) * 86400 - step)
                guard first <= last else { continue }
                if let previous = out.last, previous[1] + step == first { out[out.count - 1][1] = last } else { out.append([first, last]) }
            }
        }
        return out
    }

    package func without(_ batch: KlineBatch) -> KlineBatch {
        guard !days.isEmpty else { return batch }
        let keep = kept(batch.epochs)
        return KlineBatch(epochs: keep.map { batch.epochs[$0] }, columns: batch.columns.map { ($0.column, $0.values.gathered(keep)) })
    }
}
