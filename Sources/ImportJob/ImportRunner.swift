import BinanceSource
import Columnar
import Foundation
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

    public init(today: ArchivePeriod) { self.today = today }
}

/// The target is unreachable or refused everything: exit code 3.
public struct TargetUnavailable: Error, CustomStringConvertible {
    public let description: String
}

/// Runs a job: plan, then download (N in parallel), decode (one per core), write (one request in
/// flight), and record each unit in the manifest once every request carrying its rows was
/// acknowledged.
public final class ImportRunner: Sendable {
    public let spec: JobSpec
    let logger: Logger

    public init(spec: JobSpec, logger: Logger) {
        self.spec = spec
        self.logger = logger
    }

    var location: SourceLocation { SourceLocation(spec.baseURL) }

    func makeLister() -> ArchiveLister {
        ArchiveLister(location: location, listingURL: spec.listingURL)
    }

    func makeFetcher() -> ArchiveFetcher {
        ArchiveFetcher(location: location, cacheDirectory: spec.cacheDirectory, checksumRequired: spec.checksumRequired)
    }

    /// The job's symbols: listed in the file, or discovered from the source; a shard's share of them.
    func symbols() async throws -> [String] {
        var all = spec.symbols ?? []
        if spec.symbols == nil {
            all = try await makeLister().symbols(market: spec.market, quote: spec.discoverQuote, match: spec.discoverMatch)
            if all.isEmpty { throw JobFileError(file: spec.file, key: "discover", reason: "no symbol of \(spec.market.rawValue) matches") }
        }
        guard let shard = spec.shard else { return all }
        return all.filter(shard.owns)
    }

