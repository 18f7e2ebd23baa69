import Foundation
import KlineArchive
import MarketStore
import TestSupport
import XCTest
@testable import Follow
@testable import ImportPipeline
@testable import JobMetrics
@testable import JobModel
@testable import JobState

/// A remote MarketStore as users deploy it (issue 23): behind nginx with TLS (a private CA) and
/// basic auth; a server that accepts connections and never answers; a slow link.
extension ImportJobTests {
    /// A test server script that must start under CI, and is skipped elsewhere when it cannot.
    func startServer(_ script: String, _ arguments: [String]) throws -> ServerProcess {
        try ServerProcess.required(script: script, arguments: arguments)
    }

    /// Runs the binary in `work`; sends SIGTERM after `signalAfter` seconds when given, and kills
    /// it after `deadline`. Returns its status, output, seconds in all and from the signal on.
    func runTimed(_ args: [String], environment extra: [String: String] = [:], signalAfter: Double? = nil,
                  deadline: Double) throws -> (status: Int32, output: String, seconds: Double, afterSignal: Double?) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = args
        process.currentDirectoryURL = work
        process.environment = ProcessInfo.processInfo.environment.merging(["BINANCE_IMPORT_TODAY": "2024-06-01"].merging(extra) { $1 }) { $1 }
        let log = work.appendingPathComponent("timed-\(UUID().uuidString.prefix(6)).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        let start = Date()
        try process.run()
        var signalled: Date?
        while process.isRunning {
            let elapsed = Date().timeIntervalSince(start)
            if let after = signalAfter, signalled == nil, elapsed >= after {
                kill(process.processIdentifier, SIGTERM)
                signalled = Date()
            }
            if elapsed > deadline {
                kill(process.processIdentifier, SIGKILL)
                break
            }
            usleep(20_000)
        }
        while process.isRunning { usleep(10_000) }
        try handle.close()
        let end = Date()
        return (process.terminationStatus, try String(contentsOf: log, encoding: .utf8), end.timeIntervalSince(start), signalled.map { end.timeIntervalSince($0) })
    }

