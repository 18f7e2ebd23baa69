import Foundation
import MarketStoreDirectory
import TestSupport
import XCTest
@testable import Follow
@testable import ImportPipeline
@testable import JobMetrics
@testable import JobModel
@testable import JobState

/// The tool's word is true (issue 22): each test runs the binary as a user would, in a folder
/// holding a copy of jobs/demo.yml pointed at a copy of the samples' mirror and at ./db, and
/// asserts the exit code and the message.
extension ImportJobTests {
    /// The demo job in `work`, reading a copy of samples/mirror and writing ./db; `edit` changes
    /// its text. Returns the job file's name (commands run in `work`).
    @discardableResult
    func demoJob(_ name: String = "demo", _ edit: (String) -> String = { $0 }) throws -> String {
        let mirror = work.appendingPathComponent("mirror")
        if !FileManager.default.fileExists(atPath: mirror.path) {
            try FileManager.default.copyItem(at: ServerProcess.repoRoot.appendingPathComponent("samples/mirror"), to: mirror)
        }
        var text = try String(contentsOf: ServerProcess.repoRoot.appendingPathComponent("jobs/demo.yml"), encoding: .utf8)
        text = text.replacingOccurrences(of: "samples/mirror", with: "mirror").replacingOccurrences(of: "data/mktsdb", with: "db")
        try edit(text).write(to: work.appendingPathComponent("\(name).yml"), atomically: true, encoding: .utf8)
        return "\(name).yml"
    }

    func demo(_ args: [String]) throws -> (status: Int32, output: String) { try importer(args, today: "2024-06-01") }

