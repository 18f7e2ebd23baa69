import Foundation
import Logging
import XCTest

@testable import Follow
@testable import ImportPipeline
@testable import JobMetrics
@testable import JobModel
@testable import JobState

/// The metrics exposition, read back by Prometheus' own parser, and the server of /metrics.
extension ImportJobTests {
    func parseMetricsText(_ text: String) throws -> [String: Double] {
        let file = work.appendingPathComponent("metrics-\(UUID().uuidString.prefix(6)).prom")
        try text.write(to: file, atomically: true, encoding: .utf8)
        return try parseMetrics(file.path)
    }

    /// The exposition (swift-prometheus' registry) read back by Prometheus' own parser: NaN and
    /// the infinities (Swift's spellings, which Go's ParseFloat and Python both read), label
    /// values with a backslash, a quote and a newline, the HELP and TYPE lines.
    func testExpositionIsReadByPrometheusParser() throws {
        let m = Exposition(job: "edge")
        let values: [(String, Double)] = [("nan", .nan), ("inf", .infinity), ("-inf", -.infinity), ("half", 0.5), ("big", 1e20), ("int", 42),
                                          (#"a\b"c"# + "\nd", 7)]
        for (label, value) in values { m.gauge("t_values", "Edge values.", [("v", label)]).set(value) }
        m.counter("t_events_total", "Events.").increment(by: Int64(3))
        m.counter("t_events_total", "Events.").increment()
        for line in ["# HELP t_values Edge values.", "# TYPE t_values gauge", "# HELP t_events_total Events.", "# TYPE t_events_total counter",
                     #"t_values{job="edge",v="a\\b\"c\nd"} 7.0"#] {
            XCTAssertTrue(m.text.contains(line + "\n"), "\(line) in \(m.text)")
        }
        let parsed = try parseMetricsText(m.text)
        XCTAssertEqual(parsed.count, 8, "\(parsed)")
        XCTAssertTrue(parsed[#"t_values{"job": "edge", "v": "nan"}"#]?.isNaN == true, "\(parsed)")
        XCTAssertEqual(parsed[#"t_values{"job": "edge", "v": "inf"}"#], .infinity)
        XCTAssertEqual(parsed[#"t_values{"job": "edge", "v": "-inf"}"#], -.infinity)
        XCTAssertEqual(parsed[#"t_values{"job": "edge", "v": "half"}"#], 0.5)
        XCTAssertEqual(parsed[#"t_values{"job": "edge", "v": "big"}"#], 1e20)
        XCTAssertEqual(parsed[#"t_values{"job": "edge", "v": "int"}"#], 42)
        XCTAssertEqual(parsed[#"t_values{"job": "edge", "v": "a\\b\"c\nd"}"#], 7, "\(parsed.keys)")
        XCTAssertEqual(parsed[#"t_events_total{"job": "edge"}"#], 4)
    }

    /// Follow's write counters grow by what the writer counted since the last sync (a counter
    /// never goes back), and the lag histogram counts every kline in its bucket.
    func testFollowMetricsGrowWithTheWritersCounts() async throws {
        let follow = FollowMetrics(job: "grow", connections: ["ws://a"])
        var counters = WriteCounters()
        counters.acknowledged([("K/1Min/OHLCV", 10)], at: 100)
        await follow.sync(counters)
        counters.acknowledged([("K/1Min/OHLCV", 5), ("L/1Min/OHLCV", 2)], at: 160)
        await follow.sync(counters)
        await follow.sync(counters)
        await follow.written(lags: [0.04, 0.3, 0.3, 40])
        await follow.connection("ws://a", up: true)
        await follow.gapFilled(restWeight: 4)
        await follow.gapFilled(restWeight: 10)
        let parsed = try parseMetricsText(await follow.text())
        let job = #""job": "grow""#
        XCTAssertEqual(parsed["binance_import_rows_written_total{\(job)}"], 17)
        XCTAssertEqual(parsed[#"binance_import_rows_written_total{"job": "grow", "key": "K/1Min/OHLCV"}"#], 15)
        XCTAssertEqual(parsed[#"binance_import_rows_written_total{"job": "grow", "key": "L/1Min/OHLCV"}"#], 2)
        XCTAssertEqual(parsed[#"binance_import_write_requests_total{"job": "grow", "key": "K/1Min/OHLCV"}"#], 2)
        XCTAssertEqual(parsed[#"binance_import_last_write_timestamp_seconds{"job": "grow", "key": "L/1Min/OHLCV"}"#], 160)
        XCTAssertEqual(parsed["binance_import_rest_weight_used_total{\(job)}"], 10)
        XCTAssertEqual(parsed["binance_import_gap_fills_total{\(job)}"], 2)
        XCTAssertEqual(parsed["binance_import_streams_connected{\(job)}"], 1)
        XCTAssertEqual(parsed["binance_import_write_lag_seconds_count{\(job)}"], 4)
        XCTAssertEqual(lagBucket(parsed, job: "grow", le: 0.05), 1)
        XCTAssertEqual(lagBucket(parsed, job: "grow", le: 0.5), 3)
        XCTAssertEqual(lagBucket(parsed, job: "grow", le: 30), 3)
        XCTAssertEqual(parsed[#"binance_import_write_lag_seconds_bucket{"job": "grow", "le": "+Inf"}"#], 4)
    }

    /// A lag histogram bucket of `job` by its bound, however the bound is spelled.
    func lagBucket(_ samples: [String: Double], job: String, le bound: Double) -> Double? {
        let prefix = "binance_import_write_lag_seconds_bucket" + #"{"job": "\#(job)", "le": ""#
        return samples.first { $0.key.hasPrefix(prefix) && Double($0.key.dropFirst(prefix.count).dropLast(2)) == bound }?.value
    }

    /// `run`'s metrics file and `follow`'s /metrics list the same error kinds, every one, and
    /// follow shows the writer's counts as the writer counted them.
    func testRunAndFollowExposeEveryWriteErrorKind() async throws {
        var summary = RunSummary(job: "kinds", startedAt: "2026-11-29T00:00:00Z")
        summary.writeErrors = ["directory": 2, "transport": 1]
        let follow = FollowMetrics(job: "kinds", connections: [])
        var counters = WriteCounters()
        counters.errorsByKind = [.directory: 2, .transport: 1]
        await follow.sync(counters)
        counters.errorsByKind[.transport] = 3
        await follow.sync(counters)
        let fromRun = try parseMetricsText(summary.metrics())
        let fromFollow = try parseMetricsText(await follow.text())
        for kind in ["schema", "timeframe", "refused", "directory", "transport"] {
            let name = "binance_import_write_errors_total" + #"{"job": "kinds", "kind": "\#(kind)"}"#
            XCTAssertNotNil(fromRun[name], "run: \(kind)")
            XCTAssertNotNil(fromFollow[name], "follow: \(kind)")
        }
        XCTAssertEqual(fromRun["binance_import_write_errors_total" + #"{"job": "kinds", "kind": "directory"}"#], 2)
        XCTAssertEqual(fromFollow["binance_import_write_errors_total" + #"{"job": "kinds", "kind": "directory"}"#], 2)
        XCTAssertEqual(fromFollow["binance_import_write_errors_total" + #"{"job": "kinds", "kind": "transport"}"#], 3)
    }

    /// GET and HEAD are answered, other methods get 405 with Allow; a client that connects and
    /// sends nothing is disconnected after the idle timeout.
    func testMetricsServerAnswersGETOnlyAndClosesIdleConnections() async throws {
        let server = try await MetricsServer.start(host: "127.0.0.1", port: 0, idleTimeout: .seconds(1), logger: Logger(label: "test")) { path in
            (200, "text/plain", "path \(path)\n")
        }
        defer { server.serving.cancel() }
        let probe = try run("/usr/bin/env", ["python3", "-c", """
            import http.client, socket, sys, time
            port = int(sys.argv[1])
            for method in ["GET", "HEAD", "POST", "PUT", "DELETE"]:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request(method, "/metrics?x=1", body=b"x" if method in ("POST", "PUT") else None)
                r = c.getresponse()
                print(" ".join([method, str(r.status), str(r.getheader("Allow")), r.read().decode()]).strip())
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            start = time.time()
            data = s.recv(1)
            print("idle closed", data == b"", round(time.time() - start) <= 5)
            """, String(server.port)])
        XCTAssertEqual(probe.status, 0, probe.output)
        XCTAssertEqual(probe.output.split(separator: "\n").map(String.init), [
            "GET 200 None path /metrics", "HEAD 200 None", "POST 405 GET, HEAD method not allowed: GET or HEAD",
            "PUT 405 GET, HEAD method not allowed: GET or HEAD", "DELETE 405 GET, HEAD method not allowed: GET or HEAD",
            "idle closed True True",
        ])
    }
}

extension ImportJobTests {
    /// A report JSON cannot hold is an error, not an empty file.
    func testReportThatCannotBeEncodedThrows() throws {
        var summary = RunSummary(job: "nan", startedAt: "2026-11-29T00:00:00Z")
        XCTAssertFalse(try summary.json().isEmpty)
        summary.rowsPerSecond = .nan
        XCTAssertThrowsError(try summary.json())
    }

    /// SQLite's own error for a state file it cannot read, not "state version unknown"; and a
    /// bind to a parameter the statement lacks is refused, not ignored.
    func testStateErrorsAreSQLitesOwn() throws {
        let path = work.appendingPathComponent("not-a-db.manifest.db").path
        try Data(repeating: 0x41, count: 4096).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try StateDatabase(path: path, create: false)) { error in
            XCTAssertTrue("\(error)".contains("file is not a database"), "\(error)")
        }
        let db = try SQLiteDatabase(path: work.appendingPathComponent("bind.db").path, mode: .readWriteCreate)
        try db.execute("CREATE TABLE t (a TEXT)")
        let insert = try db.prepare("INSERT INTO t (a) VALUES (?)")
        XCTAssertThrowsError(try insert.bind(2, "x")) { error in
            XCTAssertTrue("\(error)".contains("out of range"), "\(error)")
        }
    }
}