    func testATLSProxyWithBasicAuthLandsEveryRowAndNeverPrintsThePassword() async throws {
        let secret = "Pw9-s3cret-ingest"
        try generate("spot", "BTCUSDT", "1h", "2024-01")
        let dir = work.appendingPathComponent("tls")
        let proxy = try startServer("Tests/servers/tls_proxy.py", ["--upstream", "\(marketstore.port)", "--dir", dir.path, "--password", secret])
        defer { proxy.stop() }
        let ca = dir.appendingPathComponent("ca.pem").path
        let url = "https://ingest:\(secret)@127.0.0.1:\(proxy.port)/rpc"
        let plain = try job("tls", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        let path = try variant(of: plain, "tls-ca", replacing: "marketstore: \(marketstore.url)", with: "marketstore: \(url)\n  ca_file: \(ca)")
        var outputs: [String] = []
        func check(_ args: [String], _ status: Int32, environment: [String: String] = [:], says: String? = nil, file: StaticString = #filePath, line: UInt = #line) throws {
            let r = try runTimed(args, environment: environment, deadline: 60)
            outputs.append(r.output)
            XCTAssertEqual(r.status, status, "\(args): \(r.output)", file: file, line: line)
            if let says { XCTAssertTrue(r.output.contains(says), "\(args): \(r.output)", file: file, line: line) }
        }
        let metrics = work.appendingPathComponent("metrics.prom").path
        try check(["run", path, "--metrics-file", metrics], 0)
        try await assertTargetHolds("BTCUSDT", "1H", try expected(archivePaths("BTCUSDT", "1h", months: ["2024-01"])))
        try check(["verify", path], 0, says: "all match")
        try check(["status", path, "--json"], 0)

        // A wrong password: one line that says so, exit 3, no HTML page.
        let wrong = try variant(of: path, "tls-wrong", replacing: "ingest:\(secret)@", with: "ingest:Xw7-not-it@")
        try check(["run", wrong, "--force"], 3, says: "MarketStore (or the proxy in front of it) refused the credentials: HTTP 401")
        XCTAssertFalse(outputs.last!.contains("<html"), outputs.last!)
        try check(["nightly", wrong, "--log-format", "json"], 3, says: "refused the credentials")

        // The credentials from MARKETSTORE_URL (the job names no target), or from a netrc file.
        let fromEnvironment = try variant(of: plain, "tls-env", replacing: "marketstore: \(marketstore.url)", with: "ca_file: \(ca)")
        try check(["run", fromEnvironment, "--force"], 0, environment: ["MARKETSTORE_URL": url])
        let netrc = work.appendingPathComponent("netrc")
        try "machine 127.0.0.1 login ingest password \(secret)\n".write(to: netrc, atomically: true, encoding: .utf8)
        let fromNetrc = try variant(of: plain, "tls-netrc", replacing: "marketstore: \(marketstore.url)", with: "marketstore: https://127.0.0.1:\(proxy.port)/rpc")
        try check(["run", fromNetrc, "--force"], 0, environment: ["NETRC": netrc.path, "CURL_CA_BUNDLE": ca])
        try check(["run", fromNetrc, "--force"], 3, environment: ["CURL_CA_BUNDLE": ca, "NETRC": "/nonexistent"], says: "refused the credentials: HTTP 401")
        // Without the CA the certificate is refused, clearly.
        try check(["run", fromNetrc, "--force"], 3, environment: ["NETRC": netrc.path], says: "curl error 60")

        // The server down: the unreachable message names the URL without its password.
        proxy.stop()
        try check(["run", path, "--force", "--log-format", "json"], 3, says: "https://***@127.0.0.1:\(proxy.port)/rpc is unreachable")

        // The password is nowhere: not in any output, report, metrics file or state row.
        for (i, output) in outputs.enumerated() { XCTAssertFalse(output.contains(secret), "output \(i): \(output)") }
        let state = work.appendingPathComponent("state")
        for name in try FileManager.default.contentsOfDirectory(atPath: state.path) + ["../metrics.prom"] {
            let data = try Data(contentsOf: state.appendingPathComponent(name))
            XCTAssertNil(data.range(of: Data(secret.utf8)), "the password is in \(name)")
        }
    }

    /// A server that accepts and never answers is found within the stall window
    /// (`target.stall_seconds`, 3 s here), not the write's 300 s.
    func testAHungServerIsFoundInSecondsAndSIGTERMEndsTheRunWithItsSummary() throws {
        try generate("spot", "BTCUSDT", "1h", "2024-01")
        let silent = try startServer("Tests/servers/silent_server.py", [])
        defer { silent.stop() }
        let plain = try job("hung", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        let path = try variant(of: plain, "hung", replacing: "marketstore: \(marketstore.url)", with: "marketstore: \(silent.url)\n  stall_seconds: 3")
        let found = try runTimed(["run", path], deadline: 60)
        XCTAssertEqual(found.status, 3, found.output)
        XCTAssertLessThan(found.seconds, 20, found.output)
        XCTAssertTrue(found.output.contains("stopped sending and receiving"), found.output)

        let stopped = try runTimed(["run", path], signalAfter: 2, deadline: 60)
        XCTAssertEqual(stopped.status, 143, stopped.output)
        XCTAssertLessThan(stopped.afterSignal ?? 99, 10, stopped.output)
        XCTAssertTrue(stopped.output.contains("re-run the same command to resume"), stopped.output)
        XCTAssertNotNil(tableValue(stopped.output, "units"), "the summary: \(stopped.output)")
    }

    /// A Write of about 120 kB through a link of 20 kB/s: 6 s of a transfer that never stalls
    /// for long, longer than the stall window (`target.stall_seconds`, 3 s here), still succeeds.
    func testASlowButMovingWriteSucceeds() async throws {
        try generate("spot", "SLOWUSDT", "30m", "2024-01")
        let link = try startServer("Tests/servers/latency_proxy.py", ["--upstream", "\(marketstore.port)", "--rate", "20000"])
        defer { link.stop() }
        let plain = try job("slow", symbols: ["SLOWUSDT"], intervals: ["30m"], from: "2024-01", to: "2024-01",
                            columns: "[Open, High, Low, Close, Volume, QuoteVolume, Trades, TakerBuyBaseVolume, TakerBuyQuoteVolume]", dtype: "float64")
        let path = try variant(of: plain, "slow", replacing: "marketstore: \(marketstore.url)", with: "marketstore: http://127.0.0.1:\(link.port)/rpc\n  stall_seconds: 3")
        let r = try runTimed(["run", path], deadline: 120)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertGreaterThan(r.seconds, 3, "the write took longer than the stall window")
        let s = try await marketstore.stats()
        XCTAssertGreaterThanOrEqual(s["write_calls"] as? Int ?? 0, 1)
    }
}

extension ImportJobTests {
    /// SIGTERM while a write hangs (the server sleeps a minute before it answers): the stop
    /// cancels the write's task, which ends its transfer; the run returns with its summary and
    /// 143 within 10 s by cancellation (no timer ends the process); nothing is recorded done that was not acknowledged,
    /// and the re-run completes.
    func testSIGTERMDuringAHungWriteEndsTheRunByCancellation() async throws {
        for month in ["2024-01", "2024-02"] { try generate("spot", "BTCUSDT", "1h", month) }
        let path = try job("hungwrite", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-02")
        try await marketstore.control(["delay_write": 1, "delay": 60])
        let stopped = try runTimed(["run", path], signalAfter: 2, deadline: 60)
        XCTAssertEqual(stopped.status, 143, stopped.output)
        XCTAssertLessThan(stopped.afterSignal ?? 99, 10, stopped.output)
        XCTAssertTrue(stopped.output.contains("re-run the same command to resume"), stopped.output)
        XCTAssertNotNil(tableValue(stopped.output, "units"), "the summary: \(stopped.output)")
        let m = try manifest("hungwrite")
        XCTAssertTrue(m.units.values.allSatisfy { $0.status != .done }, "the hung write was not acknowledged: \(m.units.values.map { "\($0.id) \($0.status)" })")

        let again = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(again.status, 0, again.output)
        let verify = try importer(["verify", path], today: "2024-06-01")
        XCTAssertEqual(verify.status, 0, verify.output)
    }
}