    func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: work.appendingPathComponent(path).path) }

    /// 1. A run into another target or with another schema than the state records is refused
    /// before any work (it said "skipped (already done) 4" and left ./db2 empty); --force
    /// re-imports there and binds the state to it; a forced re-import that the target refuses
    /// leaves the done units done.
    func testTheStateIsBoundToItsTargetAndSchema() throws {
        let job = try demoJob()
        XCTAssertEqual(try demo(["run", job]).status, 0)
        let db = work.appendingPathComponent("db").standardized.path
        let other = try demo(["run", job, "--target", "./db2"])
        XCTAssertEqual(other.status, 2, other.output)
        XCTAssertTrue(other.output.contains("this state records units done in target \(db)"), other.output)
        XCTAssertTrue(other.output.contains("--force") && other.output.contains("another manifest:"), other.output)
        XCTAssertFalse(other.output.contains("skipped"), other.output)
        XCTAssertFalse(exists("db2"), "nothing was done")
        let server = try demo(["run", job, "--target", "http://127.0.0.1:1/rpc"])
        XCTAssertEqual(server.status, 2, server.output)
        let dry = try demo(["run", job, "--dry-run", "--target", "./db2"])
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains("target \(work.appendingPathComponent("db2").standardized.path)") && dry.output.contains("a run needs --force"), dry.output)

        let forced = try demo(["run", job, "--target", "./db2", "--force"])
        XCTAssertEqual(forced.status, 0, forced.output)
        XCTAssertEqual(try DirectoryReader(root: work.appendingPathComponent("db2").path).read(key: "BTCUSDT/1H/OHLCV")?.columns[0].count, 744 + 696)
        let again = try demo(["run", job, "--target", "./db2"])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(tableValue(again.output, "skipped (already done)"), "4", again.output)
        XCTAssertEqual(try demo(["run", job]).status, 2, "the state now speaks of ./db2")

        // Another schema: refused; forced into a target whose buckets hold float32, every write is
        // refused and the done units stay done.
        let wide = try demoJob("wide") { $0.replacingOccurrences(of: "dtype: float32", with: "dtype: float64") }
        let schema = try demo(["run", wide, "--target", "./db2"])
        XCTAssertEqual(schema.status, 2, schema.output)
        XCTAssertTrue(schema.output.contains("float32") && schema.output.contains("float64"), schema.output)
        let refused = try demo(["run", wide, "--target", "./db2", "--force"])
        XCTAssertNotEqual(refused.status, 0, refused.output)
        let m = try Manifest.load(path: work.appendingPathComponent("state/demo.manifest.db").path, job: "demo")
        XCTAssertEqual(m.units.values.filter { $0.status == .done }.count, 4, "\(m.units.values.map { "\($0.id) \($0.status)" })")
        XCTAssertEqual(try demo(["run", job, "--target", "./db2"]).status, 0, "still bound to ./db2 and float32")
    }

    /// 2. A --target that is neither an http(s) URL nor a directory is refused (it made folders
    /// `./127.0.0.1:5993/` and `./ftp:/x/`).
    func testATargetThatIsNeitherAURLNorADirectoryIsRefused() throws {
        let job = try demoJob()
        for (target, says) in [("127.0.0.1:5993", "looks like host:port; a MarketStore target is a URL: http://127.0.0.1:5993/rpc"),
                               ("ftp://x", "ftp:// is not a target")] {
            let r = try demo(["run", job, "--target", target])
            XCTAssertEqual(r.status, 2, r.output)
            XCTAssertTrue(r.output.contains(says), r.output)
        }
        XCTAssertFalse(exists("127.0.0.1:5993"))
        XCTAssertFalse(exists("ftp:"))
    }

    /// 3. `show` says what is not there (it printed "no rows", exit 0, for a wrong key, a missing
    /// directory and a file); a day as `--to` takes the whole day.
    func testShowSaysWhatIsNotThere() throws {
        let job = try demoJob()
        XCTAssertEqual(try demo(["run", job]).status, 0)
        let wrong = try demo(["show", "btcusdt/1h/ohlcv", "--target", "db"])
        XCTAssertEqual(wrong.status, 1, wrong.output)
        XCTAssertTrue(wrong.output.contains("no key btcusdt/1h/ohlcv in db (keys there: BTCUSDT/1H/OHLCV, ETHUSDT/1H/OHLCV)"), wrong.output)
        let timeframe = try demo(["show", "BTCUSDT/1Min/OHLCV", "--target", "db"])
        XCTAssertEqual(timeframe.status, 1, timeframe.output)
        let missing = try demo(["show", "BTCUSDT/1H/OHLCV", "--target", "nodir"])
        XCTAssertEqual(missing.status, 2, missing.output)
        XCTAssertTrue(missing.output.contains("no directory nodir"), missing.output)
        let file = try demo(["show", "BTCUSDT/1H/OHLCV", "--target", job])
        XCTAssertEqual(file.status, 2, file.output)
        XCTAssertTrue(file.output.contains("is a file, not a data directory"), file.output)
        let day = try demo(["show", "BTCUSDT/1H/OHLCV", "--target", "db", "--to", "2024-01-01", "--limit", "1"])
        XCTAssertEqual(day.status, 0, day.output)
        XCTAssertTrue(day.output.contains("2024-01-01T23:00:00Z"), "the last hour of the day: \(day.output)")
    }

    /// 4. `verify` and `status` claim only what they checked: nothing done is not "all match";
    /// status plans the job (symbols not yet discovered are pending) unless --offline; shard
    /// state files are mentioned; a one-off symbol outside the job is listed apart, does not fail
    /// status, and `forget` drops it.
    func testVerifyAndStatusClaimOnlyWhatTheyChecked() throws {
        let typo = try demoJob("typo") { $0.replacingOccurrences(of: "symbols: [BTCUSDT, ETHUSDT]", with: "symbols: [BTCUSDX]") }
        XCTAssertEqual(try demo(["run", typo]).status, 1)
        let verify = try demo(["verify", typo])
        XCTAssertEqual(verify.status, 1, verify.output)
        XCTAssertTrue(verify.output.contains("nothing to verify: no unit is done (2 failed, 0 pending)"), verify.output)
        XCTAssertFalse(verify.output.contains("all match"), verify.output)

        let discover = try demoJob("discover") { $0.replacingOccurrences(of: "symbols: [BTCUSDT, ETHUSDT]", with: "discover: {quote: USDT}") }
        XCTAssertEqual(try demo(["run", discover, "--symbols", "BTCUSDT"]).status, 0)
        let planned = try demo(["status", discover, "--json"])
        XCTAssertEqual(planned.status, 0, planned.output)
        let counts = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(planned.output.utf8)) as? [String: Any])?["counts"] as? [String: Int])
        XCTAssertEqual(counts["done"], 2)
        XCTAssertEqual(counts["pending"], 2, "ETHUSDT's two months, not run yet: \(planned.output)")
        let offline = try demo(["status", discover, "--json", "--offline"])
        XCTAssertEqual(((try JSONSerialization.jsonObject(with: Data(offline.output.utf8)) as? [String: Any])?["counts"] as? [String: Int])?["pending"], 0)

        let job = try demoJob()
        XCTAssertEqual(try demo(["run", job, "--shard", "0/2"]).status, 0)
        let shards = try demo(["status", job])
        XCTAssertTrue(shards.output.contains("shard state files") && shards.output.contains("--shards N"), shards.output)

        XCTAssertEqual(try demo(["run", job]).status, 0)
        XCTAssertEqual(try demo(["run", job, "--symbols", "XRPUSDT"]).status, 1, "a one-off symbol with no archive")
        let status = try demo(["status", job])
        XCTAssertEqual(status.status, 0, status.output)
        XCTAssertTrue(status.output.contains("keys outside the job") && status.output.contains("XRPUSDT/1H/OHLCV"), status.output)
        let dryForget = try demo(["forget", job, "--symbols", "XRPUSDT", "--dry-run"])
        XCTAssertEqual(dryForget.status, 0, dryForget.output)
        XCTAssertTrue(dryForget.output.contains("would drop 2 units of XRPUSDT"), dryForget.output)
        XCTAssertEqual(try demo(["forget", job, "--symbols", "XRPUSDT"]).status, 0)
        let after = try demo(["status", job])
        XCTAssertFalse(after.output.contains("XRPUSDT"), after.output)
    }

    /// 5. Exit codes as the README says: a MarketStore that does not answer is 3 for `show` and
    /// `verify` too (they exited 1).
    func testAnUnreachableServerIsExit3ForEveryCommand() throws {
        let job = try demoJob("server") { $0.replacingOccurrences(of: "directory: db", with: "marketstore: http://127.0.0.1:1/rpc") }
        for args in [["show", "BTCUSDT/1H/OHLCV", "--target", "http://127.0.0.1:1/rpc"], ["run", job]] {
            let r = try demo(args)
            XCTAssertEqual(r.status, 3, "\(args): \(r.output)")
            XCTAssertTrue(r.output.contains("unreachable"), r.output)
        }
        let done = try demoJob()
        XCTAssertEqual(try demo(["run", done]).status, 0)
        let verify = try demo(["verify", done, "--target", "http://127.0.0.1:1/rpc"])
        XCTAssertEqual(verify.status, 3, verify.output)
    }

    /// 6. Machine-readable failure: where stdout is JSON, a fatal error is a JSON object there
    /// (nightly printed nothing on stdout); status --json has every count; no escaped slashes.
    func testFatalErrorsAreJSONWhereTheOutputIsJSON() throws {
        let job = try demoJob()
        let env = ProcessInfo.processInfo.environment.merging(["BINANCE_IMPORT_TODAY": "2024-06-01"]) { $1 }
        for args in [["nightly", job, "--target", "http://127.0.0.1:1/rpc"], ["run", job, "--log-format", "json", "--target", "http://127.0.0.1:1/rpc"]] {
            let r = try runSplit(ImportJobTests.binary, args, directory: work, environment: env)
            XCTAssertEqual(r.status, 3, r.stderr)
            let object = try XCTUnwrap(try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "stdout: \(r.stdout)")
            XCTAssertEqual(object["exit_code"] as? Int, 3)
            XCTAssertTrue((object["error"] as? String)?.contains("unreachable") == true, r.stdout)
            XCTAssertFalse(r.stdout.contains("\\/"), r.stdout)
        }
        let status = try runSplit(ImportJobTests.binary, ["status", job, "--json"], directory: work, environment: env)
        let counts = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["counts"] as? [String: Int])
        XCTAssertEqual(counts, ["done": 0, "pending": 4, "failed": 0, "not_published": 0, "superseded": 0], status.stdout)
    }

    /// 7. Messages that point the way.
    func testJobFileMistakesGetMessagesThatPointTheWay() throws {
        try "x".write(to: work.appendingPathComponent("afile"), atomically: true, encoding: .utf8)
        let cases: [(String, (String) -> String, String)] = [
            ("tab", { $0.replacingOccurrences(of: "  base_url:", with: "\tbase_url:") }, "YAML does not allow tabs for indentation"),
            ("day", { $0.replacingOccurrences(of: "from: 2024-01", with: "from: 2024-01-15") }, "key 'from': must be a month YYYY-MM, not the day 2024-01-15"),
            ("upper", { $0.replacingOccurrences(of: "[1h]", with: "[1H]") }, "unknown interval 1H (valid: 1s, 1m, 3m, 5m, 15m, 30m, 1h,"),
            ("minutes", { $0.replacingOccurrences(of: "[1h]", with: "[60m]") }, "did you mean 1h?"),
            ("nested", { $0.replacingOccurrences(of: "symbols: [BTCUSDT, ETHUSDT]", with: "symbols: {discover: {quote: USDT}}") }, "discover: is a top-level key"),
            ("typo", { $0.replacingOccurrences(of: "intervals:", with: "intervalz:") }, "did you mean intervals?"),
            ("file", { $0.replacingOccurrences(of: "directory: db", with: "directory: afile") }, "target afile is a file, not a directory"),
        ]
        for (name, edit, says) in cases {
            let r = try demo(["run", try demoJob(name, edit)])
            XCTAssertEqual(r.status, 2, "\(name): \(r.output)")
            XCTAssertTrue(r.output.contains(says), "\(name): \(r.output)")
        }
        let missing = try demo(["run", "nofile.yml"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.output.contains("cannot read the job file: no such file"), missing.output)
        let folder = try demo(["run", "mirror"])
        XCTAssertTrue(folder.output.contains("cannot read the job file: it is a directory"), folder.output)
        let version = try demo(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.output.split(separator: "\n").first.map { $0.split(separator: ".").count == 3 } == true, version.output)
    }
}

