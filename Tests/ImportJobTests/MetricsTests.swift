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

    /// NaN and the infinities in Go's spelling (Swift's "nan"/"inf" are refused), label values
    /// with a backslash, a quote and a newline.
    func testMetricsTextIsReadByPrometheusParser() throws {
        var m = MetricsText()
        m.add("t_values", "gauge", "Edge values.", [
            ([("v", "nan")], .nan), ([("v", "inf")], .infinity), ([("v", "-inf")], -.infinity),
            ([("v", "half")], 0.5), ([("v", "big")], 1e20), ([("v", "int")], 42),
            ([("v", #"a\b"c"# + "\nd")], 7),
        ])
        // The format's spellings (Python's parser would also take Swift's "nan"/"inf").
        for line in [#"t_values{v="nan"} NaN"#, #"t_values{v="inf"} +Inf"#, #"t_values{v="-inf"} -Inf"#, #"t_values{v="a\\b\"c\nd"} 7"#] {
            XCTAssertTrue(m.text.contains(line + "\n"), "\(line) in \(m.text)")
        }
        let parsed = try parseMetricsText(m.text)
        XCTAssertEqual(parsed.count, 7, "\(parsed)")
        XCTAssertTrue(parsed[#"t_values{"v": "nan"}"#]?.isNaN == true, "\(parsed)")
        XCTAssertEqual(parsed[#"t_values{"v": "inf"}"#], .infinity)
        XCTAssertEqual(parsed[#"t_values{"v": "-inf"}"#], -.infinity)
        XCTAssertEqual(parsed[#"t_values{"v": "half"}"#], 0.5)
        XCTAssertEqual(parsed[#"t_values{"v": "big"}"#], 1e20)
        XCTAssertEqual(parsed[#"t_values{"v": "int"}"#], 42)
        XCTAssertEqual(parsed[#"t_values{"v": "a\\b\"c\nd"}"#], 7, "\(parsed.keys)")
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
