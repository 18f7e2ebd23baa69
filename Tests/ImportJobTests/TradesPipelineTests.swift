import BinanceSource
import Columnar
import Foundation
import KlineArchive
import Logging
import MarketStoreDirectory
import PipelineFakes
import TestSupport
import TradeArchive
import XCTest

@testable import ImportPipeline
@testable import JobModel
@testable import JobState

/// Trades through the pipeline in-process, into a target whose buckets append (MemoryTarget's
/// variable-length buckets): every trade ID of the range in the target once, whatever happens
/// between runs: a re-run, a lost answer to an applied write, `--force`, a monthly replacing
/// its dailies, a re-published archive.
final class TradesPipelineTests: TemporaryDirectoryTestCase {
    let key = "SYNUSDT/1Sec/TRADES"

    /// A day of spot trades: `perDay` trades spread over the day, IDs consecutive from the day's
    /// first (so the days of a month chain), millisecond times, prices with eight decimals.
    static func trades(day: Int64, perDay: Int = 50, changedID: Int64? = nil, skipping: Set<Int64> = []) -> String {
        let firstID = (day / 86400 - 19_700) * Int64(perDay)
        return (0..<Int64(perDay)).filter { !skipping.contains(firstID + $0) }.map { i in
            let id = firstID + i
            let ms = (day + i * (86400 / Int64(perDay)) + i % 7) * 1000 + (i * 37) % 1000
            let price = id == changedID ? "99999.00000000" : "\(40_000 + id % 900).\(String(format: "%08d", (id * 7919) % 100_000_000))"
            return "\(id),\(price),0.00\(100 + i % 50),\(Double(i) * 1.5),\(ms),\(i % 2 == 0 ? "True" : "False"),True\n"
        }.joined()
    }

    func publish(_ period: String, days: [Int64], changedID: Int64? = nil, skipping: Set<Int64> = []) throws {
        let daily = period.count == 10
        let folder = dir.appendingPathComponent("mirror/data/spot/\(daily ? "daily" : "monthly")/trades/SYNUSDT")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let name = "SYNUSDT-trades-\(period).zip"
        let zip = ZipBuilder.single("SYNUSDT-trades-\(period).csv", days.map { Self.trades(day: $0, changedID: changedID, skipping: skipping) }.joined())
        try Data(zip).write(to: folder.appendingPathComponent(name))
        try "\(sha256Hex(zip))  \(name)\n".write(to: folder.appendingPathComponent(name + ".CHECKSUM"), atomically: true, encoding: .utf8)
    }

    func days(_ from: String, _ to: String) -> [Int64] {
        Array(stride(from: ArchivePeriod(day: from)!.start, through: ArchivePeriod(day: to)!.start, by: 86400))
    }

    func spec(chunkRows: Int = 100, extra: String = "", target: String = "{marketstore: \"http://127.0.0.1:1/rpc\"}") throws -> JobSpec {
        let yaml = """
            name: ticks
            source: {base_url: \(dir.appendingPathComponent("mirror").path), cache_dir: \(dir.appendingPathComponent("cache").path)}
            market: spot
            dataset: trades
            symbols: [SYNUSDT]
            from: 2024-01
            to: 2024-02
            target: \(target)
            write: {chunk_rows: \(chunkRows)}
            manifest: \(dir.appendingPathComponent("state/ticks.manifest.db").path)
            \(extra)
            """
        return try JobSpec.parse(yaml: yaml, file: "ticks.yml")
    }

    func run(_ spec: JobSpec, into target: MemoryTarget, today: String, force: Bool = false, history: (any TradeHistory)? = nil) async throws -> RunSummary {
        var options = RunOptions(today: ArchivePeriod(day: today)!)
        options.sink = target
        options.tradeHistory = history
        options.force = force
        return try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(options)
    }

    /// The trade IDs the target holds, in its order (second, then nanoseconds).
    func heldIDs(_ target: MemoryTarget) async throws -> [Int64] {
        guard let held = try await target.records(key: key, from: .min, to: .max), let i = held.names.firstIndex(of: "TradeID"),
              case let .int64(ids) = held.columns[i] else { return [] }
        return ids
    }

    /// The IDs the archives of these days hold.
    func expectedIDs(_ days: [Int64]) -> [Int64] {
        days.flatMap { day in Self.trades(day: day).split(separator: "\n").map { Int64($0.split(separator: ",")[0])! } }
    }

