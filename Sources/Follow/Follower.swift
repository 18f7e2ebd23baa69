import BinanceSource
import Columnar
import CurlHTTP
import DurableFiles
import Foundation
import ImportPipeline
import JobMetrics
import JobModel
import JobState
import KlineArchive
import Logging
import MarketStore
import MarketStoreModel
import WSClient

/// Options of `follow`.
public struct FollowOptions: Sendable {
    /// Seconds between writes of the closed klines received (one multi-key request).
    public var flushInterval = 1.0
    public var metricsHost = "127.0.0.1"
    public var metricsPort = 9108
    /// /healthz turns unhealthy when a key's newest closed kline arrived longer ago than this
    /// (default: two of the job's longest interval).
    public var staleAfter: Double?
    /// The streams' base URL (default: Binance's of the market).
    public var streamURL: String?
    public var today: ArchivePeriod

    public init(today: ArchivePeriod) { self.today = today }
}

/// `follow`: catch up (archives, then REST to the last closed kline), then Binance's combined
/// kline streams into MarketStore. Closed klines only (`k.x`), batched across keys every flush
/// interval into one Write through the schema guard, each recorded in the state as the REST day
/// unit it continues. A kline that does not follow the last one written (a reconnect, a stall,
/// MarketStore down and back) first has the missed klines filled from REST. Delivery is
/// at-least-once; fixed-length slots make a repeated kline harmless, and one already written is
/// dropped. SIGINT/SIGTERM: the received klines are written and recorded, then the process ends.
public final class Follower: Sendable {
    package let spec: JobSpec
    package let logger: Logger
    /// Set by a signal: what was received is written and recorded, then `run` returns.
    package let stop: StopRequest
    /// The streams carry klines only (`followRefusal` refuses every other dataset).
    static let streamed = KlineDataset.klines

    public init(spec: JobSpec, logger: Logger, stop: StopRequest = StopRequest()) {
        self.stop = stop
        var spec = spec
        spec.to = .now
        self.spec = spec
        self.logger = logger
    }

    /// A kline received, waiting for the next write.
    package struct Received: Sendable {
        var openTime: Int64  // s
        var csvLine: String
        var arrived: Double
    }

    /// What the follow loop shares between the stream readers and the writer task.
    package actor Pending {
        var klines: [String: [Int64: Received]] = [:]
        /// The open time (s) of the last kline recorded per key.
        var covered: [String: Int64] = [:]
        var needsFill: Set<String> = []

        /// The newest open time received or written for the key.
        var newest: [String: Int64] = [:]

        /// Adds a closed kline; false for one already received or written. A kline that does not
        /// follow the newest one (`step` later) marks the key for a gap fill.
        func add(_ key: String, _ r: Received, step: Int64) -> Bool {
            if let c = covered[key], r.openTime <= c { return false }
            if klines[key]?[r.openTime] != nil { return false }
            let last = [newest[key], covered[key]].compactMap { $0 }.max()
            if let last, r.openTime > last + step { needsFill.insert(key) }
            newest[key] = max(last ?? r.openTime, r.openTime)
            klines[key, default: [:]][r.openTime] = r
            return true
        }
        func take() -> [String: [Int64: Received]] {
            defer { klines = [:] }
            return klines
        }
        func setCovered(_ key: String, _ t: Int64) { covered[key] = max(covered[key] ?? .min, t) }
        func markGap(_ key: String) { needsFill.insert(key) }
        func takeGaps() -> Set<String> {
            defer { needsFill = [] }
            return needsFill
        }
    }

