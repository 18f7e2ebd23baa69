import BinanceSource
import Columnar
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive
import Logging
import MarketStore
import MarketStoreDirectory
import MarketStoreModel

/// Options of one run, beyond the job file.
public struct RunOptions: Sendable {
    public var dryRun = false
    /// Re-import units the manifest says are done.
    public var force = false
    /// Today's UTC date; the current month is imported from daily archives up to yesterday.
    public var today: ArchivePeriod
    /// Write into a data directory even if a running server seems to use it.
    public var forceDirectory = false
    /// Show a live progress line (on a TTY); otherwise log progress every few seconds.
    public var liveProgress = false

    public init(today: ArchivePeriod) { self.today = today }
}

/// The target is unreachable or refused everything: exit code 3.
public struct TargetUnavailable: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// Runs a job: plan, then download (N in parallel), decode (one per core), write (one request in
/// flight), and record each unit in the manifest once every request carrying its rows was
/// acknowledged.
public final class ImportRunner: Sendable {
    public let spec: JobSpec
    package let logger: Logger
    /// Set by a signal: no new downloads, decodes or REST requests; what is held is written.
    package let stop: StopRequest

    public init(spec: JobSpec, logger: Logger, stop: StopRequest = StopRequest()) {
        self.spec = spec
        self.logger = logger
        self.stop = stop
    }

    package var location: SourceLocation { SourceLocation(spec.baseURL) }

    package func makeLister() -> ArchiveLister {
        ArchiveLister(location: location, listingURL: spec.listingURL)
    }

    package func makeFetcher() -> ArchiveFetcher {
        ArchiveFetcher(location: location, cacheDirectory: spec.cacheDirectory, checksumRequired: spec.checksumRequired)
    }

    /// The job's symbols: listed in the file, or discovered from the source; a shard's share of them.
    package func symbols() async throws -> [String] {
        var all = spec.symbols ?? []
        if spec.symbols == nil {
            let lister = makeLister()
            all = try await spec.dataset.listSymbols(lister, market: spec.market, quote: spec.discoverQuote, match: spec.discoverMatch)
            if all.isEmpty { throw JobFileError(file: spec.file, key: "discover", reason: "no symbol of \(spec.market.rawValue) matches") }
        }
        guard let shard = spec.shard else { return all }
        return all.filter(shard.owns)
    }

    /// A run: plan, then (unless a dry run) execute and settle. Each step records in the state
    /// what it did, so a run stopped anywhere is resumed by the next.
    public func run(_ options: RunOptions) async throws -> RunSummary {
        let started = Date()
        var summary = RunSummary(job: spec.name, startedAt: isoNow())
        summary.manifest = Manifest.databasePath(spec.manifest)
        summary.dataset = spec.datasetName
        try checkSource()
        try checkTarget()
        // A dry run touches nothing: no lock file, no state folder, no clean-up of leftovers.
        let lock = options.dryRun ? nil : try JobLock(manifest: spec.manifest)
        defer { _ = lock }
        let store = try ManifestStore.open(manifest: spec.manifest, job: spec.name, inMemory: options.dryRun) { logger.notice("\($0)") }
        let binding = try await bindState(options, store: store, summary: summary)
        // Each dataset plans its own way (klines: monthly archives repaired from dailies; funding
        // and metrics: one cadence each).
        let planned = try await spec.pipelineDataset().plan(self, options, store: store, binding: binding, summary: &summary)
        if options.dryRun {
            planned.printDryRun(self, summary: summary)
            summary.seconds = Date().timeIntervalSince(started)
            return summary
        }
        guard let sink = try await openSink(options, store: store) else {
            // Stopped while waiting for the server: nothing was written, nothing is lost.
            try await store.close()
            summary.interrupted = true
            summary.exitCode = stop.exitCode ?? 130
            summary.seconds = Date().timeIntervalSince(started)
            return summary
        }
        let progress = Progress(total: planned.workCount, live: options.liveProgress, logger: logger)
        let ticker = Task { await progress.tick() }
        defer { ticker.cancel() }
        let writer = Writer(spec: spec, sink: sink, store: store, progress: progress, logger: logger, stop: stop)
        try await planned.execute(self, store: store, writer: writer, progress: progress, summary: &summary)
        return await finish(summary, started: started, writer: writer, progress: progress)
    }