    func statuses(_ spec: JobSpec) throws -> [String: UnitRecord.Status] {
        try Manifest.load(path: spec.manifest, job: spec.name).units.mapValues(\.status)
    }

    /// A monthly archive and the current month's dailies land once, exact to the bit, with each
    /// unit's ID range recorded; a re-run sends nothing.
    func testTradesLandOnceExactlyAndARerunSendsNothing() async throws {
        let january = days("2024-01-01", "2024-01-31"), february = days("2024-02-01", "2024-02-03")
        try publish("2024-01", days: january)
        for day in february { try publish(String(UTCCalendar.iso8601(day).prefix(10)), days: [day]) }
        let spec = try spec()
        let target = MemoryTarget()
        let first = try await run(spec, into: target, today: "2024-02-04")
        XCTAssertEqual([first.done, first.failed, Int(first.exitCode)], [4, 0, 0], "\(first.failures)")
        let ids = try await heldIDs(target)
        XCTAssertEqual(ids, expectedIDs(january + february))
        let records = try await target.records(key: key, from: .min, to: .max)
        let held = try XCTUnwrap(records)
        XCTAssertEqual(held.names, ["Epoch", "Price", "Qty", "QuoteQty", "TradeID", "IsBuyerMaker", "IsBestMatch", "Nanoseconds"])
        // The first trade: 2024-01-01T00:00:00.000 at 40000 + id % 900 and eight decimals, as the nearest double.
        let firstID = expectedIDs(january)[0]
        XCTAssertEqual(held.columns[1].double(at: 0), Double("\(40_000 + firstID % 900).\(String(format: "%08d", (firstID * 7919) % 100_000_000))"))
        XCTAssertEqual(held.columns[7], .int32(held.epochs.indices.map { i in Int32(((i % 50) * 37 % 1000) * 1_000_000) }).slice(0..<held.count))
        let record = try XCTUnwrap(try Manifest.load(path: spec.manifest, job: spec.name).units["data/spot/monthly/trades/SYNUSDT/SYNUSDT-trades-2024-01.zip"])
        XCTAssertEqual([record.firstID, record.lastID], [firstID, firstID + 31 * 50 - 1])
        XCTAssertEqual(record.rows, 31 * 50)

        let requests = target.requests.count
        let second = try await run(spec, into: target, today: "2024-02-04")
        XCTAssertEqual([second.done, second.skipped, Int(second.exitCode)], [0, 4, 0])
        XCTAssertEqual(target.requests.count, requests, "nothing sent again")
    }

    /// The server applies a request (half of it, or all) and the answer is lost: the run stops
    /// with the target unavailable and those units recorded `writing`; the next run reads their
    /// IDs back and sends only the missing ones, so every ID is there once.
    func testAWriteAppliedWithoutAnAnswerIsReconciledNotSentAgain() async throws {
        let january = days("2024-01-01", "2024-01-31")
        try publish("2024-01", days: january)
        for part in [0.5, 1.0] {
            let spec = try spec()
            try? FileManager.default.removeItem(atPath: dir.appendingPathComponent("state").path)
            let target = MemoryTarget(faults: [.lostAnswer(request: 3, part: part)])
            do {
                let first = try await run(spec, into: target, today: "2024-02-04")
                XCTAssertNotEqual(first.exitCode, 0, "part \(part): the lost answer fails the run")
            } catch is TargetUnavailable {}
            XCTAssertEqual(try statuses(spec)["data/spot/monthly/trades/SYNUSDT/SYNUSDT-trades-2024-01.zip"], .writing, "part \(part)")
            let partial = try await heldIDs(target)
            XCTAssertEqual(partial.count, 200 + Int(100 * part), "part \(part): two requests and the applied part of the third")

            let second = try await run(spec, into: target, today: "2024-02-04")
            XCTAssertEqual([second.done, second.failed, Int(second.exitCode)], [1, 0, 0], "part \(part): \(second.failures)")
            let ids = try await heldIDs(target)
            XCTAssertEqual(ids, expectedIDs(january), "part \(part): every ID once, in time order")
            let record = try XCTUnwrap(try Manifest.load(path: spec.manifest, job: spec.name).units["data/spot/monthly/trades/SYNUSDT/SYNUSDT-trades-2024-01.zip"])
            XCTAssertEqual(record.anomalies?["already_in_target"], partial.count, "part \(part)")
        }
    }

