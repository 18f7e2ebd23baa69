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

/// `follow` against the fixture's kline streams and REST (Tests/servers/rest_server.py --ws), on
/// a clock that runs fast, into the MarketStore test server.
extension ImportJobTests {
    final class FollowProcess {
        let process = Process()
        let log: URL

        init(binary: String, args: [String], directory: URL, environment: [String: String]) throws {
            log = directory.appendingPathComponent("follow-\(UUID().uuidString.prefix(6)).log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = args
            process.currentDirectoryURL = directory
            process.environment = environment
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
            try process.run()
        }

        var output: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

        /// The metrics port it logged, once it did.
        func metricsPort(timeout: Double = 60) throws -> Int {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if let r = output.range(of: "metrics on http://127.0.0.1:") {
                    return Int(output[r.upperBound...].prefix(while: \.isNumber))!
                }
                if !process.isRunning { break }
                Thread.sleep(forTimeInterval: 0.1)
            }
            // Not a skip: a follow that does not start is a regression, on CI or not.
            throw FollowDidNotStart(output: output)
        }

        /// SIGTERM, then the seconds until it exited (or nil after `limit`).
        func terminate(limit: Double = 15) -> Double? {
            let start = Date()
            kill(process.processIdentifier, SIGTERM)
            while process.isRunning && Date().timeIntervalSince(start) < limit { Thread.sleep(forTimeInterval: 0.05) }
            if process.isRunning { process.terminate(); return nil }
            return Date().timeIntervalSince(start)
        }

        var rssKB: Int? {
            guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
            return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
        }
    }

    struct FollowDidNotStart: Error, CustomStringConvertible {
        let output: String
        var description: String { "follow did not start: \(output)" }
    }

    func get(_ url: String) -> (status: Int, body: String) {
        let r = try? runCommand("/usr/bin/env", ["python3", "-c", """
            import sys, urllib.request, urllib.error
            try:
                r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status); print(r.read().decode())
            except urllib.error.HTTPError as e:
                print(e.code); print(e.read().decode())
            """, url])
        let lines = (r?.output ?? "").split(separator: "\n", maxSplits: 1).map(String.init)
        return (Int(lines.first ?? "") ?? 0, lines.count > 1 ? lines[1] : "")
    }

