import Foundation
import KlineArchive
import Logging
import BinanceSource
import Columnar
import PipelineFakes
import TestSupport
import XCTest

@testable import ImportPipeline
@testable import JobModel
@testable import JobState

/// The pipeline in-process, from the samples' mirror into an in-memory target: no server, no
/// binary, milliseconds a run. Resume, refusals and stops, as the state records them.
final class InProcessPipelineTests: TemporaryDirectoryTestCase {

    /// jobs/demo.yml (BTCUSDT and ETHUSDT, 1h, 2024-01..02) reading the samples' mirror in
    /// place, its state in this test's folder; `chunkRows` rows a request.
    func demoSpec(chunkRows: Int = 50_000) throws -> JobSpec {
        var spec = try JobSpec.load(path: ServerProcess.repoRoot.appendingPathComponent("jobs/demo.yml").path)
        spec.baseURL = ServerProcess.repoRoot.appendingPathComponent("samples/mirror").path
        spec.cacheDirectory = dir.appendingPathComponent("cache").path
        spec.manifest = dir.appendingPathComponent("state/demo.manifest.db").path
        spec.chunkRows = chunkRows
        return spec
    }

    func run(_ spec: JobSpec, into target: MemoryTarget, stop: StopRequest = StopRequest(), listing: (any FolderListing)? = nil,
             archives: (any ArchiveSource)? = nil) async throws -> RunSummary {
        var options = RunOptions(today: ArchivePeriod(day: "2024-06-01")!)
        options.sink = target
        let logger = Logger(label: "test")
        return try await ImportRunner(spec: spec, logger: logger, stop: stop, listing: listing, archives: archives).run(options)
    }

    /// The samples' mirror as the job reads it (archives verified in place).
    func mirrorArchives(_ spec: JobSpec) -> ArchiveFetcher {
        ArchiveFetcher(location: SourceLocation(spec.baseURL), cacheDirectory: spec.cacheDirectory, checksumRequired: spec.checksumRequired)
    }

    /// One download fails: its unit fails alone, with the archive and the reason; the other
    /// three land; the re-run fetches that archive alone and completes the job.
    func testAFailedDownloadFailsItsUnitAloneAndTheRerunFetchesOnlyIt() async throws {
        let spec = try demoSpec()
        let broken = "data/spot/monthly/klines/ETHUSDT/1h/ETHUSDT-1h-2024-02.zip"
        let failing = FaultyArchives(mirrorArchives(spec)) { path, _ in path == broken }
        let target = MemoryTarget()
        let first = try await run(spec, into: target, archives: failing)
        XCTAssertEqual([first.done, first.failed, Int(first.exitCode)], [3, 1, 1])
        XCTAssertEqual(Set(failing.fetched).count, 4, "every archive was asked for")
        XCTAssertEqual(first.failures, [broken: "download: the download of \(broken) failed (test fault)"])
        XCTAssertEqual(try statuses(spec)[broken], .failed)
        XCTAssertEqual(target.bucket("ETHUSDT/1H/OHLCV")?.epochs.count, 744, "January landed")

        let again = FaultyArchives(mirrorArchives(spec)) { _, _ in false }
        let second = try await run(spec, into: target, archives: again)
        XCTAssertEqual([second.done, second.skipped, Int(second.exitCode)], [1, 3, 0])
        XCTAssertEqual(again.fetched, [broken], "only the failed archive is fetched again")
        XCTAssertEqual(target.bucket("ETHUSDT/1H/OHLCV")?.epochs.count, 744 + 696)
        XCTAssertEqual(Set(try statuses(spec).values), [.done])
    }

    var mirror: MirrorListing { MirrorListing(root: ServerProcess.repoRoot.appendingPathComponent("samples/mirror").path) }