    /// A run dies with a request in flight that the server is still applying (its rows show a
    /// moment later, as MarketStore's do): the next run, started at once, waits for that request
    /// before reading the unit back, and every ID is there once. Without the wait it read back
    /// too early and appended the late rows a second time.
    func testARequestStillBeingAppliedIsWaitedForBeforeReconciling() async throws {
        let january = days("2024-01-01", "2024-01-31")
        try publish("2024-01", days: january)
        let spec = try spec()
        let target = MemoryTarget(faults: [.appliedLate(request: 2, after: 0.4)])
        do {
            _ = try await run(spec, into: target, today: "2024-02-04")
        } catch is TargetUnavailable {}
        XCTAssertEqual(try statuses(spec)["data/spot/monthly/trades/SYNUSDT/SYNUSDT-trades-2024-01.zip"], .writing)
        let early = try await heldIDs(target)
        XCTAssertEqual(early.count, 100, "the second request has not landed yet")
        XCTAssertNotNil(InFlightAppends(manifest: spec.manifest).pending(key: key), "the unanswered request is on record")

        let second = try await run(spec, into: target, today: "2024-02-04")
        XCTAssertEqual([second.done, second.failed, Int(second.exitCode)], [1, 0, 0], "\(second.failures)")
        try await Task.sleep(nanoseconds: 600_000_000)  // past the late request's landing in any case
        let ids = try await heldIDs(target)
        XCTAssertEqual(ids, expectedIDs(january), "every ID once")
        XCTAssertNil(InFlightAppends(manifest: spec.manifest).pending(key: key), "answered requests leave no record")
    }

    /// Into a data directory: the monthly and the current month's dailies land as variable-length
    /// year files (records by time, every ID once), `verify` reads them back and agrees, and
    /// `--force` reconciles against the files: nothing is appended a second time.
    func testTradesIntoADataDirectoryLandOnceAndReconcile() async throws {
        let january = days("2024-01-01", "2024-01-31"), february = days("2024-02-01", "2024-02-03")
        try publish("2024-01", days: january)
        for (name, day) in zip(["2024-02-01", "2024-02-02", "2024-02-03"], february) { try publish(name, days: [day]) }
        let root = dir.appendingPathComponent("data").path
        let spec = try spec(target: "{directory: \(root)}")
        func held() throws -> [Int64] {
            let rows = try XCTUnwrap(try DirectoryReader(root: root).read(key: key))
            guard let i = rows.names.firstIndex(of: "TradeID"), case let .int64(ids) = rows.columns[i] else { return [] }
            return ids
        }
        var options = RunOptions(today: ArchivePeriod(day: "2024-02-04")!)
        let first = try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(options)
        XCTAssertEqual([first.done, first.failed, Int(first.exitCode)], [4, 0, 0], "\(first.failures)")
        XCTAssertEqual(try held(), expectedIDs(january + february), "every ID once, by time")
        let rows = try XCTUnwrap(try DirectoryReader(root: root).read(key: key))
        XCTAssertEqual(rows.names, ["Epoch", "Price", "Qty", "QuoteQty", "TradeID", "IsBuyerMaker", "IsBestMatch", "Nanoseconds"])
        XCTAssertEqual(rows.columns[7].slice(0..<3), .int32([0, 37_000_000, 74_000_000]), "milliseconds back exactly")
        var verified = try await JobVerifier(spec: spec).verify()
        XCTAssertEqual(verified.checked, 4)
        XCTAssertEqual(verified.differences, [])

        options.force = true
        let forced = try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(options)
        XCTAssertEqual([forced.done, forced.failed, Int(forced.exitCode)], [4, 0, 0], "\(forced.failures)")
        XCTAssertEqual(try held(), expectedIDs(january + february), "nothing appended twice")
        verified = try await JobVerifier(spec: spec).verify()
        XCTAssertEqual(verified.differences, [])

        // A re-published day with a changed trade: refused, then `rebuild` removes the key's
        // folder and the next run writes the key whole, the new value in.
        let changed = expectedIDs([february[1]])[10]
        try publish("2024-02-02", days: [february[1]], changedID: changed)
        options.force = false
        let refused = try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(options)
        XCTAssertEqual(refused.failed, 1, "\(refused.failures)")
        XCTAssertEqual(try held(), expectedIDs(january + february), "no second version appended")
        _ = try await KeyRebuild.run(spec: spec, key: key)
        XCTAssertNil(try DirectoryReader(root: root).read(key: key), "the key's folder is gone")
        let rebuilt = try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(options)
        XCTAssertEqual([rebuilt.failed, Int(rebuilt.exitCode)], [0, 0], "\(rebuilt.failures)")
        XCTAssertEqual(try held(), expectedIDs(january + february))
        let after = try XCTUnwrap(try DirectoryReader(root: root).read(key: key))
        XCTAssertEqual(after.columns[1].double(at: try held().firstIndex(of: changed)!), 99999, "the re-published value")
    }