    /// The target and schema this run writes to, against the ones the state records.
    struct PlannedBinding {
        var binding: StateBinding
        var recorded: StateBinding?
        var rebinding: Bool { recorded != nil && recorded != binding }
        /// The dry run's line about it.
        var line: String { "  \(binding)" + (rebinding ? "; the state records \(recorded.map { "\($0)" } ?? ""): a run needs --force" : "") }
    }

    /// What a run decided before any work: the plan, the units to import, the state's index and
    /// binding as planned, and the fetcher (its connections carry on into the downloads).
    struct PlannedRun {
        var plan: ImportPlan
        var work: [PlannedUnit]
        var index: [String: UnitIndexEntry]
        var fetcher: ArchiveFetcher
        var binding: PlannedBinding
        var deepCheck: DeepCheck
    }

    /// The state speaks of one target and schema: a run with others would skip units whose rows
    /// are not there. Refused before any work, unless forced (then bound anew once whole).
    func bindState(_ options: RunOptions, store: ManifestStore, summary: RunSummary) async throws -> PlannedBinding {
        let binding = StateBinding(spec)
        let recorded = try await store.binding()
        if let recorded, recorded != binding, !options.force, !options.dryRun {
            throw JobFileError(file: summary.manifest, key: "", reason: "this state records units done in \(recorded), but this run writes to \(binding). "
                + "Its done units say nothing of that target: re-import everything there with --force, "
                + "or give the job another manifest: (one state per target)")
        }
        if recorded == nil { await store.bind(binding) }
        return PlannedBinding(binding: binding, recorded: recorded)
    }

    /// Whether this run lists every key's folders again (`recheck_days`), and records that it did:
    /// a deep check finds archives published or re-published for periods the state calls settled;
    /// in between, a settled key costs one listing a night. A dry run reads the same record.
    func deepCheck(_ options: RunOptions, store: ManifestStore) async throws -> DeepCheck {
        let every = Int64(spec.recheckDays) * 86400
        let last = try await store.meta("deep_checked_day").flatMap { Int64($0) }
        let due = last.map { options.today.start - $0 >= every || $0 > options.today.start } ?? true
        if due, !options.dryRun { await store.setMeta("deep_checked_day", "\(options.today.start)") }
        return DeepCheck(due: due, next: due ? options.today.start : (last ?? options.today.start) + every, everyDays: spec.recheckDays)
    }

    /// Whether this run is a deep check, and when the next one is (what the dry run says).
    struct DeepCheck {
        var due: Bool
        var next: Int64
        var everyDays: Int

        var line: String {
            due ? "deep check: due (every \(everyDays) days): every key's folders are listed again"
                : "deep check: next on \(UTCCalendar.iso8601(next).prefix(10)) (recheck_days: \(everyDays)); until then settled periods are not listed again"
        }
    }

    /// Where the archives of a dry run's work come from: the mirror, or the cache and downloads.
    func sourcesNote(_ archives: [any PublishedArchive], fetcher: ArchiveFetcher) -> String {
        if case .directory = location { return "read from the mirror" }
        let cached = archives.filter { FileManager.default.fileExists(atPath: fetcher.cachedPath($0)) }.count
        return "\(cached) archives cached, \(archives.count - cached) to fetch"
    }

    /// The units of `planned` to import: all with `--force`, otherwise less the done units whose
    /// archives did not change.
    func unitsToImport<Unit: WorkUnit>(_ planned: [Unit], index: [String: UnitIndexEntry], fetcher: ArchiveFetcher, store: ManifestStore,
                                       force: Bool, summary: inout RunSummary) async -> [Unit] {
        var work: [Unit] = []
        for unit in planned {
            if !force, let entry = index[unit.id], entry.status == .done, await isUnchanged(unit, entry, fetcher: fetcher, store: store) {
                summary.skipped += 1
                continue
            }
            work.append(unit)
        }
        return work
    }