    /// One key's listing fails: that key's units fail with the reason, the other key lands, and
    /// the next run (its listing back) completes the job; when every listing fails the source is
    /// wrong (a job file error), and nothing is recorded.
    func testAFailedListingFailsItsKeyAloneAndTheNextRunCompletesIt() async throws {
        let spec = try demoSpec()
        let failing = FaultyListing(mirror) { prefix, _ in prefix.contains("/ETHUSDT/") }
        let target = MemoryTarget()
        let first = try await run(spec, into: target, listing: failing)
        XCTAssertEqual([first.done, first.failed, Int(first.exitCode)], [2, 2, 1])
        XCTAssertEqual(target.keys, ["BTCUSDT/1H/OHLCV"])
        XCTAssertTrue(first.failures["ETHUSDT/1H/OHLCV"]?.contains("the listing of data/spot/monthly/klines/ETHUSDT/1h/") == true, "\(first.failures)")
        XCTAssertTrue(failing.prefixes.contains { $0.contains("/BTCUSDT/") })
        let second = try await run(spec, into: target, listing: FaultyListing(mirror) { _, _ in false })
        XCTAssertEqual([second.done, second.skipped, Int(second.exitCode)], [2, 2, 0])
        XCTAssertEqual(target.bucket("ETHUSDT/1H/OHLCV")?.epochs.count, 744 + 696)

        // Every listing failing is the source's failure, not the keys': the run ends with it,
        // and nothing is recorded.
        var other = try demoSpec()
        other.manifest = dir.appendingPathComponent("state/other.manifest.db").path
        do {
            _ = try await run(other, into: MemoryTarget(), listing: FaultyListing(mirror) { _, _ in true })
            XCTFail("every listing failed: the run cannot go on")
        } catch let error as FaultyListing.Refused {
            XCTAssertTrue(error.prefix.hasPrefix("data/spot/monthly/klines/"), "\(error)")
        }
        XCTAssertFalse(StateDatabase.isDatabase(Manifest.databasePath(other.manifest)), "no state recorded")
    }

    func statuses(_ spec: JobSpec) throws -> [String: UnitRecord.Status] {
        try Manifest.load(path: spec.manifest, job: spec.name).units.mapValues(\.status)
    }

    /// Every row of the samples lands once, exactly as the decoder reads the archive.
    func testARunLandsEveryRowInMemory() async throws {
        let spec = try demoSpec()
        let target = MemoryTarget()
        let summary = try await run(spec, into: target)
        XCTAssertEqual([summary.done, summary.failed, Int(summary.exitCode)], [4, 0, 0])
        XCTAssertEqual(target.keys, ["BTCUSDT/1H/OHLCV", "ETHUSDT/1H/OHLCV"])
        let january = ServerProcess.repoRoot.appendingPathComponent("samples/mirror/data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip").path
        let decoded = try KlineArchiveDecoder.decode(path: january, options: KlineDecodeOptions(interval: KlineInterval("1h"), columns: spec.columns, floatType: spec.floatType)).batch
        let bucket = try XCTUnwrap(target.bucket("BTCUSDT/1H/OHLCV"))
        XCTAssertEqual(bucket.epochs.count, 744 + 696)
        XCTAssertEqual(Array(bucket.epochs.prefix(744)), decoded.epochs)
        XCTAssertEqual(Array(bucket.column("Close").prefix(744)), (0..<744).map { decoded.columns[3].values.double(at: $0) })
        XCTAssertEqual(Set(try statuses(spec).values), [.done])
    }

    /// A key the target refuses fails that key's units only; the other key's land in the same
    /// requests; the re-run retries the failed ones alone and lands them once the target takes them.
    func testARefusedKeyFailsItsUnitsAloneAndTheRerunCompletesIt() async throws {
        let spec = try demoSpec()
        let refusing = MemoryTarget(faults: [.refuse(key: "ETHUSDT/1H/OHLCV")])
        let first = try await run(spec, into: refusing)
        XCTAssertEqual([first.done, first.failed, Int(first.exitCode)], [2, 2, 1])
        XCTAssertEqual(refusing.keys, ["BTCUSDT/1H/OHLCV"])
        let states = try statuses(spec)
        XCTAssertEqual(states.filter { $0.key.contains("ETHUSDT") }.values.map(\.self), [.failed, .failed])
        let target = MemoryTarget()
        let second = try await run(spec, into: target)
        XCTAssertEqual([second.done, second.skipped, Int(second.exitCode)], [2, 2, 0])
        XCTAssertEqual(target.keys, ["ETHUSDT/1H/OHLCV"], "only the failed units are written again")
        XCTAssertEqual(target.bucket("ETHUSDT/1H/OHLCV")?.epochs.count, 744 + 696)
    }