    public func run(_ options: FollowOptions) async throws -> Int32 {
        guard case let .marketstore(url) = spec.target else {
            throw JobFileError(file: spec.file, key: "target", reason: "follow writes to a running MarketStore; a data directory belongs to the server that serves it (use run for a stopped server's directory)")
        }
        if let refusal = spec.dataset.followRefusal { throw JobFileError(file: spec.file, key: "dataset", reason: refusal) }
        // 1. Catch up: the archives, then REST to the last closed kline.
        let runner = ImportRunner(spec: spec, logger: logger, stop: stop)
        let catchUp = try await runner.run(RunOptions(today: options.today))
        logger.info("caught up: \(catchUp.done) units done, \(catchUp.failed) failed, \(catchUp.rows) rows")
        if let signalled = stop.exitCode { return signalled }

        // 2. The state, the writer and the metrics for the live part.
        let lock = try JobLock(manifest: spec.manifest)
        defer { _ = lock }
        let state = StateRecorder(try ManifestStore.open(manifest: spec.manifest, job: spec.name))
        let client = MarketStoreClient(url: url, timeouts: .init(connect: 5, total: 30, lowSpeedSeconds: spec.stallSeconds), caFile: spec.caFile)
        let progress = Progress(total: 0, live: false, logger: logger)
        let writer = Writer(spec: spec, sink: SchemaGuard(client: client), state: state, progress: progress, logger: logger, stop: stop)
        // One REST client for every gap fill: its weight budget holds across them.
        let rest = spec.restClient()
        let filler = RestFiller(spec: spec, dataset: Self.streamed, stop: stop, logger: logger)
        let symbols = try await runner.planner.symbols()
        var keys: [String: (symbol: String, interval: KlineInterval)] = [:]
        var streamKeys: [String: String] = [:]
        for symbol in symbols {
            for interval in spec.intervals {
                let key = try spec.key(symbol: symbol, interval: interval)
                keys[key] = (symbol, interval)
                streamKeys[KlineStreams.name(symbol: symbol, interval: interval)] = key
            }
        }
        let streams = KlineStreams(spec.market)
        let urls = streams.urls(base: options.streamURL ?? streams.defaultBaseURL, names: streamKeys.keys.sorted())
        let metrics = FollowMetrics(job: spec.name, connections: urls)
        let pending = Pending()
        for (key, k) in keys {
            if let covered = await lastCovered(key: key, symbol: k.symbol, interval: k.interval, today: options.today, state: state, filler: filler) {
                await pending.setCovered(key, covered)
            }
        }
        let longest = spec.intervals.compactMap(\.seconds).max() ?? 60
        let staleAfter = options.staleAfter ?? Double(2 * longest)
        let keyList = keys.keys.sorted()
        let server = try await MetricsServer.start(host: options.metricsHost, port: options.metricsPort, logger: logger) { path in
            switch path {
            case "/metrics": return (200, "text/plain; version=0.0.4", await metrics.text())
            case "/healthz":
                let (healthy, body) = await metrics.health(keys: keyList, staleAfter: staleAfter)
                return (healthy ? 200 : 503, "application/json", body + "\n")
            case "/", "/index.html":
                // The coverage page of `status --html`, from the state as committed, with each key's lag.
                do {
                    let manifest = try Manifest.load(path: self.spec.manifest, job: self.spec.name)
                    let grid = CoverageGrid(manifest: manifest, months: self.spec.months(today: options.today), keys: keyList)
                    let page = CoveragePage(job: self.spec.name, manifest: manifest, grid: grid, generated: UTCCalendar.iso8601(Int64(Date().timeIntervalSince1970)),
                                            lags: await metrics.lags(keys: keyList))
                    return (200, "text/html; charset=utf-8", page.html)
                } catch {
                    return (500, "text/plain", "the state could not be read: \(error)\n")
                }
            default: return (404, "text/plain", "not found\n")
            }
        }
        defer { server.serving.cancel() }
        logger.notice("following \(streamKeys.count) streams on \(urls.count) connection(s); metrics on http://\(options.metricsHost):\(server.port)/metrics")

        // 3. Readers, the writer task, the MarketStore check, and the stop watch.
        let (keyMap, streamMap) = (keys, streamKeys)
        await withTaskGroup(of: Void.self) { group in
            for streamURL in urls {
                group.addTask { await self.read(streamURL, streamKeys: streamMap, keys: keyMap, pending: pending, metrics: metrics) }
            }
            group.addTask {
                // A cheap RPC with short timeouts (the version is cached after the first answer).
                let check = MarketStoreClient(url: url, timeouts: .init(connect: 2, total: 3), caFile: self.spec.caFile)
                while !Task.isCancelled {
                    let reachable = (try? await check.listSymbols()) != nil
                    await metrics.marketstore(reachable: reachable)
                    try? await Task.sleep(nanoseconds: 2_000_000_000)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(nanoseconds: UInt64(options.flushInterval * 1e9))
                    await self.write(pending: pending, writer: writer, state: state, filler: filler, rest: rest, keys: keyMap, today: options.today, metrics: metrics)
                }
            }
            await stop.wait()
            group.cancelAll()
        }
        // 4. Stop: what was received is written and recorded.
        await write(pending: pending, writer: writer, state: state, filler: filler, rest: rest, keys: keys, today: options.today, metrics: metrics)
        try await state.close()
        logger.notice("stopped: everything received was written and recorded")
        return stop.exitCode ?? 0
    }