    /// The units to import: the plan against the listing and the state, less the done units
    /// whose archives did not change.
    func plan(_ options: RunOptions, store: ManifestStore, binding: PlannedBinding, summary: inout RunSummary) async throws -> PlannedRun {
        let symbols = try await symbols()
        let index = await store.currentIndex()
        let deepCheck = try await deepCheck(options, store: store)
        let plan = try await makePlan(symbols: symbols, today: options.today, index: index, force: options.force, deepCheck: deepCheck.due)
        // The months of a key with no archive at all fail: units of the run all the same.
        summary.units = plan.units.count + plan.unpublishedKeys.map(\.1.count).reduce(0, +)
        for coverage in plan.coverage { if let gaps = coverage.gaps { summary.notPublishedRanges[coverage.key] = gaps } }
        let fetcher = makeFetcher()
        let work = await unitsToImport(plan.units, index: index, fetcher: fetcher, store: store, force: options.force, summary: &summary)
        return PlannedRun(plan: plan, work: work, index: index, fetcher: fetcher, binding: binding, deepCheck: deepCheck)
    }

    func printDryRun(_ planned: PlannedRun, summary: RunSummary) {
        let (plan, work) = (planned.plan, planned.work)
        let sources = sourcesNote(work.map(\.address), fetcher: planned.fetcher)
        print("plan for \(spec.name): \(plan.units.count) units; \(summary.skipped) already done; \(work.count) to import (\(sources))")
        print(planned.binding.line)
        print(planned.deepCheck.line)
        for unit in work.prefix(200) { print("  \(unit.id) -> \(unit.key)") }
        if work.count > 200 { print("  ... and \(work.count - 200) more") }
        for (daily, monthly) in plan.superseded.sorted(by: { $0.key < $1.key }) { print("  superseded when done: \(daily) by \(monthly)") }
        for (key, gaps) in summary.notPublishedRanges.sorted(by: { $0.key < $1.key }) { print("  not published: \(key): \(gaps)") }
        for (coverage, _) in plan.unpublishedKeys { print("  fails: \(coverage.key): \(coverage.noArchiveMessage)") }
        for edge in plan.restEdges {
            guard let first = edge.days.first, let last = edge.days.last else { continue }
            print("  from REST (to: now): \(edge.key): \(first.address.period)..\(last.address.period), up to the last closed candle")
        }
    }

    /// The target, checked before any download; nil when a stop came while waiting for it.
    func openSink(_ options: RunOptions, store: ManifestStore) async throws -> RowSink? {
        switch spec.target {
        case let .marketstore(url):
            let client = MarketStoreClient(url: url, timeouts: .init(connect: 5, total: 300), caFile: spec.caFile)
            do {
                _ = try await client.version()
            } catch where stop.requested || Task.isCancelled {
                return nil
            } catch let error as MarketStoreError where error.isAuthentication {
                throw TargetUnavailable(description: "MarketStore at \(spec.target.display): \(error)")
            } catch {
                throw TargetUnavailable(description: "MarketStore at \(spec.target.display) is unreachable: \((error as? MarketStoreError)?.unreachableReason ?? "\(error)")")
            }
            return SchemaGuard(client: client)
        case let .directory(path):
            do {
                return DirectorySink(writer: try DirectoryWriter(root: path, force: options.forceDirectory))
            } catch {
                throw TargetUnavailable(description: "\(error)")
            }
        }
    }

    /// The repair units of a run (days a monthly lacks) and the days no daily archive has.
    struct Repairs {
        var units: [PlannedUnit]
        var inNoArchive: [PlannedUnit]
    }