/// A command's exit status, standard output and standard error apart.
func runSplit(_ executable: String, _ arguments: [String], directory: URL, environment: [String: String]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = directory
    process.environment = environment
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile(), stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
}

extension ImportJobTests {
    /// `status --shards N` past the shards a job can have is a usage error, not a crash.
    func testStatusWithTooManyShardsIsAUsageError() throws {
        let path = try job("shardcount", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        for n in ["20000", "0"] {
            let r = try importer(["status", path, "--shards", n, "--offline"], today: "2024-06-01")
            XCTAssertEqual(r.status, 2, "\(n): \(r.output)")
            XCTAssertTrue(r.output.contains("--shards N (1 to 10000)"), r.output)
        }
    }
}

extension ImportJobTests {
    /// The smaller findings of issue 32's trial, each as a user meets it.
    func testTheWordsOfSmallerFindings() async throws {
        let job = try demoJob()
        // A --target that is a file is the command line's mistake, not the job file's.
        try "x".write(to: work.appendingPathComponent("afile"), atomically: true, encoding: .utf8)
        let file = try demo(["run", job, "--target", "./afile", "--force"])
        XCTAssertEqual(file.status, 2, file.output)
        XCTAssertTrue(file.output.contains("command line: key '--target': target ./afile is a file"), file.output)
        XCTAssertFalse(file.output.contains("target.directory"), file.output)
        // An unreachable server is said so once.
        let down = try demo(["run", job, "--target", "http://127.0.0.1:9/rpc", "--force"])
        XCTAssertEqual(down.status, 3, down.output)
        XCTAssertTrue(down.output.contains("is unreachable"), down.output)
        XCTAssertFalse(down.output.contains("unreachable: MarketStore unreachable"), down.output)
        // An unknown symbol's units are units of the run too: failed ones are among them.
        let unknown = try demo(["run", job, "--symbols", "BTCUSDT,NOPEUSDT", "--log-format", "json"])
        XCTAssertEqual(unknown.status, 1, unknown.output)
        let summary = nightlySummary(unknown.output)
        let (units, failed) = (summary["units"] as? Int ?? -1, summary["failed"] as? Int ?? -1)
        XCTAssertEqual(failed, 2, unknown.output)
        XCTAssertGreaterThanOrEqual(units, 2 + failed, "units counts the failed ones: \(unknown.output)")
        // forget of a symbol the job still names: done, with a warning that a run brings it back.
        let forget = try demo(["forget", job, "--symbols", "BTCUSDT"])
        XCTAssertEqual(forget.status, 0, forget.output)
        XCTAssertTrue(forget.output.contains("BTCUSDT is still in the job"), forget.output)
        // The help says what the tool loads.
        let help = try demo(["--help"])
        XCTAssertFalse(help.output.contains("kline archives into"), help.output)
        XCTAssertTrue(help.output.contains("funding"), help.output)
    }

    /// A directory a running server holds: the refusal names the flag that overrides it.
    func testTheInUseRefusalNamesTheFlag() throws {
        let db = work.appendingPathComponent("held")
        try FileManager.default.createDirectory(at: db, withIntermediateDirectories: true)
        let wal = db.appendingPathComponent("WALFile.1.walfile")
        try Data([0]).write(to: wal)
        let job = try demoJob("held") { $0.replacingOccurrences(of: "directory: db", with: "directory: held") }
        let run = try demo(["run", job])
        XCTAssertEqual(run.status, 3, run.output)
        XCTAssertTrue(run.output.contains("--force-directory"), run.output)
    }
}
