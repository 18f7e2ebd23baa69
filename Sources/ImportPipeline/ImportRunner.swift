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
    /// The target to write to instead of the job's (an in-memory one in tests).
    public var sink: (any RowSink)?

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

    /// Where listings come from instead of the job's source (a fake in tests).
    public let listing: (any FolderListing)?
    /// Where archives come from instead of the job's source and cache (a fake in tests).
    public let archives: (any ArchiveSource)?

    public init(spec: JobSpec, logger: Logger, stop: StopRequest = StopRequest(), listing: (any FolderListing)? = nil,
                archives: (any ArchiveSource)? = nil) {
        (self.spec, self.logger, self.stop, self.listing, self.archives) = (spec, logger, stop, listing, archives)
    }

    package var location: SourceLocation { SourceLocation(spec.baseURL) }

    package func makeLister() -> ArchiveLister {
        if let listing { return ArchiveLister(listing: listing, location: location) }
        return ArchiveLister(location: location, listingURL: spec.listingURL)
    }

    package func makeFetcher() -> any ArchiveSource {
        archives ?? ArchiveFetcher(location: location, cacheDirectory: spec.cacheDirectory, checksumRequired: spec.checksumRequired)
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
        let state = StateRecorder(try ManifestStore.open(manifest: spec.manifest, job: spec.name, inMemory: options.dryRun) { logger.notice("\($0)") })
        let binding = try await bindState(options, state: state, summary: summary)
        // Each dataset plans its own way (klines: monthly archives repaired from dailies; funding
        // and metrics: one cadence each).
        // Planning reads the state and writes nothing; what it decided is recorded here, once the
        // run goes on (a dry run records nothing).
        let planned = try await spec.pipelineDataset().plan(self, options, state: state, binding: binding, summary: &summary)
        if options.dryRun {
            planned.printDryRun(self, summary: summary)
            summary.seconds = Date().timeIntervalSince(started)
            return summary
        }
        await record(planned.decisions, binding: binding, today: options.today, state: state)
        guard let sink = try await openSink(options, state: state) else {
            // Stopped while waiting for the server: nothing was written, nothing is lost.
            try await state.close()
            summary.interrupted = true
            summary.exitCode = stop.exitCode ?? 130
            summary.seconds = Date().timeIntervalSince(started)
            return summary
        }
        let progress = Progress(total: planned.workCount, live: options.liveProgress, logger: logger)
        let ticker = Task { await progress.tick() }
        defer { ticker.cancel() }
        let writer = Writer(spec: spec, sink: sink, state: state, progress: progress, logger: logger, stop: stop)
        try await planned.execute(self, state: state, writer: writer, progress: progress, summary: &summary)
        return await finish(summary, started: started, writer: writer, progress: progress)
    }

    /// The target and schema this run writes to, against the ones the state records.
    struct PlannedBinding {
        var binding: StateBinding
        var recorded: StateBinding?
        var rebinding: Bool { recorded != nil && recorded != binding }
        /// The dry run's line about it.
        package var line: String { "  \(binding)" + (rebinding ? "; the state records \(recorded.map { "\($0)" } ?? ""): a run needs --force" : "") }
    }

    /// The state speaks of one target and schema: a run with others would skip units whose rows
    /// are not there. Refused before any work, unless forced (then bound anew once whole).
    func bindState(_ options: RunOptions, state: StateRecorder, summary: RunSummary) async throws -> PlannedBinding {
        let binding = StateBinding(spec)
        let recorded = try await state.binding()
        if let recorded, recorded != binding, !options.force, !options.dryRun {
            throw JobFileError(file: summary.manifest, key: "", reason: "this state records units done in \(recorded), but this run writes to \(binding). "
                + "Its done units say nothing of that target: re-import everything there with --force, "
                + "or give the job another manifest: (one state per target)")
        }
        return PlannedBinding(binding: binding, recorded: recorded)
    }

    /// Whether this run lists every key's folders again (`recheck_days`; the run records that it
    /// did): a deep check finds archives published or re-published for periods the state calls
    /// settled; in between, a settled key costs one listing a night. A dry run reads the same record.
    func deepCheck(_ options: RunOptions, state: StateRecorder) async throws -> DeepCheck {
        DeepCheck(lastChecked: try await state.deepCheckedDay(), today: options.today, everyDays: spec.recheckDays)
    }

    /// Whether this run is a deep check, and when the next one is (what the dry run says).
    package struct DeepCheck {
        var due: Bool
        var next: Int64
        var everyDays: Int

        /// A run on `today`, after the deep check recorded on `lastChecked`, every `everyDays`.
        package init(lastChecked last: Int64?, today: ArchivePeriod, everyDays: Int) {
            let every = Int64(everyDays) * 86400
            due = last.map { today.start - $0 >= every || $0 > today.start } ?? true
            next = due ? today.start : (last ?? today.start) + every
            self.everyDays = everyDays
        }

        package var line: String {
            due ? "deep check: due (every \(everyDays) days): every key's folders are listed again"
                : "deep check: next on \(UTCCalendar.iso8601(next).prefix(10)) (recheck_days: \(everyDays)); until then settled periods are not listed again"
        }
    }

    /// A dry run's first lines, whatever the dataset: the counts, where the archives come from
    /// (the mirror, or the cache and downloads), the binding, the deep check, then the work.
    func printPlanHead(_ title: String, units: Int, work: [some WorkUnit], fetcher: any ArchiveSource, binding: PlannedBinding, deepCheck: DeepCheck,
                       summary: RunSummary) {
        let sources: String
        if case .directory = location {
            sources = "read from the mirror"
        } else {
            let cached = work.filter { FileManager.default.fileExists(atPath: fetcher.cachedPath($0.archive)) }.count
            sources = "\(cached) archives cached, \(work.count - cached) to fetch"
        }
        print("\(title): \(units) units; \(summary.skipped) already done; \(work.count) to import (\(sources))")
        print(binding.line)
        print(deepCheck.line)
        for unit in work.prefix(200) { print("  \(unit.id) -> \(unit.key)") }
        if work.count > 200 { print("  ... and \(work.count - 200) more") }
    }

    /// What a plan decided that the state keeps: a deep check made, and the fingerprints of done
    /// archives whose listing changed but whose CHECKSUM did not (not asked again next run).
    package struct PlanDecisions: Sendable {
        var deepCheck: DeepCheck
        var refreshedListings: [(id: String, listing: String?)] = []
    }

    /// Records a plan's decisions: the binding of a state that has none, the deep check's day,
    /// the refreshed fingerprints.
    func record(_ decisions: PlanDecisions, binding: PlannedBinding, today: ArchivePeriod, state: StateRecorder) async {
        if binding.recorded == nil { await state.bind(binding.binding) }
        if decisions.deepCheck.due { await state.deepChecked(day: today.start) }
        for (id, listing) in decisions.refreshedListings { await state.listingRefreshed(id, listing: listing) }
    }

    /// The units of `planned` to import: all with `--force`, otherwise less the done units whose
    /// archives did not change; the decisions to record (the fingerprints of those whose listing
    /// changed but not their CHECKSUM).
    func unitsToImport<Unit: WorkUnit>(_ planned: [Unit], index: [String: UnitIndexEntry], fetcher: any ArchiveSource, state: StateRecorder,
                                       force: Bool, deepCheck: DeepCheck, summary: inout RunSummary) async -> (work: [Unit], decisions: PlanDecisions) {
        var work: [Unit] = []
        var decisions = PlanDecisions(deepCheck: deepCheck)
        for unit in planned {
            if !force, let entry = index[unit.id], entry.status == .done, await isUnchanged(unit, entry, fetcher: fetcher, state: state) {
                if entry.listing != unit.listing { decisions.refreshedListings.append((unit.id, unit.listing)) }
                summary.skipped += 1
                continue
            }
            work.append(unit)
        }
        return (work, decisions)
    }

    /// The target, checked before any download; nil when a stop came while waiting for it.
    func openSink(_ options: RunOptions, state: StateRecorder) async throws -> RowSink? {
        if let sink = options.sink { return sink }
        switch spec.target {
        case let .marketstore(url):
            let client = MarketStoreClient(url: url, timeouts: .init(connect: 5, total: 300, lowSpeedSeconds: spec.stallSeconds), caFile: spec.caFile)
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
    package func isUnchanged(_ unit: some WorkUnit, _ entry: UnitIndexEntry, fetcher: any ArchiveSource, state: StateRecorder) async -> Bool {
        if let listing = unit.listing, entry.listing == listing { return true }
        guard let record = await state.record(unit.id) else { return false }
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
        if !unchanged {
            logger.info("re-published archive: \(unit.id) (\(record.sha256?.prefix(12) ?? "unverified") -> \(published?.prefix(12) ?? "unverified"))")
        }
        return unchanged
    }
}