    /// A stop during the second request: the units whose rows were all acknowledged by the
    /// first are done, the others stay pending, the run says which signal; the re-run skips the
    /// done ones and writes the rest.
    func testAStopDuringAWriteLeavesItsUnitsPendingAndTheRerunFinishes() async throws {
        let spec = try demoSpec(chunkRows: 744)  // a 31-day month of 1h klines fills a request
        let stop = StopRequest()
        let cut = MemoryTarget(faults: [.stopDuring(request: 2, stop: stop, signal: SIGTERM)])
        let first = try await run(spec, into: cut, stop: stop)
        XCTAssertEqual(first.exitCode, 143)
        XCTAssertTrue(first.interrupted)
        XCTAssertEqual(cut.requests.count, 2, "no request after the stop")
        let done = try statuses(spec).filter { $0.value == .done }.keys.sorted()
        XCTAssertFalse(done.isEmpty, "the first request's units are recorded")
        XCTAssertLessThan(done.count, 4, "the cut request's are not")
        let held = cut.keys.map { cut.bucket($0)?.epochs.count ?? 0 }.reduce(0, +)
        XCTAssertGreaterThanOrEqual(held, done.count * 696, "every done unit's rows are in the target")
        let target = MemoryTarget()
        let second = try await run(spec, into: target)
        XCTAssertEqual(second.exitCode, 0)
        XCTAssertEqual([second.skipped, second.done], [done.count, 4 - done.count])
        XCTAssertEqual(Set(try statuses(spec).values), [.done])
    }

    /// Planning reads the state and writes nothing (issue 32): the deep check it decides on is
    /// recorded by the run, not by the plan, so a plan made and dropped leaves the state as it was.
    func testPlanningWritesNothing() async throws {
        let spec = try demoSpec()
        _ = try await run(spec, into: MemoryTarget())
        let path = Manifest.databasePath(spec.manifest)
        let before = try StateDatabase(path: path, create: false).meta(StateRecorder.deepCheckMetaName)
        XCTAssertEqual(before, "\(ArchivePeriod(day: "2024-06-01")!.start)")
        let state = StateRecorder(try ManifestStore.open(manifest: spec.manifest, job: spec.name))
        let planner = Planner(spec: spec, logger: Logger(label: "test"))
        let options = RunOptions(today: ArchivePeriod(day: "2024-06-20")!)
        var summary = RunSummary(job: spec.name, startedAt: "")
        let binding = try await planner.bindState(options, state: state, summary: summary)
        let planned = try await spec.pipelineDataset().plan(planner, options, state: state, binding: binding, summary: &summary)
        XCTAssertTrue(planned.decisions.deepCheck.due, "19 days after the last: a deep check")
        try await state.commit(force: true)
        XCTAssertEqual(try StateDatabase(path: path, create: false).meta(StateRecorder.deepCheckMetaName), before, "the plan recorded nothing")
    }
}

/// Superseding and gaps in-process: a mirror built in a temporary folder from synthetic 1h
/// klines, the state and an in-memory target.
final class InProcessSupersedingTests: TemporaryDirectoryTestCase {

    /// A day of 1h klines of `symbol` as Binance's CSV (ms times), each close telling its hour.
    static func klines(day: Int64) -> String {
        (0..<24).map { h -> String in
            let open = (day + Int64(h) * 3600) * 1000
            let close = "\(100 + (day / 86400) % 50).\(h)"
            return "\(open),\(close),\(close),\(close),\(close),1.5,\(open + 3_599_999),10.5,3,0.5,5.5,0"
        }.joined(separator: "\n") + "\n"
    }