    func waitFor(_ what: String, timeout: Double, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return }
            Thread.sleep(forTimeInterval: 0.2)
        }
        XCTFail("timed out waiting for \(what)")
    }

    /// Prometheus' parser over /metrics: sample name + labels (JSON) -> value.
    func metrics(_ port: Int) throws -> [String: Double] { try parseMetrics("http://127.0.0.1:\(port)/metrics") }

    /// Prometheus' parser (prometheus_client) over the text at a URL or in a file: sample name +
    /// labels (JSON) -> value (passed as Python's repr, which spells nan and inf as Swift reads them).
    func parseMetrics(_ source: String) throws -> [String: Double] {
        let parsed = try run("/usr/bin/env", ["python3", "-c", """
            import json, sys, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            src = sys.argv[1]
            text = urllib.request.urlopen(src).read().decode() if src.startswith("http") else open(src).read()
            out = {}
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    out[s.name + json.dumps(s.labels, sort_keys=True)] = repr(float(s.value))
            print(json.dumps(out))
            """, source])
        XCTAssertEqual(parsed.status, 0, parsed.output)
        let values = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(parsed.output.utf8)) as? [String: String], parsed.output)
        return try values.mapValues { try XCTUnwrap(Double($0), $0) }
    }

    /// Three symbols followed live: open klines never land, duplicates land once, a dropped
    /// connection's missed minutes, a stall and MarketStore down and back are filled from REST,
    /// /healthz goes unhealthy on the stall and the outage and healthy after them, /metrics
    /// counts what the target holds, SIGTERM ends it within 10 s.
    func testFollowWritesClosedKlinesOnceAndFillsGaps() async throws {
        let symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
        // One minute of the market per second.
        let (fixture, path, follow) = try await startFollow("follow", symbols: symbols, speed: 60, ["--stale-after", "3", "--flush-interval", "0.5"])
        defer { fixture.stop() }
        defer { if follow.process.isRunning { follow.process.terminate() } }
        let port = try follow.metricsPort()
        try waitFor("healthy", timeout: 20) { get("http://127.0.0.1:\(port)/healthz").status == 200 }
        // The coverage page at /, with each key's lag.
        let page = get("http://127.0.0.1:\(port)/")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.body.contains("<!DOCTYPE html>") && page.body.contains(#""key":"AAAUSDT/1Min/OHLCV""#) && page.body.contains(#""lag":"#), String(page.body.prefix(300)))
        try await Task.sleep(nanoseconds: 4_000_000_000)
        // The connection drops for 3 minutes of the market; then the stream stalls.
        try await fixture.control(["drop_minutes": 3])
        try await Task.sleep(nanoseconds: 6_000_000_000)
        try await fixture.control(["stall": true])
        try waitFor("unhealthy during the stall", timeout: 10) { get("http://127.0.0.1:\(port)/healthz").status == 503 }
        XCTAssertTrue(get("http://127.0.0.1:\(port)/healthz").body.contains("stale_keys"))
        try await fixture.control(["stall": false])
        try waitFor("healthy after the stall", timeout: 15) { get("http://127.0.0.1:\(port)/healthz").status == 200 }
        try await Task.sleep(nanoseconds: 2_000_000_000)
        // MarketStore down for 5 s (5 minutes of the market), then back.
        try await marketstore.control(["down_for": 5])
        try waitFor("unhealthy while MarketStore is down", timeout: 10) { get("http://127.0.0.1:\(port)/healthz").body.contains(#""marketstore_reachable":false"#) }
        try waitFor("healthy once MarketStore is back", timeout: 20) { get("http://127.0.0.1:\(port)/healthz").status == 200 }
        try await Task.sleep(nanoseconds: 3_000_000_000)
        // Quiet (nothing more arrives, the last klines are written), then read the counters.
        try await fixture.control(["stall": true])
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let samples = try metrics(port)
        let seconds = try XCTUnwrap(follow.terminate(), "stopped within 15 s: \(follow.output)")
        XCTAssertLessThan(seconds, 10, follow.output)
        XCTAssertEqual(follow.process.terminationStatus, 143, follow.output)

        // Every closed kline once, exactly, from the archives on; no open kline.
        let m = try manifest("follow")
        let client = MarketStoreClient(url: marketstore.url)
        var written = 0.0, held = 0
        for s in symbols {
            let unit = try XCTUnwrap(m.units["rest/spot/daily/klines/\(s)/1m/\(s)-1m-2024-02-03.zip"], s)
            let covered = try XCTUnwrap(unit.coveredTo)
            let minutes = Int((covered - 1_706_918_400) / 60) + 1
            XCTAssertGreaterThan(minutes, 12, "\(s): \(minutes) minutes followed")
            XCTAssertEqual(unit.rows, minutes, s)
            // Provenance: the day's unit says which minutes came from the live stream (the
            // others from REST: the catch-up and the gap fills).
            let streamed = try XCTUnwrap(unit.streamed, "\(s): live-stream runs recorded")
            XCTAssertTrue(!streamed.isEmpty && streamed.allSatisfy { $0.count == 2 && $0[0] <= $0[1] && $0[1] <= covered }, "\(s): \(streamed)")
            XCTAssertGreaterThanOrEqual(streamed.count, 2, "\(s): the drop and the stall split the stream: \(streamed)")
            let want = joined([try expected(archivePaths(s, "1m", days: ("2024-02", 1...2))), try dayRows(s, "1m", "2024-02-03", first: minutes)])
            let got = try await client.query(symbols: [s], timeframe: "1Min", attributeGroup: "OHLCV")
            XCTAssertEqual(got.first?.epochs, want.epochs, s)
            XCTAssertTrue(Array(got.first?.columns.dropFirst() ?? []) == want.columns.map(\.values), "\(s) values")
            held += want.count
            written += try XCTUnwrap(samples["binance_import_rows_written_total" + #"{"job": "follow", "key": "\#(s)/1Min/OHLCV"}"#], s)
        }
        // The counters are the rows the follow phase wrote (gap fills and live klines): all the
        // target holds but what the catch-up run wrote.
        let caughtUp = try XCTUnwrap(follow.output.range(of: " failed, ").map { Int(follow.output[$0.upperBound...].prefix(while: \.isNumber)) } ?? nil,
                                     follow.output)
        XCTAssertEqual(samples["binance_import_rows_written_total" + #"{"job": "follow"}"#], written)
        XCTAssertEqual(Int(written), held - caughtUp, "catch-up wrote \(caughtUp) of \(held)")
        XCTAssertGreaterThanOrEqual(samples["binance_import_gap_fills_total" + #"{"job": "follow"}"#] ?? 0, 2, "the drop and the stall")
        XCTAssertGreaterThanOrEqual(samples["binance_import_stream_reconnects_total" + #"{"job": "follow"}"#] ?? 0, 1)
        XCTAssertGreaterThan(samples["binance_import_stream_duplicates_total" + #"{"job": "follow"}"#] ?? 0, 0, "\(samples.filter { !$0.key.contains("bucket") })")
        XCTAssertGreaterThan(samples["binance_import_write_lag_seconds_count" + #"{"job": "follow"}"#] ?? 0, 0)
        let verify = try importer(["verify", path], today: "2024-02-03")
        XCTAssertEqual(verify.status, 0, verify.output)
    }

    /// A malformed frame (bad JSON, a kline without its close time) is counted and skipped: the
    /// connection stays up, no gap fill follows, the klines after it still land.
    func testFollowCountsAndSkipsMalformedFrames() async throws {
        let (fixture, path, follow) = try await startFollow("malformed", symbols: ["AAAUSDT"], speed: 60, ["--flush-interval", "0.5"])
        defer { fixture.stop() }
        defer { if follow.process.isRunning { follow.process.terminate() } }
        let port = try follow.metricsPort()
        try waitFor("healthy", timeout: 20) { get("http://127.0.0.1:\(port)/healthz").status == 200 }
        try await Task.sleep(nanoseconds: 2_000_000_000)
        let job = #"{"job": "malformed"}"#
        let before = try metrics(port)
        let restBefore = try await fixture.stats()["klines_requests"] as? [Any]
        try await fixture.control(["malformed": 4])
        try await Task.sleep(nanoseconds: 3_000_000_000)
        let stats = try await fixture.stats()
        XCTAssertEqual(stats["ws_malformed_sent"] as? Int, 4)
        let after = try metrics(port)
        XCTAssertEqual(after["binance_import_stream_malformed_frames_total" + job], 4, "\(after.filter { !$0.key.contains("bucket") })")
        XCTAssertEqual(after["binance_import_stream_reconnects_total" + job], before["binance_import_stream_reconnects_total" + job])
        XCTAssertEqual(after["binance_import_gap_fills_total" + job], before["binance_import_gap_fills_total" + job])
        XCTAssertEqual((stats["klines_requests"] as? [Any])?.count, restBefore?.count, "no REST fill after a malformed frame")
        XCTAssertGreaterThan(after["binance_import_write_lag_seconds_count" + job] ?? 0, before["binance_import_write_lag_seconds_count" + job] ?? 0,
                             "klines after the malformed frames still land")
        XCTAssertNotNil(follow.terminate(), follow.output)
        XCTAssertEqual(follow.process.terminationStatus, 143, follow.output)
        let verify = try importer(["verify", path], today: "2024-02-03")
        XCTAssertEqual(verify.status, 0, verify.output)
    }

    /// A soak in fast time: one kline per 10 ms for 3 symbols x 1m (about 2.8 days of the market
    /// in 40 s, across two midnights), bounded: resident memory flat within 10 MB after the
    /// warm-up, write lag p99 under two flush intervals, every row exact.
    func testFollowSoakInFastTime() async throws {
        let symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
        let flush = 0.5
        let (fixture, _, follow) = try await startFollow("soak", symbols: symbols, speed: 6000, ["--flush-interval", String(flush)])
        defer { fixture.stop() }
        defer { if follow.process.isRunning { follow.process.terminate() } }
        let port = try follow.metricsPort()
        var rss: [Int] = []
        for second in 0..<40 {
            try await Task.sleep(nanoseconds: 1_000_000_000)
            if second >= 10, let kb = follow.rssKB { rss.append(kb) }
        }
        try await fixture.control(["stall": true])
        try await Task.sleep(nanoseconds: 1_500_000_000)
        let samples = try metrics(port)
        XCTAssertNotNil(follow.terminate(), follow.output)
        XCTAssertEqual(follow.process.terminationStatus, 143, follow.output)

        let growth = (rss.max() ?? 0) - (rss.min() ?? 0)
        XCTAssertLessThan(growth, 10 * 1024, "resident memory from 10 s on: \(rss) KB")
        let count = try XCTUnwrap(samples["binance_import_write_lag_seconds_count" + #"{"job": "soak"}"#])
        XCTAssertGreaterThan(count, 3 * 1000, "klines written live")
        let p99 = FollowMetrics.lagBuckets.first { bound in
            (lagBucket(samples, job: "soak", le: bound) ?? 0) >= 0.99 * count
        }
        XCTAssertNotNil(p99, "\(samples.filter { $0.key.contains("lag") })")
        XCTAssertLessThanOrEqual(p99 ?? .infinity, 2 * flush, "lag p99 bucket")

        let m = try manifest("soak")
        let client = MarketStoreClient(url: marketstore.url)
        for s in symbols {
            let days = m.units.values.filter { $0.isREST && $0.key.hasPrefix(s) && $0.status == .done }.sorted { $0.id < $1.id }
            XCTAssertGreaterThanOrEqual(days.count, 3, "\(s): the soak crossed two midnights")
            var parts = [try expected(archivePaths(s, "1m", days: ("2024-02", 1...2)))]
            for unit in days {
                let day = String(unit.id.dropLast(4).suffix(10))
                let full = unit.coveredTo.map { Int(($0 % 86400) / 60) + 1 } ?? 0
                XCTAssertEqual(unit.rows, full, unit.id)
                parts.append(try dayRows(s, "1m", day, first: full))
            }
            let want = joined(parts)
            let got = try await client.query(symbols: [s], timeframe: "1Min", attributeGroup: "OHLCV")
            XCTAssertEqual(got.first?.epochs.count, want.epochs.count, s)
            XCTAssertTrue(got.first?.epochs == want.epochs && Array(got.first?.columns.dropFirst() ?? []) == want.columns.map(\.values), "\(s) rows exact")
        }
    }

    /// A data directory belongs to the server that serves it: follow refuses one.
    func testFollowRefusesADirectoryTarget() throws {
        let path = try job("follow-dir", symbols: ["BTCUSDT"], intervals: ["1m"], from: "2024-02", to: "latest")
        let r = try importer(["follow", path, "--target", work.appendingPathComponent("mktsdb").path], today: "2024-02-03")
        XCTAssertEqual(r.status, 2, r.output)
        XCTAssertTrue(r.output.contains("key 'target': follow writes to a running MarketStore"), r.output)
    }

    /// The fixture (streams and REST on a clock from 2024-02-03 00:00:05 at `speed`), daily
    /// archives of 1-2 February for `symbols`, and `follow` of a `to: now` job over them.
    func startFollow(_ name: String, symbols: [String], speed: Double, _ args: [String]) async throws -> (ServerProcess, String, FollowProcess) {
        let fixture = try startFixture()
        for s in symbols { try generate("spot", s, "1m", "2024-02", days: 1...2) }
        let path = try nowJob(try job(name, symbols: symbols, intervals: ["1m"], from: "2024-02", to: "latest"), "\(name)-now", rest: fixture)
        try await fixture.control(["now": "2024-02-03T00:00:05Z", "speed": speed])
        let fixtureStats = try await fixture.stats()
        let wsPort = try XCTUnwrap(fixtureStats["ws_port"] as? Int)
        var env = ProcessInfo.processInfo.environment
        env["BINANCE_IMPORT_NOW"] = "2024-02-03T00:00:05Z"
        env.removeValue(forKey: "BINANCE_IMPORT_TODAY")
        let follow = try FollowProcess(binary: Self.binary, args: ["follow", path, "--metrics-addr", "127.0.0.1:0", "--stream-url", "ws://127.0.0.1:\(wsPort)"] + args,
                                       directory: work, environment: env)
        return (fixture, path, follow)
    }

    func startFixture() throws -> ServerProcess {
        try ServerProcess.required(script: "Tests/servers/rest_server.py", arguments: ["--ws"])
    }
}
