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
    /// Nightly: start at the month of the newest unit done (earlier months are settled).
    public var nightly = false
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
public final class ImportRunner: @unchecked Sendable {
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

    /// The job's symbols: listed in the file, or discovered from the source.
    func symbols() async throws -> [String] {
        if let symbols = spec.symbols { return symbols }
        let found = try await makeLister().symbols(market: spec.market, quote: spec.discoverQuote, match: spec.discoverMatch)
        if found.isEmpty { throw JobFileError(file: spec.file, key: "discover", reason: "no symbol of \(spec.market.rawValue) matches") }
        return found
    }

    public func run(_ options: RunOptions) async throws -> RunSummary {
        let started = Date()
        var summary = RunSummary(job: spec.name, startedAt: isoNow())
        summary.manifest = spec.manifest
        let lock = try JobLock(manifest: spec.manifest)
        defer { _ = lock }
        let store = ManifestStore(path: spec.manifest, manifest: try Manifest.load(path: spec.manifest, job: spec.name))

        let symbols = try await symbols()
        var from: ArchivePeriod?
        if options.nightly, let newest = await store.newestDoneMonth() { from = max(newest, spec.from) }
        let plan = try await ImportPlan.make(spec: spec, symbols: symbols, today: options.today, lister: makeLister(),
                                             from: from, manifest: await store.snapshot())
        summary.units = plan.units.count

        // Decide what to do with each unit.
        let fetcher = makeFetcher()
        var work: [PlannedUnit] = []
        for unit in plan.units {
            let record = await store.record(unit.id)
            if record?.status == .done && !options.force {
                if let sha = record?.sha256 {
                    let published = try? await fetcher.publishedChecksum(unit.address)
                    if published == sha || published == nil { summary.skipped += 1; continue }
                    logger.info("re-published archive: \(unit.id) (\(sha.prefix(12)) -> \(published!.prefix(12)))")
                } else {
                    summary.skipped += 1
                    continue
                }
            }
            work.append(unit)
        }
        if options.dryRun {
            let cached = work.filter { FileManager.default.fileExists(atPath: fetcher.cachedPath($0.address)) }.count
            print("plan for \(spec.name): \(plan.units.count) units; \(summary.skipped) already done; \(work.count) to import (\(cached) archives cached, \(work.count - cached) to fetch)")
            for unit in work.prefix(200) { print("  \(unit.id) -> \(unit.key)") }
            if work.count > 200 { print("  ... and \(work.count - 200) more") }
            for (daily, monthly) in plan.superseded.sorted(by: { $0.key < $1.key }) { print("  superseded when done: \(daily) by \(monthly)") }
            summary.seconds = Date().timeIntervalSince(started)
            return summary
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

        let archives = BoundedQueue<(PlannedUnit, Result<FetchResult, Error>)>(capacity: spec.downloads * 2)
        let pieces = BoundedQueue<DecodedPiece>(capacity: 4)
        let writer = Writer(spec: spec, sink: sink, store: store, progress: progress, logger: logger)
        var unitsByAddress: [ArchiveAddress: PlannedUnit] = [:]
        for unit in plan.units { unitsByAddress[unit.address] = unit }
        let unitsByID = unitsByAddress

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await fetcher.fetchAll(work.map(\.address), parallelism: self.spec.downloads, isCancelled: { Interruption.shared.requested }) { address, result in
                    await archives.send((unitsByID[address]!, result))
                }
                await archives.finish()
            }
            let decoders = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 4))
            let decodersLeft = Countdown(decoders)
            for _ in 0..<decoders {
                group.addTask {
                    while let (unit, result) = await archives.receive() {
                        if Interruption.shared.requested { continue }  // stopping: leave it pending
                        await self.decode(unit, result, store: store, progress: progress, into: pieces)
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

        // Daily units replaced by their monthly unit, now done.
        for (daily, monthly) in plan.superseded {
            guard await store.record(monthly)?.status == .done else { continue }
            await store.update(daily) { $0.status = .superseded; $0.error = nil }
            summary.superseded += 1
        }
        try await store.save()
        let counts = await progress.counts()
        summary.done = counts.done
        summary.failed = counts.failed
        summary.notPublished = counts.notPublished
        summary.rows = counts.rows
        summary.anomalies = counts.anomalies
        summary.downloads = counts.downloads
        summary.writeRequests = await writer.requests
        summary.rowsNotServedByMarketStore = await writer.unservedRows
        summary.failures = counts.failures
        summary.seconds = Date().timeIntervalSince(started)
        summary.rowsPerSecond = summary.seconds > 0 ? Double(summary.rows) / summary.seconds : 0
        summary.exitCode = summary.failed > 0 ? 1 : 0
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

    /// Decodes one fetched archive into pieces for the writer; records failures in the manifest.
    func decode(_ unit: PlannedUnit, _ result: Result<FetchResult, Error>, store: ManifestStore, progress: Progress,
                into pieces: BoundedQueue<DecodedPiece>) async {
        let archive: LocalArchive
        switch result {
        case let .failure(error):
            await fail(unit, "download: \(error)", store: store, progress: progress)
            return
        case .success(.notPublished):
            await store.update(unit.id) { $0.status = .notPublished; $0.error = nil; $0.updatedAt = isoNow() }
            await progress.notPublished()
            return
        case let .success(.ready(a)):
            archive = a
        }
        if !archive.fromCache { await progress.downloaded() }
        let options = KlineDecodeOptions(interval: unit.address.interval, period: unit.address.period, columns: spec.columns,
                                         floatType: spec.floatType, policy: spec.validation)
        do {
            try await onThread { try self.decodeBlocking(unit, archive, options: options, into: pieces) }
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
        await store.update(unit.id) {
            $0.status = .failed
            $0.error = message
            $0.attempts += 1
            $0.updatedAt = isoNow()
        }
        await progress.failed(unit.id, message)
        try? await store.save()
    }
}

/// Runs blocking work on a thread of its own, off Swift's cooperative pool.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 22
        thread.start()
    }
}

/// What a unit's decode produced, recorded when its last rows are acknowledged.
struct UnitOutcome: Sendable {
    var archive: LocalArchive
    var report: KlineReport
    var digest: ColumnDigest
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

/// The manifest, shared by the pipeline stages.
actor ManifestStore {
    let path: String
    private var manifest: Manifest

    init(path: String, manifest: Manifest) {
        self.path = path
        self.manifest = manifest
    }

    func snapshot() -> Manifest { manifest }
    func record(_ id: String) -> UnitRecord? { manifest.units[id] }

    func update(_ id: String, key: String? = nil, _ change: (inout UnitRecord) -> Void) {
        var record = manifest.units[id] ?? UnitRecord(id: id, status: .pending, key: key ?? "", remotePath: id)
        if let key { record.key = key }
        change(&record)
        manifest.units[id] = record
    }

    func save() throws { try manifest.save(path: path) }

    /// The month of the newest done unit (nightly runs start there).
    func newestDoneMonth() -> ArchivePeriod? {
        manifest.units.values.filter { $0.status == .done }.compactMap { record -> ArchivePeriod? in
            KlineArchiveName(fileName: record.remotePath).map { ArchivePeriod(year: $0.period.year, month: $0.period.month)! }
        }.max { $0.start < $1.start }
    }
}