    public func run(_ options: RunOptions) async throws -> RunSummary {
        let started = Date()
        var summary = RunSummary(job: spec.name, startedAt: isoNow())
        summary.manifest = Manifest.databasePath(spec.manifest)
        try checkSource()
        // A dry run touches nothing: no lock file, no state folder, no clean-up of leftovers.
        let lock = options.dryRun ? nil : try JobLock(manifest: spec.manifest)
        defer { _ = lock }
        let store = try ManifestStore.open(manifest: spec.manifest, job: spec.name, inMemory: options.dryRun) { logger.notice("\($0)") }

        let symbols = try await symbols()
        var index = await store.currentIndex()
        let plan = try await makePlan(symbols: symbols, today: options.today, index: index)
        summary.units = plan.units.count
        for coverage in plan.coverage { if let gaps = coverage.gaps { summary.notPublishedRanges[coverage.key] = gaps } }

        // Decide what to do with each unit.
        let fetcher = makeFetcher()
        var work: [PlannedUnit] = []
        for unit in plan.units {
            if !options.force, let entry = index[unit.id], entry.status == .done,
               await isUnchanged(unit, entry, fetcher: fetcher, store: store) {
                summary.skipped += 1
                continue
            }
            work.append(unit)
        }
        if options.dryRun {
            let sources: String
            if case .directory = location {
                sources = "read from the mirror"
            } else {
                let cached = work.filter { FileManager.default.fileExists(atPath: fetcher.cachedPath($0.address)) }.count
                sources = "\(cached) archives cached, \(work.count - cached) to fetch"
            }
            print("plan for \(spec.name): \(plan.units.count) units; \(summary.skipped) already done; \(work.count) to import (\(sources))")
            for unit in work.prefix(200) { print("  \(unit.id) -> \(unit.key)") }
            if work.count > 200 { print("  ... and \(work.count - 200) more") }
            for (daily, monthly) in plan.superseded.sorted(by: { $0.key < $1.key }) { print("  superseded when done: \(daily) by \(monthly)") }
            for (key, gaps) in summary.notPublishedRanges.sorted(by: { $0.key < $1.key }) { print("  not published: \(key): \(gaps)") }
            for (coverage, _) in plan.unpublishedKeys { print("  fails: \(coverage.key): \(coverage.noArchiveMessage)") }
            for edge in plan.restEdges { print("  from REST (to: now): \(edge.key): \(edge.days.first!.address.period)..\(edge.days.last!.address.period), up to the last closed candle") }
            summary.seconds = Date().timeIntervalSince(started)
            return summary
        }

        // What the listing shows without a request: periods not published, keys with no archive.
        for unit in plan.notPublished {
            let status = index[unit.id]?.status
            // Already known (or done, or superseded): no change, nothing to journal.
            guard status != .done && status != .superseded && status != .notPublished else { continue }
            await store.update(unit.id, key: unit.key) { $0.status = .notPublished; $0.error = nil; $0.updatedAt = isoNow() }
        }
        summary.notPublished = plan.notPublished.count
        for (coverage, months) in plan.unpublishedKeys {
            logger.error("\(coverage.key): \(coverage.noArchiveMessage)")
            for unit in months {
                await store.update(unit.id, key: unit.key) {
                    $0.status = .failed
                    $0.error = coverage.noArchiveMessage
                    $0.attempts += 1
                    $0.updatedAt = isoNow()
                }
            }
            summary.failed += months.count
            summary.failures[coverage.key] = coverage.noArchiveMessage
        }

        let sink: RowSink
        switch spec.target {
        case let .marketstore(url):
            let client = MarketStoreClient(url: url, timeouts: .init(connect: 5, total: 300))
            do {
                _ = try await client.version()
            } catch {
                throw TargetUnavailable(description: "MarketStore at \(url) is unreachable: \(error)")
            }
            sink = SchemaGuard(client: client)
        case let .directory(path):
            do {
                sink = DirectorySink(writer: try DirectoryWriter(root: path, force: options.forceDirectory))
            } catch {
                throw TargetUnavailable(description: "\(error)")
            }
        }
        let progress = Progress(total: work.count, live: options.liveProgress, logger: logger)
        let ticker = Task { await progress.tick() }
        defer { ticker.cancel() }

        let writer = Writer(spec: spec, sink: sink, store: store, progress: progress, logger: logger)
        do {
            try await runPipeline(work: work, fetcher: fetcher, writer: writer, store: store, progress: progress)
            // `to: now`: the days after the archives, from REST, once the archives are written.
            let rest = try await fillFromREST(plan.restEdges, store: store, writer: writer, progress: progress)
            try await writer.flush()
            summary.restRequests = rest.counters.requests
            summary.restWeight = rest.counters.weight
            summary.restMaxUsedWeight1m = rest.counters.maxUsedWeight
            summary.restWeightBudget = rest.budget
            summary.restBudgetWaits = rest.counters.budgetWaits
            summary.restRateLimited = rest.counters.rateLimited
            summary.restStopped = rest.stopped
        } catch let error as FileWriteError {
            // The manifest could not be saved (a full disk): what is recorded stays consistent, the
            // rest is written again by the re-run (fixed-length slots make that idempotent).
            summary.stateError = "\(error)"
        }

        // Daily units replaced by their monthly unit, now done.
        index = await store.currentIndex()
        for (daily, monthly) in plan.superseded {
            guard index[monthly]?.status == .done else { continue }
            await store.update(daily) { $0.status = .superseded; $0.error = nil }
            summary.superseded += 1
        }
        summary.superseded += await supersedeRESTDays(store: store)
        do {
            try await store.close()
        } catch let error as FileWriteError {
            summary.stateError = "\(error)"
        }
        return await finish(summary, started: started, writer: writer, progress: progress)
    }