    /// 0.5 s after a lost connection, doubling to 30 s while it keeps failing, with jitter.
    package static let reconnect = RetryPolicy(maxAttempts: .max, baseDelay: 0.5, maxDelay: 30, jitter: 0.25)

    /// One connection's reader: reconnects with backoff and jitter, and before the 24-hour limit.
    package func read(_ url: String, streamKeys: [String: String], keys: [String: (symbol: String, interval: KlineInterval)],
              pending: Pending, metrics: FollowMetrics) async {
        var failures = 0
        while !Task.isCancelled {
            let started = ContinuousClock.now
            do {
                try await WebSocketClient.connect(url: url, configuration: .init(maxFrameSize: 1 << 20, autoPing: .enabled(timePeriod: .seconds(30))),
                                                  logger: logger) { inbound, _, _ in
                    await metrics.connection(url, up: true)
                    for try await message in inbound.messages(maxSize: 1 << 20) {
                        if Task.isCancelled || ContinuousClock.now - started > KlineStreams.maxConnectionAge { break }
                        guard case let .text(text) = message else { continue }
                        let parsed: KlineEvent?
                        do {
                            parsed = try KlineEvent.parse(text)
                        } catch {
                            // One bad frame is not a lost connection: count it, skip it, read on.
                            await metrics.malformedFrame()
                            self.logger.warning("stream \(url.prefix(80)): malformed frame skipped: \(error) in \(text.prefix(200))")
                            continue
                        }
                        guard let event = parsed, event.closed, let key = streamKeys[event.stream],
                              let step = keys[key]?.interval.seconds else { continue }
                        await metrics.closedArrived(key: key)
                        let open = RestKline.milliseconds(event.openTime) / 1000
                        let fresh = await pending.add(key, Received(openTime: open, csvLine: event.csvLine, arrived: Date().timeIntervalSince1970), step: step)
                        if !fresh { await metrics.duplicate() }
                    }
                }
            } catch {
                logger.warning("stream \(url.prefix(80)): \(error)")
            }
            await metrics.connection(url, up: false)
            for key in Set(streamKeys.values) { await pending.markGap(key) }  // anything missed is filled from REST
            if Task.isCancelled { return }
            // It was up a while: start the backoff again.
            failures = ContinuousClock.now - started > .seconds(10) ? 1 : failures + 1
            try? await Task.sleep(nanoseconds: UInt64(Self.reconnect.backoff(after: failures) * 1e9))
        }
    }

