import Foundation
import KlineArchive
import MarketStore
import MarketStoreDirectory
import TestSupport
import XCTest
import Yams
@testable import Follow
@testable import ImportPipeline
@testable import JobMetrics
@testable import JobModel
@testable import JobState

/// The binance-import command end to end, against the fixture archive server and the MarketStore
/// test server: every row lands exactly, resume after a failure, nightly stitching, job file errors.
final class ImportJobTests: XCTestCase {
    var work: URL!
    var tree: URL!
    var archives: ServerProcess!
    var marketstore: ServerProcess!

    /// The binary under test: BINANCE_IMPORT_BIN, or the one built beside the tests.
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["BINANCE_IMPORT_BIN"] { return path }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("binance-import").path
        }
        return ServerProcess.repoRoot.appendingPathComponent(".build/debug/binance-import").path
    }

    override func setUpWithError() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw missing("binance-import is not built (\(Self.binary)); make test builds it")
        }
        work = FileManager.default.temporaryDirectory.appendingPathComponent("import-job-\(getpid())-\(UUID().uuidString.prefix(8))")
        tree = work.appendingPathComponent("tree")
        try FileManager.default.createDirectory(at: tree, withIntermediateDirectories: true)
        archives = try ServerProcess.required(script: "Tests/servers/archive_server.py", arguments: [tree.path, "--page-size", "3"])
        marketstore = try ServerProcess.required(script: "Tests/servers/marketstore_server.py")
    }

    override func tearDownWithError() throws {
        archives?.stop()
        marketstore?.stop()
        if let work { try? FileManager.default.removeItem(at: work) }
    }

    /// A synthetic archive in the tree (bench/gen_archives.py), or daily archives of `days`.
    func generate(_ market: String, _ symbol: String, _ interval: String, _ month: String, day: Int? = nil,
                  days: ClosedRange<Int>? = nil, header: Bool = false) throws {
        let daily = day != nil || days != nil
        let dir = tree.appendingPathComponent("data/\(market)/\(daily ? "daily" : "monthly")/klines/\(symbol)/\(interval)")
        var args = [ServerProcess.repoRoot.appendingPathComponent("bench/gen_archives.py").path, "--out", dir.path,
                    "--symbol", symbol, "--interval", interval, "--month", month]
        if let day { args += ["--day", String(day)] }
        if let days { args += ["--days", "\(days.lowerBound)-\(days.upperBound)"] }
        if header { args.append("--header") }
        let r = try run("/usr/bin/env", ["python3"] + args)
        XCTAssertEqual(r.status, 0, r.output)
    }

    /// The real archives of ../shared/binance, in the tree.
    func copyRealArchives() throws {
        let shared = ServerProcess.shared.appendingPathComponent("binance")
        guard FileManager.default.fileExists(atPath: shared.path) else { throw missing("../shared/binance is absent") }
        let dir = tree.appendingPathComponent("data/spot/daily/klines/BTCUSDT/1m")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for day in ["01", "02", "03"] {
            for suffix in [".zip", ".zip.CHECKSUM"] {
                try FileManager.default.copyItem(at: shared.appendingPathComponent("BTCUSDT-1m-2020-01-\(day)\(suffix)"),
                                                 to: dir.appendingPathComponent("BTCUSDT-1m-2020-01-\(day)\(suffix)"))
            }
        }
    }

    func job(_ name: String, symbols: [String], intervals: [String], from: String, to: String, market: String = "spot",
             columns: String = "[Open, High, Low, Close, Volume]", dtype: String = "float32", chunkRows: Int = 50000,
             deleteAfterWrite: Bool = false) throws -> String {
        let yaml = """
        name: \(name)
        source:
          base_url: \(archives.base)/
          listing_url: \(archives.base)/listing
          cache_dir: \(work.appendingPathComponent("cache").path)
          checksum: required
          delete_after_write: \(deleteAfterWrite)
        market: \(market)
        symbols: [\(symbols.joined(separator: ", "))]
        intervals: [\(intervals.joined(separator: ", "))]
        from: \(from)
        to: \(to)
        columns: \(columns)
        dtype: \(dtype)
        attribute_group: OHLCV
        target:
          marketstore: \(marketstore.url)
        write:
          chunk_rows: \(chunkRows)
        concurrency:
          downloads: 3
        validation: report
        manifest: \(work.appendingPathComponent("state/\(name).manifest.db").path)
        """
        let path = work.appendingPathComponent("\(name).yml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A copy of the job file at `path` named `name`.yml with one piece of text replaced.
    func variant(of path: String, _ name: String, replacing old: String, with new: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertTrue(text.contains(old), "\(old) is not in \(path)")
        let copy = work.appendingPathComponent("\(name).yml").path
        try text.replacingOccurrences(of: old, with: new).write(toFile: copy, atomically: true, encoding: .utf8)
        return copy
    }

    @discardableResult
    func run(_ executable: String, _ args: [String], today: String? = nil) throws -> (status: Int32, output: String) {
        var env = ProcessInfo.processInfo.environment
        if let today { env["BINANCE_IMPORT_TODAY"] = today }
        return try runCommand(executable, args, directory: work, environment: env)
    }

    func importer(_ args: [String], today: String) throws -> (status: Int32, output: String) {
        try run(Self.binary, args, today: today)
    }

    func manifest(_ name: String) throws -> Manifest {
        try Manifest.load(path: work.appendingPathComponent("state/\(name).manifest.db").path, job: name)
    }

    func writeCalls() async throws -> (Int, [[String]]) {
        let s = try await marketstore.stats()
        return (s["write_calls"] as! Int, s["write_keys"] as! [[String]])
    }

    func zipRequests() async throws -> Int {
        let s = try await archives.stats()
        return (s["requests"] as! [String: Int]).filter { $0.key.hasSuffix(".zip") }.values.reduce(0, +)
    }

    func checksumRequests() async throws -> Int {
        let s = try await archives.stats()
        return (s["requests"] as! [String: Int]).filter { $0.key.hasSuffix(".CHECKSUM") }.values.reduce(0, +)
    }

    func archivePaths(_ symbol: String, _ interval: String, months: [String] = [], days: (month: String, ClosedRange<Int>)? = nil) -> [String] {
        months.map { tree.appendingPathComponent("data/spot/monthly/klines/\(symbol)/\(interval)/\(symbol)-\(interval)-\($0).zip").path }
            + (days.map { d in d.1.map { tree.appendingPathComponent("data/spot/daily/klines/\(symbol)/\(interval)/\(symbol)-\(interval)-\(d.month)-\(String(format: "%02d", $0)).zip").path } } ?? [])
    }

    /// The rows the target must hold for `key`: the archives decoded independently.
    func expected(_ paths: [String], floatType: FloatType = .float32) throws -> KlineBatch {
        var all: KlineBatch?
        for p in paths {
            let b = try KlineArchiveDecoder.decode(path: p, options: .init(floatType: floatType)).batch
            if all == nil { all = b } else { all!.append(b) }
        }
        return all!
    }

    func assertTargetHolds(_ symbol: String, _ timeframe: String, _ batch: KlineBatch, file: StaticString = #filePath, line: UInt = #line) async throws {
        let client = MarketStoreClient(url: marketstore.url)
        let r = try await client.query(symbols: [symbol], timeframe: timeframe, attributeGroup: "OHLCV")
        XCTAssertEqual(r.first?.epochs, batch.epochs, "\(symbol) epochs", file: file, line: line)
        XCTAssertEqual(Array(r.first?.columns.dropFirst() ?? []), batch.columns.map(\.values), "\(symbol) values", file: file, line: line)
    }

    // MARK: - Tests

    func testRealAndSyntheticArchivesLandExactlyWithMultiSymbolRequests() async throws {
        try copyRealArchives()
        for s in ["BTCUSDT", "ETHUSDT", "BNBUSDT"] { for m in ["2024-01", "2024-02"] { try generate("spot", s, "1h", m) } }

        // The real daily archives: January 2020 while it is the current month (today 2020-01-04).
        let real = try job("real", symbols: ["BTCUSDT"], intervals: ["1m"], from: "2020-01", to: "latest")
        let r1 = try importer(["run", real], today: "2020-01-04")
        XCTAssertEqual(r1.status, 0, r1.output)
        let days = ["01", "02", "03"].map { tree.appendingPathComponent("data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2020-01-\($0).zip").path }
        try await assertTargetHolds("BTCUSDT", "1Min", try expected(days))

        // Three symbols x two months of synthetic hourly archives, in requests of several keys.
        let synth = try job("synthetic", symbols: ["BTCUSDT", "ETHUSDT", "BNBUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-02", chunkRows: 2000)
        let r2 = try importer(["run", synth], today: "2024-06-01")
        XCTAssertEqual(r2.status, 0, r2.output)
        for s in ["BTCUSDT", "ETHUSDT", "BNBUSDT"] {
            let paths = ["2024-01", "2024-02"].map { tree.appendingPathComponent("data/spot/monthly/klines/\(s)/1h/\(s)-1h-\($0).zip").path }
            try await assertTargetHolds(s, "1H", try expected(paths))
        }
        let (_, keys) = try await writeCalls()
        XCTAssertTrue(keys.contains { $0.count >= 2 }, "requests carry several keys: \(keys)")
        XCTAssertTrue(try manifest("synthetic").units.values.allSatisfy { $0.status == .done })

        // pymarketstore reads the same rows.
        let check = try run("/usr/bin/env", ["python3", "-c", """
            import sys, hashlib, pymarketstore as p
            c = p.Client(sys.argv[1])
            for s in ("BTCUSDT", "ETHUSDT", "BNBUSDT"):
                df = c.query(p.Params(s, "1H", "OHLCV")).first().df()
                print(s, len(df), hashlib.sha256(df["Close"].to_numpy().tobytes()).hexdigest())
            """, marketstore.url])
        XCTAssertEqual(check.status, 0, check.output)
        for s in ["BTCUSDT", "ETHUSDT", "BNBUSDT"] {
            let paths = ["2024-01", "2024-02"].map { tree.appendingPathComponent("data/spot/monthly/klines/\(s)/1h/\(s)-1h-\($0).zip").path }
            guard case let .float32(close)? = try expected(paths).values(.close) else { return XCTFail() }
            let line = check.output.split(separator: "\n").first { $0.hasPrefix(s) } ?? ""
            XCTAssertTrue(line.hasPrefix("\(s) \(close.count) "), String(line))
            let digest = sha256Hex(close.withUnsafeBytes { Array($0) })
            XCTAssertTrue(line.hasSuffix(digest), "\(line) vs \(digest)")
        }
        let verify = try importer(["verify", synth], today: "2024-06-01")
        XCTAssertEqual(verify.status, 0, verify.output)
        XCTAssertTrue(verify.output.contains("verified 6 units: all match"), verify.output)
    }

    func testResumeAfterAFailedWriteLandsEverythingOnceAndASecondRunDoesNothing() async throws {
        for s in ["BTCUSDT", "ETHUSDT"] { for m in ["2024-01", "2024-02", "2024-03"] { try generate("spot", s, "1h", m) } }
        let path = try job("resume", symbols: ["BTCUSDT", "ETHUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-03", chunkRows: 700)
        // The server refuses every write that carries ETHUSDT: its units fail, BTCUSDT's land.
        try await marketstore.control(["fail_key": "ETHUSDT/1H/OHLCV", "error": "injected: disk full"])
        let first = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(first.status, 1, first.output)
        let afterFailure = try manifest("resume")
        let failed = afterFailure.units.values.filter { $0.status == .failed }
        XCTAssertFalse(failed.isEmpty)
        XCTAssertTrue(failed.allSatisfy { $0.error?.contains("injected: disk full") == true })
        XCTAssertEqual(Set(failed.map(\.key)), ["ETHUSDT/1H/OHLCV"])
        XCTAssertEqual(afterFailure.units.values.filter { $0.status == .done }.count, 3)
        try await marketstore.control(["fail_key": "ETHUSDT/1H/OHLCV", "times": 0])

        let second = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertTrue(try manifest("resume").units.values.allSatisfy { $0.status == .done })
        for s in ["BTCUSDT", "ETHUSDT"] {
            let paths = ["2024-01", "2024-02", "2024-03"].map { tree.appendingPathComponent("data/spot/monthly/klines/\(s)/1h/\(s)-1h-\($0).zip").path }
            try await assertTargetHolds(s, "1H", try expected(paths))
        }
        // A third run: no download, no write.
        let (writesBefore, _) = try await writeCalls()
        let zipsBefore = try await zipRequests()
        let third = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(third.status, 0, third.output)
        let (writesAfter, _) = try await writeCalls()
        let zipsAfter = try await zipRequests()
        XCTAssertEqual(writesAfter, writesBefore)
        XCTAssertEqual(zipsAfter, zipsBefore)
        XCTAssertEqual(tableValue(third.output, "skipped (already done)"), "6", third.output)

        // Binance re-publishes one archive: status says stale, and the next run re-imports it.
        let republished = tree.appendingPathComponent("data/spot/monthly/klines/ETHUSDT/1h/ETHUSDT-1h-2024-02.zip")
        try FileManager.default.removeItem(at: republished)
        try FileManager.default.copyItem(at: tree.appendingPathComponent("data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip"), to: republished)
        let sha = sha256Hex([UInt8](try Data(contentsOf: republished)))
        try "\(sha)  ETHUSDT-1h-2024-02.zip\n".write(to: republished.appendingPathExtension("CHECKSUM"), atomically: true, encoding: .utf8)
        let status = try importer(["status", path, "--check-remote"], today: "2024-06-01")
        XCTAssertTrue(status.output.contains("stale: 1") && status.output.contains("ETHUSDT-1h-2024-02.zip"), status.output)
        let fourth = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(fourth.status, 0, fourth.output)
        XCTAssertTrue(fourth.output.contains("re-published archive"), fourth.output)
        XCTAssertEqual(tableValue(fourth.output, "skipped (already done)"), "5", fourth.output)
        XCTAssertEqual(try manifest("resume").units[republished.path.replacingOccurrences(of: tree.path + "/", with: "")]?.sha256, sha)
    }

    func testNightlyFollowsDailyFilesThenTheMonthlyArchive() async throws {
        try generate("spot", "BTCUSDT", "1h", "2024-01")
        for day in 1...3 { try generate("spot", "BTCUSDT", "1h", "2024-02", day: day) }
        let path = try job("nightly", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "latest")

        // 4 February: January from its monthly archive, February from its daily files so far.
        let n1 = try importer(["nightly", path], today: "2024-02-04")
        XCTAssertEqual(n1.status, 0, n1.output)
        var m = try manifest("nightly")
        XCTAssertEqual(m.units.values.filter { $0.status == .done }.map { String($0.id.split(separator: "/").last!) }.sorted(),
                       ["BTCUSDT-1h-2024-01.zip", "BTCUSDT-1h-2024-02-01.zip", "BTCUSDT-1h-2024-02-02.zip", "BTCUSDT-1h-2024-02-03.zip"])
        XCTAssertTrue(n1.output.contains("\"exit_code\" : 0"), n1.output)

        // 5 March: the February monthly archive is out; it replaces the daily files. March's
        // daily files are not published yet.
        try generate("spot", "BTCUSDT", "1h", "2024-02")
        let n2 = try importer(["nightly", path], today: "2024-03-05")
        XCTAssertEqual(n2.status, 0, n2.output)
        m = try manifest("nightly")
        XCTAssertEqual(m.units["data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip"]?.status, .done)
        XCTAssertEqual(m.units.values.filter { $0.status == .superseded }.count, 3)
        XCTAssertEqual(m.units.values.filter { $0.status == .notPublished }.map(\.id), ["data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-03.zip"],
                       "nothing of March (1..4) is out: one record for the month")
        // The same night again: the state is not written (nothing changed, not even the four
        // days still unpublished), and the run leaves no write-ahead log behind.
        let database = work.appendingPathComponent("state/nightly.manifest.db").path
        let before = try FileManager.default.attributesOfItem(atPath: database)[.modificationDate] as? Date
        let n3 = try importer(["nightly", path], today: "2024-03-05")
        XCTAssertEqual(n3.status, 0, n3.output)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: database)[.modificationDate] as? Date, before)
        XCTAssertFalse(FileManager.default.fileExists(atPath: database + "-wal"))
        let feb = tree.appendingPathComponent("data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02.zip").path
        let jan = tree.appendingPathComponent("data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip").path
        try await assertTargetHolds("BTCUSDT", "1H", try expected([jan, feb]))
    }

    /// Several simulated nights converge to the job's whole state: a late monthly, a month missing
    /// at first and published later, a symbol added, a unit that failed once, dailies replaced by
    /// their monthly; then a night with nothing new makes no download, no CHECKSUM request and no
    /// write.
    func testNightsConvergeToTheWholeJob() async throws {
        // Night 1, 4 February. AAA: January's monthly and three February days. BBB: nothing for
        // January yet. DDD: January's monthly is late, its dailies are out.
        try generate("spot", "AAAUSDT", "1h", "2024-01")
        try generate("spot", "DDDUSDT", "1h", "2024-01", days: 1...31)
        for s in ["AAAUSDT", "BBBUSDT", "DDDUSDT"] { try generate("spot", s, "1h", "2024-02", days: 1...3) }
        var path = try job("nights", symbols: ["AAAUSDT", "BBBUSDT", "DDDUSDT"], intervals: ["1h"], from: "2024-01", to: "latest")
        try await archives.control(["path": "data/spot/daily/klines/AAAUSDT/1h/AAAUSDT-1h-2024-02-02.zip", "fault": 403, "times": 1])
        let n1 = try importer(["nightly", path], today: "2024-02-04")
        XCTAssertEqual(n1.status, 1, n1.output)
        XCTAssertTrue(n1.output.contains("AAAUSDT-1h-2024-02-02.zip"), n1.output)
        XCTAssertTrue(n1.output.contains("\"BBBUSDT/1H/OHLCV\" : \"2024-01 (before its first archive)\""), n1.output)
        var m = try manifest("nights")
        XCTAssertEqual(m.units.values.filter { $0.id.contains("/DDDUSDT/") && $0.status == .done }.count, 34)

        // Night 2, 6 February: BBB's and DDD's January monthlies are out, CCC joins the job, two
        // more February days everywhere.
        try generate("spot", "BBBUSDT", "1h", "2024-01")
        try generate("spot", "DDDUSDT", "1h", "2024-01")
        try generate("spot", "CCCUSDT", "1h", "2024-01")
        for s in ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"] { try generate("spot", s, "1h", "2024-02", days: 1...5) }
        path = try job("nights", symbols: ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"], intervals: ["1h"], from: "2024-01", to: "latest")
        let n2 = try importer(["nightly", path], today: "2024-02-06")
        XCTAssertEqual(n2.status, 0, n2.output)
        m = try manifest("nights")
        for s in ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"] {
            XCTAssertEqual(m.units["data/spot/monthly/klines/\(s)/1h/\(s)-1h-2024-01.zip"]?.status, .done, s)
            for day in 1...5 { XCTAssertEqual(m.units["data/spot/daily/klines/\(s)/1h/\(s)-1h-2024-02-0\(day).zip"]?.status, .done, "\(s) \(day)") }
            let januaryDays = m.units.values.filter { $0.id.contains("/\(s)-1h-2024-01-") }
            XCTAssertTrue(januaryDays.allSatisfy { $0.status == .superseded }, "\(s): \(januaryDays.map { "\($0.id) \($0.status)" })")
            try await assertTargetHolds(s, "1H", try expected(archivePaths(s, "1h", months: ["2024-01"], days: ("2024-02", 1...5))))
        }
        XCTAssertEqual(m.units.values.filter { $0.id.contains("/DDDUSDT-1h-2024-01-") }.count, 31)

        // Night 3, the same day: nothing new. One listing per key (February's dailies: every
        // earlier month is settled, so the monthly folders wait for the next deep check), no
        // download, no CHECKSUM, no write.
        try await archives.control(["reset": true])
        let (writesBefore, _) = try await writeCalls()
        let n3 = try importer(["nightly", path], today: "2024-02-06")
        XCTAssertEqual(n3.status, 0, n3.output)
        let (writesAfter, _) = try await writeCalls()
        XCTAssertEqual(writesAfter, writesBefore)
        let (zips, checksums) = (try await zipRequests(), try await checksumRequests())
        XCTAssertEqual([zips, checksums], [0, 0])
        let listed = Set(try await archives.stats()["listings"] as! [String])
        XCTAssertEqual(listed.count, 4, "\(listed)")
        XCTAssertTrue(listed.allSatisfy { $0.hasSuffix("-1h-2024-02-") }, "\(listed)")
        XCTAssertTrue(n3.output.contains("\"skipped\" : 24"), n3.output)

        // Status: every key done from its monthly in January and from dailies in February.
        let status = try importer(["status", path, "--json"], today: "2024-02-06")
        XCTAssertEqual(status.status, 0, status.output)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
        XCTAssertEqual(object["months"] as? [String], ["2024-01", "2024-02"])
        let grid = try XCTUnwrap(object["grid"] as? [String: [String]])
        XCTAssertEqual(grid.keys.sorted(), ["AAAUSDT/1H/OHLCV", "BBBUSDT/1H/OHLCV", "CCCUSDT/1H/OHLCV", "DDDUSDT/1H/OHLCV"])
        XCTAssertTrue(grid.values.allSatisfy { $0 == ["monthly", "daily"] }, "\(grid)")
        let text = try importer(["status", path], today: "2024-02-06")
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertTrue(text.output.contains("AAAUSDT/1H/OHLCV  Md"), text.output)
        XCTAssertTrue(text.output.contains("M done from the monthly archive"), text.output)
    }

    /// Typos fail visibly: a mirror that does not exist, a listing URL that is not a listing, a
    /// symbol with no archive in the range. The good symbols are still imported, and months
    /// missing before a symbol's first archive are one range in the summary.
    func testTyposFailVisiblyAndTheGoodSymbolsStillLand() async throws {
        for m in ["2024-01", "2024-02"] { try generate("spot", "AAAUSDT", "1h", m) }
        let path = try job("typos", symbols: ["AAAUSDT", "BTCUSDX"], intervals: ["1h"], from: "2023-10", to: "2024-02")
        let noMirror = try variant(of: path, "no-mirror", replacing: "base_url: \(archives.base)/", with: "base_url: file:///wrong/path/")
        let r1 = try importer(["run", noMirror], today: "2024-06-01")
        XCTAssertEqual(r1.status, 2, r1.output)
        XCTAssertTrue(r1.output.contains("key 'source.base_url': the mirror directory /wrong/path/ does not exist"), r1.output)
        let notMirror = try variant(of: path, "not-mirror", replacing: "base_url: \(archives.base)/", with: "base_url: \(work.path)")
        let r2 = try importer(["run", notMirror], today: "2024-06-01")
        XCTAssertEqual(r2.status, 2, r2.output)
        XCTAssertTrue(r2.output.contains("is not a mirror of data.binance.vision: it has no data/ folder"), r2.output)
        let badListing = try variant(of: path, "bad-listing", replacing: "listing_url: \(archives.base)/listing", with: "listing_url: \(archives.base)/nothing-here")
        let r3 = try importer(["run", badListing], today: "2024-06-01")
        XCTAssertEqual(r3.status, 2, r3.output)
        XCTAssertTrue(r3.output.contains("key 'source.listing_url'") && r3.output.contains("HTTP 404"), r3.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent("state/typos.manifest.db").path), "nothing was done")

        let r4 = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(r4.status, 1, r4.output)
        XCTAssertTrue(r4.output.contains("no archive published for BTCUSDX 1h in 2023-10..2024-02; check the symbol"), r4.output)
        XCTAssertTrue(r4.output.contains("not published: AAAUSDT/1H/OHLCV: 2023-10..2023-12 (before its first archive)"), r4.output)
        XCTAssertEqual(tableValue(r4.output, "failed"), "5", r4.output)
        try await assertTargetHolds("AAAUSDT", "1H", try expected(archivePaths("AAAUSDT", "1h", months: ["2024-01", "2024-02"])))
        let status = try importer(["status", path, "--json"], today: "2024-06-01")
        XCTAssertEqual(status.status, 1, status.output)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
        let grid = try XCTUnwrap(object["grid"] as? [String: [String]])
        XCTAssertEqual(grid["BTCUSDX/1H/OHLCV"], Array(repeating: "failed", count: 5))
        XCTAssertEqual(grid["AAAUSDT/1H/OHLCV"], ["not_published", "not_published", "not_published", "monthly", "monthly"])
    }

    /// The example nightly workflow can work as written: it writes to the MarketStore named by
    /// MARKETSTORE_URL (not to a loopback address where no server runs on a hosted runner), runs
    /// `make nightly`, and its job goes up to the latest day; `make nightly` turns that into the
    /// CLI's own arguments.
    func testTheNightlyWorkflowNamesItsTargetAndRunsMakeNightly() throws {
        let root = ServerProcess.repoRoot
        let text = try String(contentsOf: root.appendingPathComponent(".github/workflows/nightly-import.yml"), encoding: .utf8)
        let workflow = try XCTUnwrap(try Yams.load(yaml: text) as? [String: Any])
        let job = try XCTUnwrap((workflow["jobs"] as? [String: Any])?["import"] as? [String: Any])
        let env = try XCTUnwrap(job["env"] as? [String: String])
        XCTAssertEqual(env["MARKETSTORE_URL"], "${{ vars.MARKETSTORE_URL || secrets.MARKETSTORE_URL }}")
        let runs = (job["steps"] as? [[String: Any]] ?? []).compactMap { $0["run"] as? String }
        XCTAssertTrue(runs.contains("make nightly JOB=\"$JOB\" TARGET=\"$MARKETSTORE_URL\""), "\(runs)")
        let spec = try JobSpec.load(path: root.appendingPathComponent(try XCTUnwrap(env["JOB"])).path)
        XCTAssertEqual(spec.to, .latest, "the nightly job goes up to the latest day (to: latest)")
        // What make runs: the release binary's nightly with the target from the workflow.
        let dry = try runCommand("/usr/bin/env", ["make", "-n", "nightly", "JOB=\(env["JOB"]!)", "TARGET=http://mkts.example:5993/rpc"], directory: root)
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains(".build/release/binance-import nightly jobs/spot-majors-1m.yml --log-format json --target http://mkts.example:5993/rpc"), dry.output)
    }

    /// One key whose bucket holds float64 columns while the job writes float32: that key's unit
    /// fails with the schema message and its bucket keeps its rows; the two healthy keys of the
    /// same requests land exactly; exit 1 (not 3). On the server and on the directory target.
    func testAKeyWithAConflictingSchemaFailsAloneOnBothTargets() async throws {
        let symbols = ["S00USDT", "S01USDT", "S02USDT"]
        for s in symbols { try generate("spot", s, "1h", "2024-01") }
        let epochs: [Int64] = (0..<10).map { 1_704_067_200 + 3600 * $0 }
        let old = try WriteDataSet(names: ["Epoch", "Open", "High", "Low", "Close", "Volume"],
                                   columns: [.int64(epochs)] + (1...5).map { c in .float64(epochs.map { Double($0 % 977) + Double(c) / 8 }) },
                                   keys: [.init(key: "S01USDT/1H/OHLCV", start: 0, count: 10)])
        let dir = work.appendingPathComponent("mktsdb").path
        try await MarketStoreClient(url: marketstore.url).write(old)
        try DirectoryWriter(root: dir).write(old)
        let path = try job("isolate", symbols: symbols, intervals: ["1h"], from: "2024-01", to: "2024-01", chunkRows: 5000)
        for target in [marketstore.url, dir] {
            let r = try importer(["run", path, "--target", target], today: "2024-06-01")
            XCTAssertEqual(r.status, 1, "\(target): \(r.output)")
            XCTAssertTrue(r.output.contains("S01USDT-1h-2024-01.zip: write: S01USDT/1H/OHLCV:") && r.output.contains("type"), r.output)
            let m = try manifest("isolate")
            XCTAssertEqual(m.units.values.filter { $0.status == .done }.map(\.key).sorted(), ["S00USDT/1H/OHLCV", "S02USDT/1H/OHLCV"], target)
            for s in ["S00USDT", "S02USDT"] {
                let rows = try expected(archivePaths(s, "1h", months: ["2024-01"]))
                if target == dir {
                    let back = try XCTUnwrap(try DirectoryReader(root: dir).read(key: "\(s)/1H/OHLCV"))
                    XCTAssertEqual(back.columns, [.int64(rows.epochs)] + rows.columns.map(\.values), s)
                } else {
                    try await assertTargetHolds(s, "1H", rows)
                }
            }
            // The conflicting bucket is as it was.
            if target == dir {
                let back = try XCTUnwrap(try DirectoryReader(root: dir).read(key: "S01USDT/1H/OHLCV"))
                XCTAssertEqual(back.columns, old.columns)
            } else {
                let back = try await MarketStoreClient(url: marketstore.url).query(symbols: ["S01USDT"], timeframe: "1H", attributeGroup: "OHLCV")
                XCTAssertEqual(back.first?.columns, old.columns)
            }
            try FileManager.default.removeItem(at: work.appendingPathComponent("state"))
        }
    }

    /// A report that cannot be written is said, not swallowed; the run itself still succeeds.
    func testAReportThatCannotBeWrittenIsReported() throws {
        try generate("spot", "BTCUSDT", "1h", "2024-01")
        let path = try job("report", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        try FileManager.default.createDirectory(at: work.appendingPathComponent("state/report.report.json"), withIntermediateDirectories: true)
        let r = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("could not write the report \(work.appendingPathComponent("state/report.report.json").path)"), r.output)
    }

    /// Hostile archives (crafted zip64 offsets and sizes, sizes that disagree) fail their own unit
    /// with a clean error inside a job, which goes on with the others; `inspect` says the same.
    func testCraftedArchivesFailTheirUnitAndTheJobGoesOn() async throws {
        try generate("spot", "BTCUSDT", "1h", "2024-01")
        let crafted = ["2024-02": "directory offset + size wraps", "2024-03": "local header offset 2^64-1", "2024-04": "local compressed size differs (zip64)"]
        let dir = tree.appendingPathComponent("data/spot/monthly/klines/BTCUSDT/1h")
        for (month, label) in crafted {
            let name = "BTCUSDT-1h-\(month)"
            let csv = "1706745600000,1.0,1.0,1.0,1.0,1.0,1706749199999,1.0,1,1.0,1.0,0\n"
            let bytes = try XCTUnwrap(CraftedZips.cases(name + ".csv", csv).first { $0.label == label }?.bytes, label)
            try Data(bytes).write(to: dir.appendingPathComponent(name + ".zip"))
            try "\(sha256Hex(bytes))  \(name).zip\n".write(to: dir.appendingPathComponent(name + ".zip.CHECKSUM"), atomically: true, encoding: .utf8)
        }
        let path = try job("crafted", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-04")
        let r = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(r.status, 1, r.output)
        let m = try manifest("crafted")
        XCTAssertEqual(m.units["data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip"]?.status, .done)
        for month in crafted.keys {
            let record = m.units["data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-\(month).zip"]
            XCTAssertEqual(record?.status, .failed, month)
            XCTAssertTrue(record?.error?.contains("BTCUSDT-1h-\(month).zip") == true, "\(month): \(record?.error ?? "")")
        }
        try await assertTargetHolds("BTCUSDT", "1H", try expected(archivePaths("BTCUSDT", "1h", months: ["2024-01"])))
        let inspect = try importer(["inspect", dir.appendingPathComponent("BTCUSDT-1h-2024-03.zip").path], today: "2024-06-01")
        XCTAssertEqual(inspect.status, 1, inspect.output)
        XCTAssertTrue(inspect.output.contains("error: ") && inspect.output.contains("lies outside the file"), inspect.output)
    }

    /// A directory target and its manifest on a 2 MB file system that fills part-way: the failing
    /// unit says "No space left on device", the file and how many bytes were written; the run
    /// exits 1 (not 2) and still prints its summary; once there is room the re-run completes and
    /// verify matches.
    func testAFullDiskFailsClearlyAndTheRerunCompletes() async throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root") }
        let small = work.appendingPathComponent("small")
        try FileManager.default.createDirectory(at: small, withIntermediateDirectories: true)
        let mounted = try run("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small.path])
        guard mounted.status == 0 else { throw XCTSkip("cannot mount a tmpfs here: \(mounted.output)") }
        defer { _ = try? run("/bin/umount", [small.path]) }
        for s in ["S00USDT", "S01USDT"] { try generate("spot", s, "1m", "2024-01") }
        let path = try variant(of: try job("full", symbols: ["S00USDT", "S01USDT"], intervals: ["1m"], from: "2024-01", to: "2024-01"), "full-small",
                               replacing: work.appendingPathComponent("state/full.manifest.db").path,
                               with: small.appendingPathComponent("state/full.manifest.db").path)
        let target = small.appendingPathComponent("mktsdb").path
        let r = try importer(["run", path, "--target", target], today: "2024-06-01")
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("No space left on device"), r.output)
        XCTAssertTrue(r.output.contains(target + "/S0") && r.output.contains("2024.bin") && r.output.contains(" bytes)"), r.output)
        XCTAssertFalse(r.output.contains(": Success"), r.output)
        XCTAssertNotNil(tableValue(r.output, "failed"), "the summary is printed: \(r.output)")
        // Room again: the re-run completes and everything reads back as recorded.
        let grown = try run("/bin/mount", ["-o", "remount,size=32m", small.path])
        XCTAssertEqual(grown.status, 0, grown.output)
        let again = try importer(["run", path, "--target", target], today: "2024-06-01")
        XCTAssertEqual(again.status, 0, again.output)
        let verify = try importer(["verify", path, "--target", target], today: "2024-06-01")
        XCTAssertEqual(verify.status, 0, verify.output)
        XCTAssertTrue(verify.output.contains("verified 2 units: all match"), verify.output)
    }

    /// An archive whose rows are out of order is read back over its whole period by verify, not
    /// between its first and last rows in file order.
    func testVerifyReadsAnOutOfOrderArchiveBackWhole() async throws {
        try generate("spot", "BTCUSDT", "1h", "2024-01")
        let zip = tree.appendingPathComponent("data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip").path
        let reversed = try run("/usr/bin/env", ["python3", "-c", """
            import hashlib, sys, zipfile
            path = sys.argv[1]
            with zipfile.ZipFile(path) as z:
                name = z.namelist()[0]
                lines = z.read(name).decode().splitlines(keepends=True)
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
                z.writestr(name, "".join(reversed(lines)))
            digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
            open(path + ".CHECKSUM", "w").write(digest + "  " + path.split("/")[-1] + "\\n")
            """, zip])
        XCTAssertEqual(reversed.status, 0, reversed.output)
        let path = try job("unordered", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        let r = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(r.status, 0, r.output)
        let verify = try importer(["verify", path], today: "2024-06-01")
        XCTAssertEqual(verify.status, 0, verify.output)
        XCTAssertTrue(verify.output.contains("verified 1 units: all match"), verify.output)
    }

    /// A dry run touches nothing (no state folder, no lock file) and says where archives come
    /// from: fetched over HTTP, or read in place from a mirror.
    func testADryRunTouchesNothing() throws {
        for m in ["2024-01", "2024-02"] { try generate("spot", "BTCUSDT", "1h", m) }
        let path = try job("dry", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-02")
        let state = work.appendingPathComponent("state")
        let http = try importer(["run", path, "--dry-run"], today: "2024-06-01")
        XCTAssertEqual(http.status, 0, http.output)
        XCTAssertTrue(http.output.contains("2 to import (0 archives cached, 2 to fetch)"), http.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: state.path), "no state folder")
        let mirror = try variant(of: path, "dry-mirror", replacing: "base_url: \(archives.base)/", with: "base_url: file://\(tree.path)")
        let local = try importer(["run", mirror, "--dry-run"], today: "2024-06-01")
        XCTAssertEqual(local.status, 0, local.output)
        XCTAssertTrue(local.output.contains("2 to import (read from the mirror)"), local.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: state.path), "no state folder")
        XCTAssertFalse(FileManager.default.fileExists(atPath: work.appendingPathComponent("cache").path), "no cache folder")
    }

    /// The state database commits in groups: changes wait for the commit interval (or many
    /// changes, or the end of the run), then one transaction writes them; a reader sees the last
    /// commit; closing leaves the database file alone holding the state (no write-ahead log).
    func testTheStateDatabaseCommitsInGroups() async throws {
        let path = work.appendingPathComponent("state/group.manifest.db").path
        let store = try ManifestStore.open(manifest: path, job: "group", commitInterval: .seconds(3600))
        for i in 0..<100 { await store.update("u\(i)", key: "K/1H/OHLCV") { $0.status = .done; $0.rows = i; $0.digests = ["Epoch": "m1:ab"] } }
        try await store.commit()
        XCTAssertEqual(try Manifest.load(path: path, job: "group").units.count, 0, "not due yet: nothing committed")
        try await store.commit(force: true)
        var loaded = try Manifest.load(path: path, job: "group")
        XCTAssertEqual(loaded.units.count, 100)
        XCTAssertEqual(loaded.units["u99"]?.rows, 99)
        XCTAssertEqual(loaded.units["u99"]?.digests, ["Epoch": "m1:ab"])
        XCTAssertEqual(loaded.version, 4)
        await store.update("u7") { $0.status = .failed; $0.error = "boom"; $0.attempts += 1 }
        let (seen, entry) = (await store.record("u7"), await store.entry("u7"))
        XCTAssertEqual(seen?.status, .failed, "the run sees its own change at once")
        XCTAssertEqual(entry, UnitIndexEntry(status: .failed, listing: nil))
        XCTAssertEqual(try Manifest.load(path: path, job: "group").units["u7"]?.status, .done, "a reader sees the last commit")
        try await store.close()
        loaded = try Manifest.load(path: path, job: "group")
        XCTAssertEqual(loaded.units["u7"]?.status, .failed)
        XCTAssertEqual(loaded.units["u7"]?.error, "boom")
        XCTAssertEqual(loaded.units["u7"]?.rows, 7, "an update changes what it changes")
        XCTAssertEqual((try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0, 0)
        // Standard tools read it.
        let sqlite = try run("/usr/bin/env", ["python3", "-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from units where status='done'\").fetchone()[0])", path])
        XCTAssertEqual(sqlite.output.trimmingCharacters(in: .whitespacesAndNewlines), "99", sqlite.output)
    }

    /// The JSON manifest of the release before (version 2: a snapshot and its journal, whose torn
    /// last line is ignored) is carried into the database when the job still names the `.json`
    /// file; the JSON files stay beside it as `.migrated`. A damaged journal line is refused with
    /// the file and the line.
    func testAVersion2ManifestAndItsJournalAreCarriedOver() async throws {
        let json = work.appendingPathComponent("state/old.manifest.json").path
        try FileManager.default.createDirectory(at: work.appendingPathComponent("state"), withIntermediateDirectories: true)
        try """
        {
        "job" : "old",
        "units" : {
        "a" : {"attempts":1,"id":"a","key":"A\\/1H\\/OHLCV","remote_path":"a","rows":24,"status":"done","verified":true},
        "b" : {"attempts":1,"id":"b","key":"B\\/1H\\/OHLCV","remote_path":"b","status":"failed","error":"HTTP 403","verified":false}
        },
        "version" : 2
        }

        """.write(toFile: json, atomically: true, encoding: .utf8)
        try (#"{"attempts":2,"id":"b","key":"B\/1H\/OHLCV","listing":"10 - 1.5","remote_path":"b","rows":5,"status":"done","verified":true}"# + "\n"
             + #"{"id":"a","status":"fai"#).write(toFile: Manifest.journalPath(json), atomically: true, encoding: .utf8)
        XCTAssertEqual(try Manifest.load(path: json, job: "old").units["b"]?.status, .done, "readers read the JSON as it is")
        let store = try ManifestStore.open(manifest: json, job: "old")
        try await store.close()
        let db = Manifest.databasePath(json)
        XCTAssertTrue(db.hasSuffix("state/old.manifest.db"))
        let m = try Manifest.load(path: json, job: "old")
        XCTAssertEqual(m.version, 4)
        XCTAssertEqual(m.units["a"]?.status, .done)
        XCTAssertEqual(m.units["a"]?.rows, 24)
        XCTAssertEqual(m.units["b"]?.status, .done)
        XCTAssertEqual(m.units["b"]?.listing, "10 - 1.5")
        XCTAssertEqual(m.units["b"]?.attempts, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: json))
        XCTAssertTrue(FileManager.default.fileExists(atPath: json + ".migrated"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: Manifest.journalPath(json) + ".migrated"))
        // A damaged line in the middle of a journal is an error naming the file and the line.
        let other = work.appendingPathComponent("state/damaged.manifest.json").path
        try "{\"id\": 1}\n".write(toFile: Manifest.journalPath(other), atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try ManifestStore.open(manifest: other, job: "damaged")) {
            XCTAssertTrue("\($0)".contains("\(Manifest.journalPath(other)): line 1 is not a unit record"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: Manifest.databasePath(other)), "nothing carried over")
    }

    /// A manifest written by the previous release (version 1, no journal, no listing
    /// fingerprints) is carried over: the next run re-imports nothing, downloads nothing, writes
    /// nothing, and leaves a version 4 state database with every unit done.
    func testAManifestOfThePreviousReleaseIsCarriedOver() async throws {
        for s in ["BTCUSDT", "ETHUSDT"] { for m in ["2024-01", "2024-02"] { try generate("spot", s, "1h", m) } }
        let manifestPath = work.appendingPathComponent("state/carried.manifest.json").path
        let path = try variant(of: try job("carried", symbols: ["BTCUSDT", "ETHUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-02"), "carried-json",
                               replacing: Manifest.databasePath(manifestPath), with: manifestPath)
        // Written by the previous release (session-start commit 6aaddb4) for this very job, from
        // a mirror of the same deterministic archives; @TREE@ stands for the mirror's path.
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("fixtures/manifest-v1.json")
        let v1 = try String(contentsOf: fixture, encoding: .utf8)
        XCTAssertTrue(v1.contains("\"version\" : 1"), "a version 1 manifest")
        try FileManager.default.createDirectory(at: work.appendingPathComponent("state"), withIntermediateDirectories: true)
        try v1.replacingOccurrences(of: "@TREE@", with: tree.path).write(toFile: manifestPath, atomically: true, encoding: .utf8)
        try await archives.control(["reset": true])
        let (writesBefore, _) = try await writeCalls()
        let r = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(tableValue(r.output, "skipped (already done)"), "4", r.output)
        let (writesAfter, _) = try await writeCalls()
        XCTAssertEqual(writesAfter, writesBefore)
        let (zips, checksums) = (try await zipRequests(), try await checksumRequests())
        XCTAssertEqual(zips, 0)
        XCTAssertEqual(checksums, 4, "each carried unit's CHECKSUM is read once, then its fingerprint kept")
        XCTAssertTrue(r.output.contains("carried 4 unit records of the version 1 manifest"), r.output)
        let m = try manifest("carried")
        XCTAssertEqual(m.version, 4)
        XCTAssertTrue(m.units.values.allSatisfy { $0.status == .done && $0.listing != nil }, "\(m.units.values.map(\.listing))")
        // The next run needs no CHECKSUM at all.
        try await archives.control(["reset": true])
        let again = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(again.status, 0, again.output)
        let checksumsAgain = try await checksumRequests()
        XCTAssertEqual(checksumsAgain, 0)
    }

    /// Three shards of a job, each into its own directory: each symbol lands in exactly one shard,
    /// and the union of the shard directories (copying the trees together) is byte for byte the
    /// directory a single run writes. Each shard keeps its own state file; status reads them
    /// together.
    func testShardDirectoriesUniteIntoTheSingleRunsDirectory() throws {
        let symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT", "FFFUSDT"]
        for s in symbols { for m in ["2024-01", "2024-02"] { try generate("spot", s, "1h", m) } }
        let path = try job("sharded", symbols: symbols, intervals: ["1h"], from: "2024-01", to: "2024-02")
        let single = work.appendingPathComponent("single").path
        XCTAssertEqual(try importer(["run", path, "--target", single], today: "2024-06-01").status, 0)
        try FileManager.default.removeItem(at: work.appendingPathComponent("state"))
        let union = work.appendingPathComponent("union")
        var owners: [String: Int] = [:]
        for k in 0..<3 {
            let dir = work.appendingPathComponent("shard-\(k)")
            let r = try importer(["run", path, "--shard", "\(k)/3", "--target", dir.path], today: "2024-06-01")
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(FileManager.default.fileExists(atPath: work.appendingPathComponent("state/sharded.shard-\(k)-of-3.manifest.db").path))
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name != "category_name" {
                XCTAssertNil(owners[name], "\(name) is in two shards")
                owners[name] = k
            }
            try copyTree(dir, into: union)
        }
        XCTAssertEqual(owners.keys.sorted(), symbols)
        XCTAssertGreaterThan(Set(owners.values).count, 1, "the symbols spread over the shards")
        XCTAssertEqual(try treeBytes(union), try treeBytes(URL(fileURLWithPath: single)))
        let status = try importer(["status", path, "--shards", "3", "--json"], today: "2024-06-01")
        XCTAssertEqual(status.status, 0, status.output)
        let counts = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])?["counts"] as? [String: Int])
        XCTAssertEqual(counts["done"], 12)
        let bad = try importer(["run", path, "--shard", "3/3"], today: "2024-06-01")
        XCTAssertEqual(bad.status, 2, bad.output)
        XCTAssertTrue(bad.output.contains("key '--shard': must be K/N with 0 <= K < N, not 3/3"), bad.output)
    }

    /// Three shards write to one MarketStore at once; every row reads back exactly.
    func testShardsWriteToOneServerAtOnce() async throws {
        let symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT", "EEEUSDT", "FFFUSDT"]
        for s in symbols { try generate("spot", s, "1h", "2024-01") }
        let path = try job("together", symbols: symbols, intervals: ["1h"], from: "2024-01", to: "2024-01", chunkRows: 500)
        var env = ProcessInfo.processInfo.environment
        env["BINANCE_IMPORT_TODAY"] = "2024-06-01"
        let processes = try (0..<3).map { k -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.binary)
            p.arguments = ["run", path, "--shard", "\(k)/3"]
            p.currentDirectoryURL = work
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        for p in processes {
            while p.isRunning { usleep(20_000) }
            XCTAssertEqual(p.terminationStatus, 0)
        }
        for s in symbols { try await assertTargetHolds(s, "1H", try expected(archivePaths(s, "1h", months: ["2024-01"]))) }
    }

    /// The example deployments pass arguments the CLI accepts: the Kubernetes Indexed Job and its
    /// CronJob (index from JOB_COMPLETION_INDEX) run for real against the fixtures, and the
    /// Actions matrix hands `make import` a shard the binary takes.
    func testTheShardedDeploymentsPassArgumentsTheCLIAccepts() async throws {
        for s in ["AAAUSDT", "BBBUSDT"] { try generate("spot", s, "1h", "2024-01") }
        let path = try job("deployed", symbols: ["AAAUSDT", "BBBUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        let root = ServerProcess.repoRoot
        let text = try String(contentsOf: root.appendingPathComponent("deploy/k8s/indexed-job.yaml"), encoding: .utf8)
        var seen: [String] = []
        for case let document as [String: Any] in try Yams.load_all(yaml: text) {
            let kind = try XCTUnwrap(document["kind"] as? String)
            var spec = try XCTUnwrap(document["spec"] as? [String: Any])
            if kind == "CronJob" { spec = try XCTUnwrap((spec["jobTemplate"] as? [String: Any])?["spec"] as? [String: Any]) }
            XCTAssertEqual(spec["completionMode"] as? String, "Indexed", kind)
            let n = try XCTUnwrap(spec["completions"] as? Int)
            XCTAssertEqual(spec["parallelism"] as? Int, n, kind)
            let containers = try XCTUnwrap(((spec["template"] as? [String: Any])?["spec"] as? [String: Any])?["containers"] as? [[String: Any]])
            let args = try XCTUnwrap(containers.first?["args"] as? [String])
            XCTAssertEqual(args.firstIndex(of: "--shard").map { args[$0 + 1] }, "$(JOB_COMPLETION_INDEX)/\(n)", kind)
            // As Kubernetes expands them for pod 1, with the fixtures in place of the job and the server.
            let local = args.map { arg -> String in
                arg.replacingOccurrences(of: "$(JOB_COMPLETION_INDEX)", with: "1")
                    .replacingOccurrences(of: "/jobs/spot-majors-1m.yml", with: path)
                    .replacingOccurrences(of: "http://marketstore:5993/rpc", with: marketstore.url)
            }
            let r = try importer(local, today: "2024-06-01")
            XCTAssertEqual(r.status, 0, "\(kind) \(local): \(r.output)")
            seen.append(kind)
        }
        XCTAssertEqual(seen, ["Job", "CronJob"])
        let workflow = try XCTUnwrap(try Yams.load(yaml: String(contentsOf: root.appendingPathComponent(".github/workflows/sharded-import.yml"), encoding: .utf8)) as? [String: Any])
        let job = try XCTUnwrap((workflow["jobs"] as? [String: Any])?["import"] as? [String: Any])
        let matrix = try XCTUnwrap((job["strategy"] as? [String: Any])?["matrix"] as? [String: Any])
        let n = try XCTUnwrap((matrix["shards"] as? [Int])?.first)
        XCTAssertEqual(matrix["shard"] as? [Int], Array(0..<n))
        let runs = (job["steps"] as? [[String: Any]] ?? []).compactMap { $0["run"] as? String }
        XCTAssertTrue(runs.contains { $0.contains("make import") && $0.contains("SHARD=\"${{ matrix.shard }}/${{ matrix.shards }}\"") }, "\(runs)")
        let dry = try runCommand("/usr/bin/env", ["make", "-n", "import", "JOB=jobs/spot-majors-1m.yml", "SHARD=2/\(n)", "TARGET=http://mkts:5993/rpc"], directory: root)
        let command = dry.output.replacingOccurrences(of: " +", with: " ", options: .regularExpression)
        XCTAssertTrue(command.contains("binance-import run jobs/spot-majors-1m.yml --target http://mkts:5993/rpc --shard 2/\(n)"), dry.output)
    }

    /// `run --metrics-file` writes the run's counters in Prometheus' text format: Prometheus' own
    /// parser reads it, and the rows per key and in total are the rows the target holds.
    func testAMetricsFileCountsWhatTheTargetHolds() async throws {
        for s in ["BTCUSDT", "ETHUSDT"] { try generate("spot", s, "1h", "2024-01") }
        let path = try job("metrics", symbols: ["BTCUSDT", "ETHUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01", chunkRows: 500)
        let file = work.appendingPathComponent("metrics/binance-import.prom").path
        try FileManager.default.createDirectory(at: work.appendingPathComponent("metrics"), withIntermediateDirectories: true)
        let r = try importer(["run", path, "--metrics-file", file], today: "2024-06-01")
        XCTAssertEqual(r.status, 0, r.output)
        let parsed = try run("/usr/bin/env", ["python3", "-c", """
            import json, sys
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(open(sys.argv[1]).read()):
                for s in family.samples:
                    out[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
            print(json.dumps(out))
            """, file])
        XCTAssertEqual(parsed.status, 0, parsed.output)
        let samples = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(parsed.output.utf8)) as? [String: Double])
        func value(_ name: String, _ labels: String) -> Double? { samples[name + labels] }
        XCTAssertEqual(value("binance_import_rows_written_total", #"{"job": "metrics"}"#), 1488, "\(samples)")
        for s in ["BTCUSDT", "ETHUSDT"] {
            XCTAssertEqual(value("binance_import_rows_written_total", #"{"job": "metrics", "key": "\#(s)/1H/OHLCV"}"#), 744)
            XCTAssertNotNil(value("binance_import_last_write_timestamp_seconds", #"{"job": "metrics", "key": "\#(s)/1H/OHLCV"}"#))
        }
        XCTAssertEqual(value("binance_import_write_requests_total", #"{"job": "metrics"}"#).map(Int.init), Int(tableValue(r.output, "write requests") ?? ""))
        XCTAssertEqual(value("binance_import_units", #"{"job": "metrics", "outcome": "done"}"#), 2)
        XCTAssertEqual(value("binance_import_write_errors_total", #"{"job": "metrics", "kind": "schema"}"#), 0)
        XCTAssertEqual(value("binance_import_run_exit_code", #"{"job": "metrics"}"#), 0)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work.appendingPathComponent("metrics").path), ["binance-import.prom"],
                       "written whole under its name, no temporary left")
        let client = MarketStoreClient(url: marketstore.url)
        let held = try await client.query(symbols: ["BTCUSDT", "ETHUSDT"], timeframe: "1H", attributeGroup: "OHLCV")
        XCTAssertEqual(held.map(\.epochs.count).reduce(0, +), 1488)
    }

    /// compose.yaml and the Dockerfile (no Docker engine here, nor the compose plugin): the
    /// importer services' commands run as they are with the local binary (the job from ./jobs,
    /// the server and the state where the test puts them) and write their metrics file; the
    /// image runs binance-import as a non-root user with the runtime libraries it links.
    func testTheComposeServicesRunTheirCommands() throws {
        let root = ServerProcess.repoRoot
        let compose = try XCTUnwrap(try Yams.load(yaml: String(contentsOf: root.appendingPathComponent("compose.yaml"), encoding: .utf8)) as? [String: Any])
        let services = try XCTUnwrap(compose["services"] as? [String: Any])
        let store = try XCTUnwrap(services["marketstore"] as? [String: Any])
        let mounts = try XCTUnwrap(store["volumes"] as? [String])
        XCTAssertTrue(mounts.contains("./deploy/compose/mkts.yml:/etc/mkts.yml:ro"))
        XCTAssertEqual(store["command"] as? [String], ["start", "--config", "/etc/mkts.yml"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: root.appendingPathComponent("deploy/compose/mkts.yml").path))

        try generate("spot", "BTCUSDT", "1h", "2024-01")
        let job = try self.job("compose", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        for name in ["backfill", "nightly"] {
            let service = try XCTUnwrap(services[name] as? [String: Any], name)
            XCTAssertTrue((service["volumes"] as? [String])?.contains("importer:/var/lib/binance-import") == true, name)
            let metrics = work.appendingPathComponent("\(name)/metrics/binance-import.prom").path
            let args = try XCTUnwrap(service["command"] as? [String]).map {
                $0.replacingOccurrences(of: "/${JOB:-jobs/spot-majors-1m.yml}", with: job)
                    .replacingOccurrences(of: "http://marketstore:5993/rpc", with: marketstore.url)
                    .replacingOccurrences(of: "/var/lib/binance-import/metrics/binance-import.prom", with: metrics)
            }
            let r = try importer(args, today: "2024-06-01")
            XCTAssertEqual(r.status, 0, "\(name) \(args): \(r.output)")
            XCTAssertTrue(try String(contentsOfFile: metrics, encoding: .utf8).contains("binance_import_run_exit_code{job=\"compose\"} 0"), name)
        }
        // follow: the command the CLI accepts (checked with --help of its options), restarted
        // unless stopped, healthy by /healthz on its metrics address.
        let follow = try XCTUnwrap(services["follow"] as? [String: Any])
        XCTAssertEqual(follow["restart"] as? String, "unless-stopped")
        let command = try XCTUnwrap(follow["command"] as? [String])
        XCTAssertEqual(command.first, "follow")
        let help = try importer(["follow", "--help"], today: "2024-06-01").output
        for option in command where option.hasPrefix("--") { XCTAssertTrue(help.contains(option), option) }
        let addr = try XCTUnwrap(command.firstIndex(of: "--metrics-addr").map { command[$0 + 1] })
        let check = try XCTUnwrap((follow["healthcheck"] as? [String: Any])?["test"] as? [String])
        XCTAssertTrue(check.contains("http://127.0.0.1:\(addr.split(separator: ":").last!)/healthz"), "\(check)")
        let dockerfile = try String(contentsOf: root.appendingPathComponent("Dockerfile"), encoding: .utf8)
        XCTAssertTrue(dockerfile.contains("FROM swift:") && dockerfile.contains("FROM debian:bookworm-slim"))
        for package in ["libcurl4", "libisal2", "zlib1g", "libsqlite3-0", "curl"] { XCTAssertTrue(dockerfile.contains(package), package) }
        XCTAssertTrue(dockerfile.contains("USER 10001:10001") && dockerfile.contains(#"ENTRYPOINT ["binance-import"]"#))
    }

    /// The job file example in the README is a valid job file, every key of it.
    func testTheREADMEJobExampleIsAValidJobFile() throws {
        let readme = try String(contentsOf: ServerProcess.repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try XCTUnwrap(readme.range(of: "## Job files"))
        let start = try XCTUnwrap(readme.range(of: "```yaml\n", range: section.upperBound..<readme.endIndex))
        let end = try XCTUnwrap(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let spec = try JobSpec.parse(yaml: String(readme[start.upperBound..<end.lowerBound]), file: "README.md")
        XCTAssertEqual(spec.dataset.name, "klines")
        XCTAssertEqual(spec.restWeightShare, 0.5)
        XCTAssertEqual(spec.restURL, "https://api.binance.com")
        XCTAssertEqual(Manifest.databasePath(spec.manifest), "state/spot-majors-1m.manifest.db")
    }

    func testJobFileErrorsNameTheFileTheKeyAndTheReason() throws {
        let good = try job("errors", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-02")
        let text = try String(contentsOfFile: good, encoding: .utf8)
        let cases: [(String, String, String)] = [
            ("name: errors", "name: errors\ncolour: blue", "key 'colour': unknown key"),
            ("intervals: [1h]", "intervals: [4h]", "key 'intervals': 4h: MarketStore cannot serve this timeframe back"),
            ("market: spot", "market: futures/um", ""),  // valid on its own
            ("from: 2024-01", "from: 2024-13", "key 'from': must be a month YYYY-MM"),
            ("to: 2024-02", "to: 2023-12", "key 'from': 2024-01 is after to: 2023-12"),
            ("symbols: [BTCUSDT]", "symbols: [../etc]", "key 'symbols': invalid symbol \"../etc\""),
            ("dtype: float32", "dtype: float16", "key 'dtype': must be float32 or float64"),
            ("  checksum: required", "  checksum: maybe", "key 'source.checksum': must be required or optional"),
            ("  checksum: required", "  checksum: required\n  http: 3", "key 'source.http': must be 2 (HTTP/2 where the server offers it) or 1.1"),
            ("  chunk_rows: 50000", "  chunk_rows: 5", "key 'write.chunk_rows': must be an integer"),
            ("  marketstore: ", "  stall_seconds: 0\n  marketstore: ", "key 'target.stall_seconds': must be an integer"),
            ("validation: report", "validation: lenient", "key 'validation': must be report or strict"),
            ("symbols: [BTCUSDT]", "symbols: [BTCUSDT, ETHUSDT, BTCUSDT]", "key 'symbols': BTCUSDT is listed twice"),
            ("intervals: [1h]", "intervals: [1h, 1m, 1h]", "key 'intervals': 1h is listed twice"),
            ("columns: [Open, High, Low, Close, Volume]", "columns: [Open, Close, Open]", "key 'columns': Open is listed twice"),
            ("to: 2024-02", "to: soon", "key 'to': must be a month YYYY-MM, latest or now"),
            ("attribute_group: OHLCV", "dataset: tradeKlines", "key 'dataset': must be one of klines, markPriceKlines, indexPriceKlines, premiumIndexKlines"),
            ("attribute_group: OHLCV", "dataset: fundingRate", "key 'dataset': fundingRate archives exist for futures/um and futures/cm only, not spot"),
            ("validation: report", "validation: report\nrest:\n  weight_share: 2", "key 'rest.weight_share': must be a number in (0, 1]"),
            ("validation: report", "validation: report\nrest:\n  budget: 2", "key 'rest.budget': unknown key"),
        ]
        for (from, to, message) in cases where !message.isEmpty {
            let bad = work.appendingPathComponent("bad.yml").path
            try text.replacingOccurrences(of: from, with: to).write(toFile: bad, atomically: true, encoding: .utf8)
            let r = try importer(["run", bad], today: "2024-06-01")
            XCTAssertEqual(r.status, 2, "\(to): \(r.output)")
            XCTAssertTrue(r.output.contains(bad) && r.output.contains(message), "\(to): \(r.output)")
        }
        let futures1s = text.replacingOccurrences(of: "market: spot", with: "market: futures/um").replacingOccurrences(of: "intervals: [1h]", with: "intervals: [1s]")
        let bad = work.appendingPathComponent("bad.yml").path
        try futures1s.write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try importer(["run", bad], today: "2024-06-01")
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.output.contains("1s klines exist for spot only"), r.output)
        let cli = try importer(["run", good, "--from", "2024-1"], today: "2024-06-01")
        XCTAssertEqual(cli.status, 2)
        XCTAssertTrue(cli.output.contains("--from"), cli.output)
        let twice = try importer(["run", good, "--symbols", "ETHUSDT,ETHUSDT"], today: "2024-06-01")
        XCTAssertEqual(twice.status, 2, twice.output)
        XCTAssertTrue(twice.output.contains("key '--symbols': ETHUSDT is listed twice"), twice.output)
    }

    func testDirectoryTargetAndTheLost1JanuaryRowInVerify() async throws {
        try generate("spot", "BTCUSDT", "1h", "2024-01")
        try generate("spot", "BTCUSDT", "1d", "2024-01")
        let dir = work.appendingPathComponent("mktsdb").path
        let path = try job("dir", symbols: ["BTCUSDT"], intervals: ["1h", "1d"], from: "2024-01", to: "2024-01")
        let r = try importer(["run", path, "--target", dir], today: "2024-06-01")
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("BTCUSDT/1D/OHLCV: 1 row(s) of 1 January written; MarketStore will not serve them"), r.output)
        XCTAssertEqual(tableValue(r.output, "rows MarketStore will not serve (1 Jan, 1D)"), "1", r.output)
        let hourly = try expected([tree.appendingPathComponent("data/spot/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip").path])
        let back = try XCTUnwrap(try DirectoryReader(root: dir).read(key: "BTCUSDT/1H/OHLCV"))
        XCTAssertEqual(back.columns, [.int64(hourly.epochs)] + hourly.columns.map(\.values))
        let verify = try importer(["verify", path, "--target", dir], today: "2024-06-01")
        XCTAssertEqual(verify.status, 1, verify.output)
        XCTAssertTrue(verify.output.contains("BTCUSDT-1d-2024-01.zip: 30 rows in the target, 31 in the manifest"), verify.output)
        XCTAssertTrue(verify.output.contains("the 1 January row: MarketStore never serves it from 1D buckets"), verify.output)
        XCTAssertFalse(verify.output.contains("BTCUSDT-1h-2024-01.zip:"), verify.output)

        // One Close value changed by one bit in the target: verify names the unit and the column.
        guard case var .float32(close) = back.columns[4], back.names[4] == "Close" else { return XCTFail("\(back.names)") }
        close[100] = Float(bitPattern: close[100].bitPattern ^ 1)
        var columns = back.columns
        columns[4] = .float32(close)
        try DirectoryWriter(root: dir).write(key: "BTCUSDT/1H/OHLCV", names: back.names, columns: columns)
        let changed = try importer(["verify", path, "--target", dir], today: "2024-06-01")
        XCTAssertEqual(changed.status, 1, changed.output)
        let hourLine = changed.output.split(separator: "\n").first { $0.contains("BTCUSDT-1h-2024-01.zip:") }
        XCTAssertEqual(hourLine.map { String($0.split(separator: ":").last!) }, " column Close differs", changed.output)
    }

    /// The manifest's digest: independent of row order and batching, changed by any one bit, by a
    /// value moved to another row, and by a lost row.
    func testColumnDigestSeesOneBitAndIgnoresOrder() {
        let epochs: [Int64] = (0..<50).map { 1_704_067_200 + 60 * $0 }
        let close: [Float] = (0..<50).map { 40000 + Float($0) * 0.25 }
        let trades: [Int64] = (0..<50).map { 1000 + $0 }
        func digest(_ e: [Int64], _ c: [Float], _ t: [Int64]) -> ColumnDigest {
            var d = ColumnDigest()
            d.add(epochs: e, columns: [("Close", .float32(c)), ("Trades", .int64(t))])
            return d
        }
        let reference = digest(epochs, close, trades)
        XCTAssertEqual(reference.rows, 50)
        XCTAssertEqual(digest(epochs.reversed(), close.reversed(), trades.reversed()), reference)
        var split = digest(Array(epochs[..<20]), Array(close[..<20]), Array(trades[..<20]))
        split.add(epochs: Array(epochs[20...]), columns: [("Close", .float32(Array(close[20...]))), ("Trades", .int64(Array(trades[20...])))])
        XCTAssertEqual(split, reference)
        var flipped = close
        flipped[7] = Float(bitPattern: flipped[7].bitPattern ^ 1)
        XCTAssertNotEqual(digest(epochs, flipped, trades).hex["Close"], reference.hex["Close"])
        XCTAssertEqual(digest(epochs, flipped, trades).hex["Trades"], reference.hex["Trades"])
        var swapped = close
        swapped.swapAt(3, 4)
        XCTAssertNotEqual(digest(epochs, swapped, trades).hex["Close"], reference.hex["Close"])
        XCTAssertNotEqual(digest(Array(epochs.dropLast()), Array(close.dropLast()), Array(trades.dropLast())).hex["Epoch"], reference.hex["Epoch"])
        XCTAssertTrue(reference.hex.values.allSatisfy { $0.hasPrefix(ColumnDigest.tag) })
    }

    func testDeleteAfterWriteKeepsTheCacheSmall() async throws {
        for m in ["2024-01", "2024-02"] { try generate("spot", "ETHUSDT", "1h", m) }
        let path = try job("small-cache", symbols: ["ETHUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-02", deleteAfterWrite: true)
        let r = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(r.status, 0, r.output)
        let cached = FileManager.default.enumerator(atPath: work.appendingPathComponent("cache").path)!.compactMap { $0 as? String }
        XCTAssertEqual(cached.filter { $0.hasSuffix(".zip") }, [], "archives deleted once written")
        XCTAssertEqual(cached.filter { $0.hasSuffix(".CHECKSUM") }.count, 2, "their CHECKSUMs stay")
        let again = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(tableValue(again.output, "skipped (already done)"), "2", again.output)
        let paths = ["2024-01", "2024-02"].map { tree.appendingPathComponent("data/spot/monthly/klines/ETHUSDT/1h/ETHUSDT-1h-\($0).zip").path }
        try await assertTargetHolds("ETHUSDT", "1H", try expected(paths))
    }

    func testTargetDownExitsWith3AndASecondRunIsLocked() async throws {
        try generate("spot", "BTCUSDT", "1h", "2024-01")
        let path = try job("down", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        marketstore.stop()
        let r = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(r.status, 3, r.output)
        XCTAssertTrue(r.output.contains("unreachable"), r.output)
        let lock = try JobLock(manifest: work.appendingPathComponent("state/down.manifest.db").path)
        let locked = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(locked.status, 2, locked.output)
        XCTAssertTrue(locked.output.contains("another run of this job holds the lock"), locked.output)
        _ = lock
    }
}

import Crypto
import MarketStoreModel
import DurableFiles

/// Copies every file under `source` into `destination` (creating folders); a file already there
/// must have the same bytes (the `category_name` files every shard writes).
func copyTree(_ source: URL, into destination: URL) throws {
    let fm = FileManager.default
    for case let relative as String in fm.enumerator(atPath: source.path)! {
        let from = source.appendingPathComponent(relative), to = destination.appendingPathComponent(relative)
        var isDirectory: ObjCBool = false
        fm.fileExists(atPath: from.path, isDirectory: &isDirectory)
        if isDirectory.boolValue {
            try fm.createDirectory(at: to, withIntermediateDirectories: true)
        } else if fm.fileExists(atPath: to.path) {
            XCTAssertEqual(try Data(contentsOf: from), try Data(contentsOf: to), relative)
        } else {
            try fm.createDirectory(at: to.deletingLastPathComponent(), withIntermediateDirectories: true)
            try fm.copyItem(at: from, to: to)
        }
    }
}

/// Every file under `root` with its bytes, by relative path.
func treeBytes(_ root: URL) throws -> [String: Data] {
    var out: [String: Data] = [:]
    for case let relative as String in FileManager.default.enumerator(atPath: root.path)! {
        var isDirectory: ObjCBool = false
        FileManager.default.fileExists(atPath: root.appendingPathComponent(relative).path, isDirectory: &isDirectory)
        if !isDirectory.boolValue { out[relative] = try Data(contentsOf: root.appendingPathComponent(relative)) }
    }
    return out
}

/// The value of a row of the run summary table.
func tableValue(_ output: String, _ label: String) -> String? {
    output.split(separator: "\n").first { $0.hasPrefix(label + " ") }.map { String($0.dropFirst(label.count).trimmingCharacters(in: .whitespaces)) }
}

func sha256Hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined() }