    /// Downloads (N in parallel), decoders (one per core, at most 4) and the writer, joined by
    /// bounded queues.
    func runPipeline(work: [PlannedUnit], fetcher: ArchiveFetcher, writer: Writer, store: ManifestStore, progress: Progress) async throws {
        let archives = BoundedQueue<(PlannedUnit, Result<FetchResult, Error>)>(capacity: spec.downloads * 2)
        let pieces = BoundedQueue<DecodedPiece>(capacity: 4)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await fetcher.fetchAll(work, address: \.address, parallelism: self.spec.downloads, isCancelled: { Interruption.shared.requested }) { unit, result in
                    await archives.send((unit, result))
                }
                await archives.finish()
            }
            let decoders = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 4))
            let decodersLeft = Countdown(decoders)
            for lane in 0..<decoders {
                group.addTask {
                    let thread = DispatchQueue(label: "binance-import.decode-\(lane)")
                    while let (unit, result) = await archives.receive() {
                        if Interruption.shared.requested { continue }  // stopping: leave it pending
                        await self.decode(unit, result, on: thread, store: store, progress: progress, into: pieces)
                    }
                    if await decodersLeft.done() { await pieces.finish() }
                }
            }
            group.addTask {
                do {
                    while let piece = await pieces.receive() { try await writer.add(piece) }
                    try await writer.flush()
                } catch {
                    await archives.finish()
                    await pieces.finish()
                    throw error
                }
            }
            try await group.waitForAll()
        }
    }

    /// The summary's counts and exit code, from the run's counters.
    func finish(_ summary: RunSummary, started: Date, writer: Writer, progress: Progress) async -> RunSummary {
        var summary = summary
        let counts = await progress.counts()
        summary.done = counts.done
        summary.failed += counts.failed
        summary.notPublished += counts.notPublished
        summary.rows = counts.rows
        summary.anomalies = counts.anomalies
        summary.downloads = counts.downloads
        summary.writeRequests = await writer.requests
        summary.rowsByKey = await writer.rowsByKey
        summary.lastWriteByKey = await writer.lastWriteByKey
        summary.requestsByKey = await writer.requestsByKey
        summary.writeErrors = await writer.errorsByKind
        summary.rowsNotServedByMarketStore = await writer.unservedRows
        summary.failures.merge(counts.failures) { old, _ in old }
        summary.seconds = Date().timeIntervalSince(started)
        summary.rowsPerSecond = summary.seconds > 0 ? Double(summary.rows) / summary.seconds : 0
        summary.exitCode = summary.failed > 0 || summary.stateError != nil || summary.restStopped != nil ? 1 : 0
        summary.peakRssBytes = peakRSS()
        if Interruption.shared.requested {
            summary.interrupted = true
            summary.exitCode = 1
        }
        let refusedEverything = await writer.refusedEverything
        if summary.failed > 0 && summary.done == 0 && refusedEverything { summary.exitCode = 3 }
        await progress.finish()
        return summary
    }

    /// A local mirror that does not exist, or is not a mirror of the data tree, is a job file
    /// error: it would list as empty and every unit would look unpublished.
    func checkSource() throws {
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
    func makePlan(symbols: [String], today: ArchivePeriod, index: [String: UnitIndexEntry]) async throws -> ImportPlan {
        do {
            let dailies = index.compactMap { $0.value.status != .superseded && $0.key.contains("/daily/") ? $0.key : nil }
            return try await ImportPlan.make(spec: spec, symbols: symbols, today: today, lister: makeLister(), dailies: dailies)
        } catch let error as SourceError {
            switch error {
            case .listing, .http(_, 400..<500, _):
                throw JobFileError(file: spec.file, key: "source.listing_url", reason: "\(error)")
            default: throw error
            }
        }
    }

    /// A done unit is skipped while its archive is unchanged: the same listing fingerprint as when
    /// it was imported (no request at all), or, when the fingerprint changed or was never
    /// recorded, the same published CHECKSUM (one small request; the new fingerprint is kept).
    func isUnchanged(_ unit: PlannedUnit, _ entry: UnitIndexEntry, fetcher: ArchiveFetcher, store: ManifestStore) async -> Bool {
        if let listing = unit.listing, entry.listing == listing { return true }
        guard let record = await store.record(unit.id) else { return false }
        let published: String?
        do {
            published = try await fetcher.publishedChecksum(unit.address)
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
    func decode(_ unit: PlannedUnit, _ result: Result<FetchResult, Error>, on thread: DispatchQueue, store: ManifestStore, progress: Progress,
                into pieces: BoundedQueue<DecodedPiece>) async {
        let archive: LocalArchive
        switch result {
        case let .failure(error):
            await fail(unit, "download: \(error)", store: store, progress: progress)
            return
        case .success(.notPublished):
            await store.update(unit.id, key: unit.key) { $0.status = .notPublished; $0.error = nil; $0.updatedAt = isoNow() }
            await progress.notPublished()
            return
        case let .success(.ready(a)):
            archive = a
        }
        if !archive.fromCache { await progress.downloaded() }
        let options = KlineDecodeOptions(interval: unit.address.interval, period: unit.address.period, columns: spec.columns,
                                         floatType: spec.floatType, policy: spec.validation)
        do {
            try await onThread(thread) { try self.decodeBlocking(unit, archive, options: options, into: pieces) }
        } catch {
            await fail(unit, "\(error)", store: store, progress: progress)
        }
    }

    /// The decode itself, on a thread of its own (it blocks while the writer is behind: that is
    /// the backpressure). Sends the unit's pieces; the last one carries the outcome.
    func decodeBlocking(_ unit: PlannedUnit, _ archive: LocalArchive, options: KlineDecodeOptions,
                        into pieces: BoundedQueue<DecodedPiece>) throws {
        func send(_ piece: DecodedPiece) {
            let done = DispatchSemaphore(value: 0)
            Task { await pieces.send(piece); done.signal() }
            done.wait()
        }
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
        let report = try KlineArchiveDecoder.stream(path: archive.path, options: options, chunkRows: spec.chunkRows) { batch in
            digest.add(batch)
            if streaming { send(DecodedPiece(unit: unit, batch: batch, outcome: nil)) } else { held.append(batch) }
        }
        if report.duplicates > 0 {  // the target keeps the last row of a slot: digest what it keeps
            digest = ColumnDigest()
            digest.add(try KlineArchiveDecoder.decode(path: archive.path, options: options).batch)
        }
        let outcome = UnitOutcome(archive: archive, report: report, digest: digest)
        if held.isEmpty { held = [emptyBatch()] }
        for (i, batch) in held.enumerated() {
            send(DecodedPiece(unit: unit, batch: batch, outcome: i == held.count - 1 ? outcome : nil))
        }
    }

    func emptyBatch() -> KlineBatch {
        KlineBatch(epochs: [], columns: spec.columns.map {
            ($0, $0 == .trades ? ColumnValues.int64([]) : spec.floatType == .float32 ? .float32([]) : .float64([]))
        })
    }

    func fail(_ unit: PlannedUnit, _ message: String, store: ManifestStore, progress: Progress) async {
        logger.error("\(unit.id): \(message)")
        await store.update(unit.id, key: unit.key) {
            $0.status = .failed
            $0.error = message
            $0.attempts += 1
            $0.updatedAt = isoNow()
        }
        await progress.failed(unit.id, message)
        do {
            try await store.commit()
        } catch {
            logger.error("could not save the manifest after \(unit.id) failed: \(error) (the end of the run saves it again)")
        }
    }
}

/// Runs blocking work on `queue`, off Swift's cooperative pool. A serial queue has a thread of
/// its own that it keeps between calls (a thread made per call cost 12,000 thread creations in a
/// run of 9,600 tiny units).
func onThread<T: Sendable>(_ queue: DispatchQueue, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        queue.async { continuation.resume(with: Result { try body() }) }
    }
}

/// What a unit's decode produced, recorded when its last rows are acknowledged.
struct UnitOutcome: Sendable {
    /// The archive read (nil for a REST unit), its verified SHA-256.
    var archivePath: String?
    var sha256: String?
    var verified: Bool
    var report: KlineReport
    var digest: ColumnDigest
    /// A REST unit: the open time of the last closed candle covered.
    var coveredTo: Int64?
    /// A REST day continued after an earlier run's candles: its rows add to the recorded ones.
    var continues = false

    init(archive: LocalArchive, report: KlineReport, digest: ColumnDigest) {
        (archivePath, sha256, verified) = (archive.path, archive.sha256, archive.verified)
        (self.report, self.digest) = (report, digest)
    }

    init(restReport report: KlineReport, digest: ColumnDigest, coveredTo: Int64) {
        (archivePath, sha256, verified) = (nil, nil, false)
        (self.report, self.digest, self.coveredTo) = (report, digest, coveredTo)
    }
}

/// Rows of one unit on their way to the writer; the last piece of a unit carries its outcome.
struct DecodedPiece: Sendable {
    var unit: PlannedUnit
    var batch: KlineBatch
    var outcome: UnitOutcome?
}

actor Countdown {
    private var left: Int
    init(_ n: Int) { left = n }
    func done() -> Bool {
        left -= 1
        return left == 0
    }
}