    /// `--force` on trades reconciles: nothing is appended a second time.
    func testForceReconcilesAndAppendsNothing() async throws {
        try publish("2024-01", days: days("2024-01-01", "2024-01-31"))
        let spec = try spec()
        let target = MemoryTarget()
        _ = try await run(spec, into: target, today: "2024-02-01")
        let before = try await heldIDs(target)
        let forced = try await run(spec, into: target, today: "2024-02-01", force: true)
        XCTAssertEqual([forced.done, forced.failed, Int(forced.exitCode)], [1, 0, 0], "\(forced.failures)")
        let after = try await heldIDs(target)
        XCTAssertEqual(after, before)
        XCTAssertEqual(after.count, 31 * 50)
    }

    /// The month's dailies first, then its monthly archive: the monthly is reconciled against the
    /// days written (only the IDs of the day without a daily are appended) and the dailies are
    /// superseded.
    func testAMonthlyReplacingItsDailiesAppendsOnlyWhatTheyLacked() async throws {
        let january = days("2024-01-01", "2024-01-31")
        for day in january where day != ArchivePeriod(day: "2024-01-15")!.start {
            try publish(String(UTCCalendar.iso8601(day).prefix(10)), days: [day])
        }
        let spec = try spec()
        let target = MemoryTarget()
        let first = try await run(spec, into: target, today: "2024-02-01")
        XCTAssertEqual(first.done, 30, "\(first.failures)")
        try publish("2024-01", days: january)
        let second = try await run(spec, into: target, today: "2024-02-02")
        XCTAssertEqual([second.done, second.failed, second.superseded], [1, 0, 30], "\(second.failures)")
        let ids = try await heldIDs(target)
        XCTAssertEqual(ids, expectedIDs(january), "every ID once")
        let states = try Manifest.load(path: spec.manifest, job: spec.name).units
        XCTAssertEqual(states["data/spot/monthly/trades/SYNUSDT/SYNUSDT-trades-2024-01.zip"]?.anomalies?["already_in_target"], 30 * 50)
    }

    /// A re-published daily archive with one trade changed: the unit fails naming the change and
    /// the rebuild, nothing is appended, the target keeps one version of each trade.
    func testARepublishedArchiveWithAChangedTradeIsReportedNotAppended() async throws {
        let day = ArchivePeriod(day: "2024-02-01")!.start
        try publish("2024-02-01", days: [day])
        let spec = try spec()
        let target = MemoryTarget()
        _ = try await run(spec, into: target, today: "2024-02-02")
        let changed = expectedIDs([day])[10]
        try publish("2024-02-01", days: [day], changedID: changed)
        let second = try await run(spec, into: target, today: "2024-02-02")
        XCTAssertEqual([second.done, second.failed, Int(second.exitCode)], [0, 1, 1])
        let failure = try XCTUnwrap(second.failures.values.first)
        XCTAssertTrue(failure.contains("1 row(s) of the archive differ") && failure.contains("rebuild"), failure)
        let ids = try await heldIDs(target)
        XCTAssertEqual(ids, expectedIDs([day]), "one version of each trade")
    }

