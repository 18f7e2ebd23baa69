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
    /// Where trades missing from the archives come from instead of Binance's REST (a fake in tests).
    package var tradeHistory: (any TradeHistory)?

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

    /// The plan stage of this run (its listing and archive source: the job's, or fakes in tests).
    package let planner: Planner

    public init(spec: JobSpec, logger: Logger, stop: StopRequest = StopRequest(), listing: (any FolderListing)? = nil,
                archives: (any ArchiveSource)? = nil) {
        (self.spec, self.logger, self.stop) = (spec, logger, stop)
        planner = Planner(spec: spec, logger: logger, stop: stop, listing: listing, archives: archives)
    }

    package var location: SourceLocation { planner.location }

    /// A run: plan, then (unless a dry run) execute and settle. Each step records in the state
    /// what it did, so a run stopped anywhere is resumed by the next.
    public func run(_ options: RunOptions) async throws -> RunSummary {
        let started = Date()
        var summary = RunSummary(job: spec.name, startedAt: isoNow())
        summary.manifest = Manifest.databasePath(spec.manifest)
        summary.dataset = spec.datasetName
        try planner.checkSource()
        try checkTarget()
        // A dry run touches nothing: no lock file, no state folder, no clean-up of leftovers.
        let lock = options.dryRun ? nil : try JobLock(manifest: spec.manifest)
        defer { _ = lock }
        let state = StateRecorder(try ManifestStore.open(manifest: spec.manifest, job: spec.name, inMemory: options.dryRun) { logger.notice("\($0)") })
        let binding = try await planner.bindState(options, state: state, summary: summary)
        // Each dataset plans its own way (klines: monthly archives repaired from dailies; funding
        // and metrics: one cadence each).
        // Planning reads the state and writes nothing; what it decided is recorded here, once the
        // run goes on (a dry run records nothing).
        let planned = try await spec.pipelineDataset().plan(planner, options, state: state, binding: binding, summary: &summary)
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

    /// Records a plan's decisions: the binding of a state that has none, the deep check's day,
    /// the refreshed fingerprints.
    func record(_ decisions: PlanDecisions, binding: PlannedBinding, today: ArchivePeriod, state: StateRecorder) async {
        if binding.recorded == nil { await state.bind(binding.binding) }
        if decisions.deepCheck.due { await state.deepChecked(day: today.start) }
        for (id, listing) in decisions.refreshedListings { await state.listingRefreshed(id, listing: listing) }
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
        summary.exitCode = summary.failed > 0 || summary.stateError != nil || summary.restStopped != nil || !summary.idHoles.isEmpty ? 1 : 0
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

}