    /// Publishes an archive of `days` under its name in the mirror, with its CHECKSUM.
    func publish(_ name: String, folder: String, days: [Int64]) throws {
        let path = dir.appendingPathComponent("mirror").appendingPathComponent(folder)
        try FileManager.default.createDirectory(at: path, withIntermediateDirectories: true)
        let zip = ZipBuilder.single(String(name.dropLast(4)) + ".csv", days.map(Self.klines).joined())
        try Data(zip).write(to: path.appendingPathComponent(name))
        try "\(sha256Hex(zip))  \(name)\n".write(to: path.appendingPathComponent(name + ".CHECKSUM"), atomically: true, encoding: .utf8)
    }

    func testDailiesAreSupersededByTheirMonthlyAndItsGapCloses() async throws {
        let feb = ArchivePeriod(year: 2024, month: 2)!
        let days = PeriodPlanner.days(of: feb).map(\.start)
        for day in days where day != ArchivePeriod(day: "2024-02-10")!.start {
            try publish("SYNUSDT-1h-\(UTCCalendar.iso8601(day).prefix(10)).zip", folder: "data/spot/daily/klines/SYNUSDT/1h", days: [day])
        }
        let yaml = """
            name: supersede
            source: {base_url: \(dir.appendingPathComponent("mirror").path), cache_dir: \(dir.appendingPathComponent("cache").path)}
            market: spot
            symbols: [SYNUSDT]
            intervals: [1h]
            from: 2024-02
            to: 2024-02
            target: {directory: \(dir.appendingPathComponent("unused").path)}
            manifest: \(dir.appendingPathComponent("state/supersede.manifest.db").path)
            """
        let spec = try JobSpec.parse(yaml: yaml, file: "supersede.yml")
        let target = MemoryTarget()
        func run(today: String) async throws -> RunSummary {
            var options = RunOptions(today: ArchivePeriod(day: today)!)
            options.sink = target
            return try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(options)
        }
        let first = try await run(today: "2024-03-05")
        XCTAssertEqual(first.done, 28, "\(first.failures)")
        // The day between them with no archive is a gap, and said so (it was only "not published").
        XCTAssertEqual(first.gaps["SYNUSDT/1H/OHLCV"], ["2024-02-10T00:00:00Z..2024-02-10T23:00:00Z unexplained"])
        XCTAssertEqual(first.daysInNoArchive["SYNUSDT/1H/OHLCV"], "2024-02-10")
        XCTAssertEqual(target.bucket("SYNUSDT/1H/OHLCV")?.epochs.count, 28 * 24)

        // The monthly archive, whole, is published: it is imported over the same slots, the
        // dailies are superseded and the missing day is no longer a gap.
        try publish("SYNUSDT-1h-2024-02.zip", folder: "data/spot/monthly/klines/SYNUSDT/1h", days: days)
        let second = try await run(today: "2024-03-06")
        XCTAssertEqual(second.done, 1, "the monthly: \(second.failures)")
        XCTAssertEqual(second.superseded, 29, "the 28 dailies and the day recorded as not published")
        XCTAssertEqual(second.gaps["SYNUSDT/1H/OHLCV"] ?? [], [])
        let bucket = try XCTUnwrap(target.bucket("SYNUSDT/1H/OHLCV"))
        XCTAssertEqual(bucket.epochs, Array(stride(from: feb.start, to: feb.end, by: 3600)), "every hour once")
        XCTAssertEqual(bucket.column("Close").first, Double(Float("\(100 + (feb.start / 86400) % 50).0")!))
        let states = try Manifest.load(path: spec.manifest, job: spec.name).units.values
        XCTAssertEqual(states.filter { $0.status == .superseded }.count, 29)
        XCTAssertEqual(states.filter { $0.status == .done }.map(\.id), ["data/spot/monthly/klines/SYNUSDT/1h/SYNUSDT-1h-2024-02.zip"])
    }
}