    /// What a trades job file may choose (dtype, a directory target) and what it may not
    /// (intervals, columns, to: now for futures raw trades), each refused naming the key.
    func testTradesJobFilesSayWhatTheDatasetFixes() throws {
        func parse(_ extra: String, replacing: String = "", with: String = "") throws -> JobSpec {
            let yaml = """
                name: ticks
                market: spot
                dataset: trades
                symbols: [SYNUSDT]
                from: 2024-01
                target: {marketstore: "http://127.0.0.1:1/rpc"}
                \(extra)
                """
            return try JobSpec.parse(yaml: replacing.isEmpty ? yaml : yaml.replacingOccurrences(of: replacing, with: with), file: "ticks.yml")
        }
        let wide = try parse("")
        XCTAssertEqual(wide.floatType, .float64, "trades default to float64")
        XCTAssertEqual(try wide.keys(symbol: "SYNUSDT"), ["SYNUSDT/1Sec/TRADES"])
        let narrow = try parse("dtype: float32")
        XCTAssertTrue(narrow.dataset.schema(of: narrow).contains("Price f4,Qty f4,QuoteQty f4,TradeID i8,IsBuyerMaker i1,IsBestMatch i1,Nanoseconds i4, variable-length"),
                      narrow.dataset.schema(of: narrow))
        let um = try parse("", replacing: "market: spot\ndataset: trades", with: "market: futures/cm\ndataset: aggTrades")
        XCTAssertEqual(try um.keys(symbol: "SYNUSDT"), ["SYNUSDT/1Sec/AGGTRADES"])
        XCTAssertTrue(um.dataset.schema(of: um).contains("AggTradeID i8,FirstTradeID i8,LastTradeID i8,IsBuyerMaker i1,Nanoseconds i4"), um.dataset.schema(of: um))
        let files = try parse("", replacing: "target: {marketstore: \"http://127.0.0.1:1/rpc\"}", with: "target: {directory: /tmp/x}")
        XCTAssertEqual(try files.keys(symbol: "SYNUSDT"), ["SYNUSDT/1Sec/TRADES"], "the directory target writes variable-length files")
        let refusals: [(String, String, String, String)] = [
            ("intervals: [1m]", "", "", "key 'intervals': trades archives have no intervals"),
            ("columns: [Open]", "", "", "key 'columns': trades archives have no columns"),
            ("to: now", "market: spot", "market: futures/um", "key 'to': futures trades by ID need an API key"),
        ]
        for (extra, replacing, with, message) in refusals {
            XCTAssertThrowsError(try parse(extra, replacing: replacing, with: with), extra + with) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
    }

    /// `status`'s grid places trade units in their months: January from its monthly archive,
    /// February from dailies, and a unit left `writing` by a lost answer says so.
    func testTheStatusGridShowsTradeUnitsByMonth() async throws {
        try publish("2024-01", days: days("2024-01-01", "2024-01-31"))
        try publish("2024-02-01", days: days("2024-02-01", "2024-02-01"))
        let spec = try spec()
        let months = [ArchivePeriod(year: 2024, month: 1)!, ArchivePeriod(year: 2024, month: 2)!]
        _ = try? await run(spec, into: MemoryTarget(faults: [.lostAnswer(request: 1, part: 1)]), today: "2024-02-02")
        let interrupted = CoverageGrid(manifest: try Manifest.load(path: spec.manifest, job: spec.name), months: months, keys: [key])
        XCTAssertEqual(interrupted.rows[key]?.first, .writing, interrupted.text)
        _ = try await run(spec, into: MemoryTarget(), today: "2024-02-02")
        let grid = CoverageGrid(manifest: try Manifest.load(path: spec.manifest, job: spec.name), months: months, keys: [key])
        XCTAssertEqual(grid.rows[key], [.monthly, .daily], grid.text)
    }

    /// IDs missing inside a day's archive and between two days' archives: each is reported with
    /// its range (and the file or files around it), and the run exits 1; the rows there are
    /// written all the same.
    func testIDHolesInsideADayAndBetweenTwoDaysAreReportedAndFailTheRun() async throws {
        let (first, second) = (ArchivePeriod(day: "2024-02-01")!.start, ArchivePeriod(day: "2024-02-02")!.start)
        let ids = expectedIDs([first, second])
        try publish("2024-02-01", days: [first], skipping: [ids[20], ids[21]])
        try publish("2024-02-02", days: [second], skipping: [ids[50], ids[51], ids[52]])  // the second day's first three
        let summary = try await run(try spec(), into: MemoryTarget(), today: "2024-02-03")
        XCTAssertEqual([summary.done, summary.failed, Int(summary.exitCode)], [2, 0, 1], "\(summary.failures)")
        XCTAssertEqual(summary.idHoles[key], [
            "IDs \(ids[20])..\(ids[21]) (2) inside SYNUSDT-trades-2024-02-01.zip (2024-02-01T09:07:17Z..2024-02-01T10:33:37Z)",
            "IDs \(ids[50])..\(ids[52]) (3) between SYNUSDT-trades-2024-02-01.zip and SYNUSDT-trades-2024-02-02.zip (2024-02-01T23:31:12Z..2024-02-02T01:26:27Z)",
        ])
        XCTAssertTrue(summary.table.contains("ID holes: \(key): IDs \(ids[20])..\(ids[21]) (2) inside"), summary.table)
    }

    /// After a re-published archive changed a trade, `rebuild` destroys the key and marks its
    /// units writing; the next run writes the whole key again: every ID once, the new value in,
    /// the other days' trades as before.
    func testRebuildRestoresExactContentAfterARepublishedChange() async throws {
        let (first, second) = (ArchivePeriod(day: "2024-02-01")!.start, ArchivePeriod(day: "2024-02-02")!.start)
        try publish("2024-02-01", days: [first])
        try publish("2024-02-02", days: [second])
        let spec = try spec()
        let target = MemoryTarget()
        _ = try await run(spec, into: target, today: "2024-02-03")
        let changed = expectedIDs([second])[10]
        try publish("2024-02-02", days: [second], changedID: changed)
        let refused = try await run(spec, into: target, today: "2024-02-03")
        XCTAssertEqual(refused.failed, 1)

        let marked = try await KeyRebuild.run(spec: spec, key: key, sink: target)
        XCTAssertEqual(marked.count, 2, "both days wrote rows")
        XCTAssertNil(target.bucket(key), "the key is destroyed")
        XCTAssertEqual(Set(try statuses(spec).filter { $0.key.contains("/daily/") }.values), [.writing])
        let rebuilt = try await run(spec, into: target, today: "2024-02-03")
        XCTAssertEqual([rebuilt.done, rebuilt.failed, Int(rebuilt.exitCode)], [2, 0, 0], "\(rebuilt.failures)")
        let ids = try await heldIDs(target)
        XCTAssertEqual(ids, expectedIDs([first, second]))
        let records = try await target.records(key: key, from: .min, to: .max)
        let held = try XCTUnwrap(records)
        XCTAssertEqual(held.columns[1].double(at: ids.firstIndex(of: changed)!), 99999, "the re-published value")
        do {
            try await KeyRebuild.run(spec: spec, key: "OTHER/1Sec/TRADES", sink: target)
            XCTFail("a key outside the job was rebuilt")
        } catch {
            XCTAssertTrue("\(error)".contains("OTHER/1Sec/TRADES is not a key of this job"), "\(error)")
        }
    }

    /// `gaps: rest`: the IDs missing inside a day and those of a whole day without an archive
    /// are asked of REST (here a fake serving the same trades as the generator), written once,
    /// and the run is whole; the next run asks nothing; the missing day's archive, published
    /// later, is reconciled against the filled IDs (nothing twice).
    func testGapsRestFillsMissingIDsOnceAndLaterArchivesReconcileWithThem() async throws {
        let days = days("2024-02-01", "2024-02-03")
        let ids = expectedIDs(days)
        try publish("2024-02-01", days: [days[0]], skipping: [ids[20], ids[21]])
        try publish("2024-02-03", days: [days[2]])
        let spec = try spec(extra: "gaps: rest")
        let history = FakeTradeHistory(lines: days.flatMap { Self.trades(day: $0).split(separator: "\n").map(String.init) })
        let target = MemoryTarget()
        let summary = try await run(spec, into: target, today: "2024-02-04", history: history)
        XCTAssertEqual([summary.failed, Int(summary.exitCode)], [0, 0], "\(summary.failures) \(summary.idHoles)")
        XCTAssertEqual(summary.idHoles, [:])
        XCTAssertEqual(history.asked, [[ids[20], ids[21]], [ids[50], ids[99]]])
        let held = try await heldIDs(target)
        XCTAssertEqual(held, ids, "every ID once, in time order")
        let records = try await target.records(key: key, from: .min, to: .max)
        XCTAssertEqual(try XCTUnwrap(records).columns[1].double(at: 20), Double(Self.trades(day: days[0]).split(separator: "\n")[20].split(separator: ",")[1]),
                       "REST's price, parsed as the archive's")

        let again = try await run(spec, into: target, today: "2024-02-04", history: history)
        XCTAssertEqual([again.done, Int(again.exitCode)], [0, 0])
        XCTAssertEqual(history.asked.count, 2, "nothing asked again")

        try publish("2024-02-02", days: [days[1]])  // the missing day's archive, late: its IDs are REST's already
        let late = try await run(spec, into: target, today: "2024-02-04", history: history)
        XCTAssertEqual([late.done, late.failed, Int(late.exitCode)], [1, 0, 0], "\(late.failures)")
        let after = try await heldIDs(target)
        XCTAssertEqual(after, ids, "nothing twice")
        XCTAssertEqual(try Manifest.load(path: spec.manifest, job: spec.name).units["data/spot/daily/trades/SYNUSDT/SYNUSDT-trades-2024-02-02.zip"]?
            .anomalies?["already_in_target"], 50)
    }

    /// `validation: strict` and an archive with an ID hole: the unit fails naming the hole, and
    /// none of its trades reach the target (a first pass checks before any is sent).
    func testStrictValidationWritesNothingOfAnArchiveWithAHole() async throws {
        let january = days("2024-01-01", "2024-01-31")
        let ids = expectedIDs(january)
        try publish("2024-01", days: january, skipping: [ids[1500]])  // in the last of 16 chunks
        let target = MemoryTarget()
        let summary = try await run(try spec(chunkRows: 100, extra: "validation: strict"), into: target, today: "2024-02-02")
        XCTAssertEqual([summary.done, summary.failed, Int(summary.exitCode)], [0, 1, 1])
        XCTAssertTrue(summary.failures.values.first?.contains("strict validation failed: 1 ID hole(s) (1 IDs)") == true, "\(summary.failures)")
        XCTAssertNil(target.bucket(key), "nothing written")
    }

    /// `to: now`: after the archives, REST continues from the key's last ID to the present (a
    /// short answer), a unit of IDs at a time; the next run continues from there; the day's
    /// archive, published the next morning, is reconciled (nothing twice).
    func testToNowContinuesFromTheLastIDAndTheLaterArchiveReconciles() async throws {
        let days = days("2024-02-01", "2024-02-03")
        let ids = expectedIDs(days)
        try publish("2024-02-01", days: [days[0]])
        var spec = try spec()
        spec.to = .now
        // REST has the first two days whole and 30 trades of the third so far.
        let lines = days.flatMap { Self.trades(day: $0).split(separator: "\n").map(String.init) }
        let target = MemoryTarget()
        let first = try await run(spec, into: target, today: "2024-02-03", history: FakeTradeHistory(lines: Array(lines[..<130])))
        XCTAssertEqual([first.failed, Int(first.exitCode)], [0, 0], "\(first.failures) \(first.idHoles)")
        let held = try await heldIDs(target)
        XCTAssertEqual(held, Array(ids[..<130]), "the archive, then REST up to the present")

        let later = FakeTradeHistory(lines: lines)
        _ = try await run(spec, into: target, today: "2024-02-03", history: later)
        XCTAssertEqual(later.asked.first?.first, ids[130], "the next run continues after the last ID")
        let all = try await heldIDs(target)
        XCTAssertEqual(all, ids)

        try publish("2024-02-02", days: [days[1]])
        let morning = try await run(spec, into: target, today: "2024-02-03", history: later)
        XCTAssertEqual([morning.done, morning.failed, Int(morning.exitCode)], [1, 0, 0], "\(morning.failures)")
        let after = try await heldIDs(target)
        XCTAssertEqual(after, ids, "nothing twice")
    }
}

/// Trades by ID, from lines of the archives' layout (what `RestClient.tradeLines` returns).
final class FakeTradeHistory: TradeHistory, @unchecked Sendable {
    private let byID: [Int64: String]
    private let lock = NSLock()
    private var ranges: [[Int64]] = []

    init(lines: [String]) {
        byID = Dictionary(uniqueKeysWithValues: lines.map { (Int64($0.split(separator: ",")[0])!, $0) })
    }

    var asked: [[Int64]] { lock.withLock { ranges } }

    func tradeLines(dataset: TradeDataset, symbol: String, fromID: Int64, toID: Int64) async throws -> [String] {
        lock.withLock { ranges.append([fromID, toID]) }
        return (fromID...toID).compactMap { byID[$0] }
    }
}