    /// The work: what the listing shows without a request, the archives, the days monthly
    /// archives lack, the gaps asked of REST (`gaps: rest`), then REST to the last closed candle.
    func execute(_ planned: PlannedRun, store: ManifestStore, writer: Writer, progress: Progress, summary: inout RunSummary) async throws -> Repairs {
        let (plan, work) = (planned.plan, planned.work)
        await recordNotPublished(plan.notPublished, index: planned.index, store: store)
        summary.notPublished = plan.notPublished.count
        for (coverage, months) in plan.unpublishedKeys {
            logger.error("\(coverage.key): \(coverage.noArchiveMessage)")
            for unit in months { await store.recordFailure(unit.id, key: unit.key, coverage.noArchiveMessage) }
            summary.failed += months.count
            summary.failures[coverage.key] = coverage.noArchiveMessage
        }
        let fetcher = planned.fetcher
        var repairs = Repairs(units: work.filter(\.repairs), inNoArchive: plan.notPublished.filter(\.repairs))
        do {
            try await runPipeline(work: work, fetcher: fetcher, writer: writer, store: store, progress: progress)
            // Monthly archives of this run that lack whole days: those days from their dailies,
            // written after the monthly.
            let found = await repairUnits(of: work, store: store, progress: progress)
            repairs.units += found.units
            repairs.inNoArchive += found.notPublished
            await progress.add(units: found.units.count)
            try await runPipeline(work: found.units, fetcher: fetcher, writer: writer, store: store, progress: progress)
            await recordNotPublished(found.notPublished, index: await store.currentIndex(), store: store)
            // A day a monthly lacks that no daily archive has either: a gap of a whole day.
            for day in repairs.inNoArchive {
                guard let step = day.address.interval.seconds else { continue }
                let p = day.address.period
                await store.setGaps(unit: day.id, [GapRecord(key: day.key, first: p.start, last: p.end - step, state: .unexplained, unit: day.id)])
            }
            if spec.confirmGaps {
                summary.gapRequests = try await explainGaps(keys: Set(plan.coverage.map(\.key)), store: store, writer: writer)
            }
            // `to: now`: the days after the archives, from REST, once the archives are written.
            let outcome = try await rest.fill(plan.restEdges, store: store, writer: writer, progress: progress)
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
    func settle(_ planned: PlannedRun, repairs: Repairs, store: ManifestStore, progress: Progress, summary: inout RunSummary) async throws {
        // Daily units replaced by their monthly unit, now done, unless the monthly lacks their day.
        let index = await store.currentIndex()
        for (daily, monthly) in planned.plan.superseded {
            guard let entry = index[monthly], entry.status == .done else { continue }
            if let lacking = entry.lacking, lacking.contains(String(daily.dropLast(".zip".count).suffix(10))) { continue }
            await store.update(daily) { $0.status = .superseded; $0.error = nil }
            await store.setGaps(unit: daily, [])
            summary.superseded += 1
        }
        summary.superseded += await rest.supersedeDays(store: store)
        var repaired: [String: [String]] = [:], inNoArchive: [String: [String]] = [:]
        for unit in repairs.units where index[unit.id]?.status == .done { repaired[unit.key, default: []].append("\(unit.address.period)") }
        for unit in repairs.inNoArchive { inNoArchive[unit.key, default: []].append("\(unit.address.period)") }
        summary.repairedFromDailyArchives = repaired.mapValues(daySpans)
        summary.daysInNoArchive = inNoArchive.mapValues(daySpans)
        try await closeState(keys: Set(planned.plan.coverage.map(\.key)), binding: planned.binding, store: store, progress: progress, summary: &summary)
    }

    /// The end of every run: the state saved, the gaps of the job's keys summarized, the state
    /// bound to this run's target and schema once whole, and closed.
    func closeState(keys: Set<String>, binding planned: PlannedBinding, store: ManifestStore, progress: Progress, summary: inout RunSummary) async throws {
        do {
            try await store.commit(force: true)
            for gap in try await store.gaps() where keys.contains(gap.key) {
                summary.gaps[gap.key, default: []].append(gap.summary)
                summary.gapCounts[gap.state.rawValue, default: 0] += 1
            }
        } catch let error as FileWriteError {
            summary.stateError = "\(error)"
        }
        if planned.rebinding, summary.failed == 0, await progress.counts().failed == 0, !stop.requested {
            await store.bind(planned.binding)
            logger.notice("the state now records \(planned.binding)")
        }
        do {
            try await store.close()
        } catch let error as FileWriteError {
            summary.stateError = "\(error)"
        }
    }

    /// Periods with no archive listed, recorded as not published; one already recorded so (with
    /// the same listing fingerprint), done or superseded is left as it is: nothing to write.
    package func recordNotPublished(_ units: [any WorkUnit], index: [String: UnitIndexEntry], store: ManifestStore) async {
        for unit in units {
            let entry = index[unit.id]
            guard entry?.status != .done && entry?.status != .superseded else { continue }
            if entry?.status == .notPublished && entry?.listing == unit.listing { continue }
            await store.update(unit.id, key: unit.key) { $0.status = .notPublished; $0.listing = unit.listing; $0.error = nil; $0.updatedAt = isoNow() }
        }
    }

    /// `gaps: rest`: each gap of the job's keys not yet explained is asked of Binance's REST
    /// klines (within the weight budget): klines it has are written as a REST gap unit (the
    /// gap is `filled`); none means the exchange had none (`exchange_gap`: maintenance, a
    /// suspension). Returns the requests made.
    package func explainGaps(keys: Set<String>, store: ManifestStore, writer: Writer) async throws -> Int {
        try await store.commit(force: true)
        let open = try await store.gaps().filter { keys.contains($0.key) && $0.state == .unexplained }
        guard !open.isEmpty else { return 0 }
        let client = rest.makeClient()
        let serverTime: Int64
        do {
            serverTime = try await client.serverTime() / 1000
        } catch {
            logger.warning("gaps: REST did not answer (\(error)); \(open.count) gap(s) stay unexplained")
            return await client.counters.requests
        }
        for var gap in open {
            if stop.requested { break }
            guard let owner = KlineArchiveName(fileName: gap.unit), let step = owner.interval.seconds, gap.last + step <= serverTime,
                  case let day = PeriodPlanner.today(now: gap.first) else { continue }
            let klines: [RestKline]
            do {
                klines = try await client.klines(dataset: spec.klineKind, instrument: owner.symbol, interval: owner.interval,
                                                 fromMs: gap.first * 1000, toMs: gap.last * 1000)
            } catch let error as RestError {
                logger.warning("gap \(gap.summary) of \(gap.key): REST: \(error)")
                if case .banned = error { break }
                continue
            }
            let inside = klines.filter {
                let t = RestKline.milliseconds($0.openTime) / 1000
                return t >= gap.first && t <= gap.last && RestKline.milliseconds($0.closeTime) / 1000 < serverTime
            }
            if inside.isEmpty {
                gap.state = .exchangeGap
            } else {
                var fill = PlannedUnit(address: try ArchiveAddress(market: spec.market, symbol: owner.symbol, interval: owner.interval, period: day,
                                                                   dataset: spec.klineKind), key: gap.key)
                fill.fromREST = true
                fill.gap = gap.first...gap.last
                var csv: [UInt8] = []
                for kline in inside { csv += Array(kline.csvLine.utf8) + [0x0A] }
                let source = "\(spec.restURL)\(RestMarket(spec.market).klinesPath(spec.klineKind)) \(owner.symbol) \(owner.interval.name) gap \(gap.summary)"
                do {
                    try await writer.add(try rest.piece(fill, csv: csv, interval: owner.interval, source: source, coveredTo: gap.last, continues: false,
                                                       policy: spec.validation))
                } catch let error as KlineDecodeError {
                    logger.warning("gap \(gap.summary) of \(gap.key): \(error)")
                    continue
                }
                gap.state = .filled
                gap.rows = inside.count
            }
            await store.updateGap(gap)
        }
        try await writer.flush()
        return await client.counters.requests
    }

    /// The days that monthly units of `work`, now done, lack a whole day or more of: their daily
    /// archives as repair units (one listing of the month's dailies each), and the days that no
    /// daily archive has either. A listing that fails fails those days (the run exits 1 and the
    /// next one repairs them: the plan finds unsettled repairs in the state).
    package func repairUnits(of work: [PlannedUnit], store: ManifestStore, progress: Progress) async -> (units: [PlannedUnit], notPublished: [PlannedUnit]) {
        var units: [PlannedUnit] = [], notPublished: [PlannedUnit] = []
        let lister = makeLister()
        for monthly in work where monthly.address.period.kind == .month && !monthly.fromREST {
            // The index, not the record: this runs for every monthly unit of a run.
            guard let entry = await store.entry(monthly.id), entry.status == .done, let lacking = entry.lacking else { continue }
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
                        if let entry = await store.entry(day.id), entry.status == .done, entry.listing == file.fingerprint { continue }  // repaired before
                        day.listing = file.fingerprint
                        units.append(day)
                    } else {
                        notPublished.append(day)
                    }
                }
            } catch {
                for day in days { await store.fail(day, "listing the daily archives that repair \(monthly.id): \(error)", progress: progress, logger: logger) }
            }
        }
        return (units, notPublished)
    }

    /// Downloads (N in parallel), decoders (one per core, at most 4) and the writer, joined by
    /// bounded queues.
    package func runPipeline(work: [PlannedUnit], fetcher: ArchiveFetcher, writer: Writer, store: ManifestStore, progress: Progress) async throws {
        try await runPipeline(work: work, fetcher: fetcher, writer: writer) { unit, result, thread, pieces in
            await self.decode(unit, result, on: thread, store: store, progress: progress, into: pieces)
        }
    }

    /// The pipeline over units of any dataset, `decode` turning each fetched archive into pieces
    /// (or recording why not).
    package func runPipeline<Unit: WorkUnit>(work: [Unit], fetcher: ArchiveFetcher, writer: Writer,
                                             decode: @escaping @Sendable (Unit, Result<FetchResult, Error>, DispatchQueue, BoundedQueue<DecodedPiece>) async -> Void) async throws {
        let archives = BoundedQueue<(Unit, Result<FetchResult, Error>)>(capacity: spec.downloads * 2)
        let pieces = BoundedQueue<DecodedPiece>(capacity: 4)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await fetcher.fetchAll(work, address: \.archive, parallelism: self.spec.downloads, isCancelled: { self.stop.requested }) { unit, result in
                    await archives.send((unit, result))
                }
                archives.finish()
            }
            let decoders = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 4))
            let decodersLeft = Countdown(decoders)
            for lane in 0..<decoders {
                group.addTask {
                    let thread = DispatchQueue(label: "binance-import.decode-\(lane)")
                    while let (unit, result) = await archives.receive() {
                        if self.stop.requested { continue }  // stopping: leave it pending
                        await decode(unit, result, thread, pieces)
                    }
                    if await decodersLeft.done() { pieces.finish() }
                }
            }
            group.addTask {
                do {
                    while let piece = await pieces.receive() { try await writer.add(piece) }
                    try await writer.flush()
                } catch {
                    archives.finish()
                    pieces.finish()
                    throw error
                }
            }
            try await group.waitForAll()
        }
    }

    /// The job as a run would plan it now (listing the source, discovering symbols), against
    /// the recorded state: for `status`, which shows what is still to do, not only what is recorded.
    package func plan(today: ArchivePeriod, state: Manifest) async throws -> (keys: [String], units: [any WorkUnit]) {
        try checkSource()
        let index = state.units.mapValues { UnitIndexEntry(status: $0.status, listing: $0.listing, lacking: $0.lacking) }
        return try await spec.pipelineDataset().plan(self, today: today, index: index)
    }

    /// The summary's counts and exit code, from the run's counters.
    package func finish(_ summary: RunSummary, started: Date, writer: Writer, progress: Progress) async -> RunSummary {
        var summary = summary
        let counts = await progress.counts()
        summary.done = counts.done
        summary.failed += counts.failed
        summary.notPublished += counts.notPublished
        summary.rows = counts.rows
        summary.anomalies = counts.anomalies
        summary.downloads = counts.downloads
        summary.adjusted = counts.adjustments
        let writes = await writer.counters
        summary.writeRequests = writes.requests
        summary.rowsByKey = writes.rowsByKey
        summary.lastWriteByKey = writes.lastWriteByKey
        summary.requestsByKey = writes.requestsByKey
        summary.writeErrors = Dictionary(uniqueKeysWithValues: writes.errorsByKind.map { ($0.key.rawValue, $0.value) })
        summary.rowsNotServedByMarketStore = await writer.unservedRows
        summary.failures.merge(counts.failures) { old, _ in old }
        summary.seconds = Date().timeIntervalSince(started)
        summary.rowsPerSecond = summary.seconds > 0 ? Double(summary.rows) / summary.seconds : 0
        summary.exitCode = summary.failed > 0 || summary.stateError != nil || summary.restStopped != nil ? 1 : 0
        summary.peakRssBytes = peakRSS()
        if stop.requested {
            summary.interrupted = true
            summary.exitCode = stop.exitCode ?? 130
        }
        let refusedEverything = await writer.refusedEverything
        if summary.failed > 0 && summary.done == 0 && refusedEverything { summary.exitCode = 3 }
        await progress.finish()
        return summary
    }

    /// A directory target that is a file is a job file error; one that cannot be written refuses
    /// everything (exit 3). Said at once, in those words, not as a failed temporary file later.
    package func checkTarget() throws {
        guard case let .directory(path) = spec.target else { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return }  // made by the first write
        guard isDirectory.boolValue else {
            throw JobFileError(file: spec.targetFromCommandLine ? "command line" : spec.file, key: spec.targetFromCommandLine ? "--target" : "target.directory",
                               reason: "target \(path) is a file, not a directory")
        }
        guard access(path, W_OK | X_OK) == 0 else {
            throw TargetUnavailable(description: "target directory \(path) cannot be written: \(String(cString: strerror(errno))) (check its owner and permissions)")
        }
    }

    /// A local mirror that does not exist, or is not a mirror of the data tree, is a job file
    /// error: it would list as empty and every unit would look unpublished.
    package func checkSource() throws {
        guard case let .directory(root) = location else { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw JobFileError(file: spec.file, key: "source.base_url", reason: "the mirror directory \(root) does not exist")
        }
        let data = (root as NSString).appendingPathComponent("data")
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw JobFileError(file: spec.file, key: "source.base_url", reason: "\(root) is not a mirror of data.binance.vision: it has no data/ folder")
        }
    }

    /// The plan; a listing endpoint that answers with something other than a listing is a job
    /// file error (a wrong `listing_url` or `base_url`), not an empty source.
    package func makePlan(symbols: [String], today: ArchivePeriod, index: [String: UnitIndexEntry], force: Bool = false, deepCheck: Bool = true) async throws -> ImportPlan {
        do {
            return try await ImportPlan.make(spec: spec, symbols: symbols, today: today, lister: makeLister(), index: index, force: force,
                                             listings: spec.listings, deepCheck: deepCheck)
        } catch {
            throw listingMistake(error)
        }
    }

    /// A listing endpoint that answers with something other than a listing (not XML, a 4xx) is
    /// a wrong `listing_url` or `base_url`: a job file error, not an empty source.
    package func listingMistake(_ error: Error) -> Error {
        guard let error = error as? SourceError else { return error }
        switch error {
        case .listing, .http(_, 400..<500, _): return JobFileError(file: spec.file, key: "source.listing_url", reason: "\(error)")
        default: return error
        }
    }

    /// A done unit is skipped while its archive is unchanged: the same listing fingerprint as when
    /// it was imported (no request at all), or, when the fingerprint changed or was never
    /// recorded, the same published CHECKSUM (one small request; the new fingerprint is kept).
    package func isUnchanged(_ unit: some WorkUnit, _ entry: UnitIndexEntry, fetcher: ArchiveFetcher, store: ManifestStore) async -> Bool {
        if let listing = unit.listing, entry.listing == listing { return true }
        guard let record = await store.record(unit.id) else { return false }
        let published: String?
        do {
            published = try await fetcher.publishedChecksum(unit.archive)
        } catch {
            logger.warning("\(unit.id): its listing changed and its CHECKSUM could not be read (\(error)); kept as done, checked again next run")
            return true
        }
        let unchanged: Bool
        switch (record.sha256, published) {
        case let (sha?, published?): unchanged = sha == published
        case (_?, nil): unchanged = true  // no CHECKSUM to compare with any more: keep what was verified
        case (nil, _): unchanged = record.listing == nil  // unverified: only a changed fingerprint tells
        }
        if unchanged {
            await store.update(unit.id) { $0.listing = unit.listing }
        } else {
            logger.info("re-published archive: \(unit.id) (\(record.sha256?.prefix(12) ?? "unverified") -> \(published?.prefix(12) ?? "unverified"))")
        }
        return unchanged
    }

    /// Decodes one fetched archive into pieces for the writer; records failures in the manifest.
    package func decode(_ unit: PlannedUnit, _ result: Result<FetchResult, Error>, on thread: DispatchQueue, store: ManifestStore, progress: Progress,
                into pieces: BoundedQueue<DecodedPiece>) async {
        guard let archive = await fetchedArchive(unit, result, store: store, progress: progress) else { return }
        let options = KlineDecodeOptions(interval: unit.address.interval, period: unit.address.period, columns: spec.columns,
                                         floatType: spec.floatType, policy: spec.validation)
        do {
            try await onThread(thread) { try self.decodeBlocking(unit, archive, options: options, into: pieces) }
        } catch {
            await store.fail(unit, "\(error)", progress: progress, logger: logger)
        }
    }

    /// The archive a fetch gave, or nil once its failure or its 404 is recorded. A 404 for a
    /// listed archive is a CDN behind its listing: the listing is forgotten, so the period is
    /// looked at again by the next run.
    package func fetchedArchive(_ unit: any WorkUnit, _ result: Result<FetchResult, Error>, store: ManifestStore, progress: Progress) async -> LocalArchive? {
        switch result {
        case let .failure(error):
            await store.fail(unit, "download: \(error)", progress: progress, logger: logger)
            return nil
        case .success(.notPublished):
            await store.update(unit.id, key: unit.key) { $0.status = .notPublished; $0.listing = nil; $0.error = nil; $0.updatedAt = isoNow() }
            await progress.notPublished()
            return nil
        case let .success(.ready(archive)):
            if !archive.fromCache { await progress.downloaded() }
            return archive
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

extension ManifestStore {
    /// A unit that failed: logged, recorded (a done unit stays done), counted, and saved at once
    /// unless the caller saves (the writer commits once for a whole failed request).
    package func fail(_ unit: any WorkUnit, _ message: String, progress: Progress, logger: Logger, save: Bool = true) async {
        logger.error("\(unit.id): \(message)")
        recordFailure(unit.id, key: unit.key, message)
        await progress.failed(unit.id, message)
        guard save else { return }
        do {
            try commit()
        } catch {
            logger.error("could not save the manifest after \(unit.id) failed: \(error) (the end of the run saves it again)")
        }
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

/// Runs blocking work on `queue`, off Swift's cooperative pool. A serial queue has a thread of
/// its own that it keeps between calls (a thread made per call cost 12,000 thread creations in a
/// run of 9,600 tiny units).
package func onThread<T: Sendable>(_ queue: DispatchQueue, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        queue.async { continuation.resume(with: Result { try body() }) }
    }
}

/// What a unit's decode produced, recorded when its last rows are acknowledged.
package struct UnitOutcome: Sendable {
    /// The archive read (nil for a REST unit), its verified SHA-256.
    package var archivePath: String?
    package var sha256: String?
    package var verified: Bool
    package var facts: UnitFacts
    package var digest: ColumnDigest
    /// A REST unit: the open time of the last closed candle covered.
    package var coveredTo: Int64?
    /// A REST day continued after an earlier run's candles: its rows add to the recorded ones.
    package var continues = false

    package init(archive: LocalArchive, facts: UnitFacts, digest: ColumnDigest) {
        (archivePath, sha256, verified) = (archive.path, archive.sha256, archive.verified)
        (self.facts, self.digest) = (facts, digest)
    }

    package init(restFacts facts: UnitFacts, digest: ColumnDigest, coveredTo: Int64) {
        (archivePath, sha256, verified) = (nil, nil, false)
        (self.facts, self.digest, self.coveredTo) = (facts, digest, coveredTo)
    }
}

/// Rows of one unit on their way to the writer; the last piece of a unit carries its outcome.
package struct DecodedPiece: Sendable {
    package var unit: any WorkUnit
    package var batch: RowBatch
    package var outcome: UnitOutcome?

    package init(unit: any WorkUnit, batch: RowBatch, outcome: UnitOutcome?) {
        (self.unit, self.batch, self.outcome) = (unit, batch, outcome)
    }

    package init(unit: any WorkUnit, batch: KlineBatch, outcome: UnitOutcome?) {
        self.init(unit: unit, batch: RowBatch(batch), outcome: outcome)
    }
}

package actor Countdown {
    private var left: Int
    package init(_ n: Int) { left = n }
    package func done() -> Bool {
        left -= 1
        return left == 0
    }
}