    /// Writes what was received: keys with a gap are filled from REST first (klines the fill
    /// covered are dropped), then every key's klines in one multi-key request.
    package func write(pending: Pending, writer: Writer, state: StateRecorder, filler: RestFiller, rest: RestClient,
               keys: [String: (symbol: String, interval: KlineInterval)], today: ArchivePeriod, metrics: FollowMetrics) async {
        guard await metrics.marketstoreUp else {
            // MarketStore down: nothing is written (nor asked of REST) until it answers again;
            // what arrives meanwhile is filled from REST then.
            for key in await pending.take().keys { await pending.markGap(key) }
            return
        }
        for key in await pending.takeGaps() {
            guard let k = keys[key] else { continue }
            do {
                let earliest = await pending.klines[key]?.keys.min()
                let days = try restDays(key: key, symbol: k.symbol, interval: k.interval, from: await pending.covered[key] ?? earliest, today: today, filler: filler)
                let outcome = try await filler.fill([RestEdge(key: key, symbol: k.symbol, interval: k.interval, days: days)], client: rest,
                                                            state: state, writer: writer, progress: Progress(total: 0, live: false, logger: logger))
                try await writer.flush()
                await metrics.gapFilled(restWeight: outcome.counters.weight)
                if let stopped = outcome.stopped { logger.error("gap fill of \(key): \(stopped)") }
                for day in days {
                    if let r = await state.record(day.id), r.status == .done, let c = r.coveredTo { await pending.setCovered(key, c) }
                }
            } catch {
                logger.warning("gap fill of \(key) failed (\(error)); tried again at the next write")
                await writer.forgetFailures()
                await pending.markGap(key)
            }
        }
        let received = await pending.take()
        guard !received.isEmpty else {
            await metrics.sync(await writer.counters)
            return
        }
        var lags: [String: [Double]] = [:]
        var last: [String: Int64] = [:]
        do {
            for (key, klines) in received.sorted(by: { $0.key < $1.key }) {
                guard let k = keys[key] else { continue }
                let covered = await pending.covered[key]
                let fresh = klines.values.filter { $0.openTime > (covered ?? .min) }.sorted { $0.openTime < $1.openTime }
                // Each UTC day's klines continue that day's unit.
                for (day, group) in Dictionary(grouping: fresh, by: { floorDiv($0.openTime, 86400) * 86400 }).sorted(by: { $0.key < $1.key }) {
                    guard let end = group.last?.openTime else { continue }
                    let unit = try filler.day(symbol: k.symbol, interval: k.interval, day: PeriodPlanner.today(now: day), key: key)
                    try await writer.add(try filler.piece(unit, csv: Array(group.map { $0.csvLine + "\n" }.joined().utf8), interval: k.interval,
                                                              source: "stream \(key)", coveredTo: end, continues: true, policy: .report, streamed: true))
                }
                if let end = fresh.last?.openTime { last[key] = end }
                lags[key] = fresh.map(\.arrived)
            }
            try await writer.flush()
            try await state.commit()
            let now = Date().timeIntervalSince1970
            for (key, end) in last {
                await pending.setCovered(key, end)
                await metrics.written(lags: (lags[key] ?? []).map { now - $0 })
            }
        } catch {
            // MarketStore down (or a refusal): nothing of this batch is recorded; the keys are
            // filled from REST once writes go through again.
            logger.warning("write of \(received.count) keys failed (\(error)); filled from REST at the next write")
            await writer.forgetFailures()
            for key in received.keys { await pending.markGap(key) }
        }
        await metrics.sync(await writer.counters)
    }

    /// The last kline open time (s) the state records for the key: its REST days' coverage, or
    /// the end of its newest done daily archive.
    package func lastCovered(key: String, symbol: String, interval: KlineInterval, today: ArchivePeriod, state: StateRecorder, filler: RestFiller) async -> Int64? {
        guard let step = interval.seconds else { return nil }
        var best: Int64?
        var day = today
        for _ in 0..<3 {
            if let rest = try? filler.day(symbol: symbol, interval: interval, day: day, key: key) {
                if let r = await state.record(rest.id), r.status == .done, let c = r.coveredTo { best = max(best ?? c, c) }
                if let r = await state.record(rest.address.remotePath), r.status == .done { best = max(best ?? .min, day.end - step) }
            }
            day = PeriodPlanner.today(now: day.start - 86400)
        }
        return best
    }

    /// The REST days of a gap: the day of the last kline covered (or of the first received, or
    /// today) and the two after it; the fill itself stops at the last closed kline.
    package func restDays(key: String, symbol: String, interval: KlineInterval, from covered: Int64?, today: ArchivePeriod, filler: RestFiller) throws -> [PlannedUnit] {
        var day = covered.map { PeriodPlanner.today(now: $0) } ?? today
        var days: [PlannedUnit] = []
        for _ in 0..<3 {
            days.append(try filler.day(symbol: symbol, interval: interval, day: day, key: key))
            day = PeriodPlanner.day(after: day)
        }
        return days
    }
}
