import BinanceSource
import Foundation
import KlineArchive
import MarketStore
import TestSupport
import TradeArchive
import XCTest

@testable import Follow
@testable import ImportPipeline
@testable import JobMetrics
@testable import JobModel
@testable import JobState

/// `to: now`: archives, then Binance's REST klines up to the last closed candle, against the
/// fixture REST server (Tests/servers/rest_server.py); and the other kline-shaped datasets.
extension ImportJobTests {
    func startREST() throws -> ServerProcess {
        try ServerProcess.required(script: "Tests/servers/rest_server.py")
    }

    /// The job file at `path` with `to: now` and the fixture's REST base URL (and more lines).
    func nowJob(_ path: String, _ name: String, rest: ServerProcess, extra: String = "") throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let copy = work.appendingPathComponent("\(name).yml").path
        try text.replacingOccurrences(of: "checksum: required", with: "checksum: required\n  rest_url: \(rest.base)")
            .replacingOccurrences(of: "\nto: ", with: "\nto: now\n#was: ") .appending(extra.isEmpty ? "" : "\n" + extra)
            .write(toFile: copy, atomically: true, encoding: .utf8)
        return copy
    }

    /// The importer with the local clock pinned (BINANCE_IMPORT_NOW) and the fixture's clock set
    /// to the same time.
    func runAt(_ now: String, _ args: [String], rest: ServerProcess) async throws -> (status: Int32, output: String) {
        try await rest.control(["now": now])
        var env = ProcessInfo.processInfo.environment
        env["BINANCE_IMPORT_NOW"] = now
        env.removeValue(forKey: "BINANCE_IMPORT_TODAY")
        return try runCommand(Self.binary, args, directory: work, environment: env)
    }

    /// The daily archive's rows of a day (what the fixture serves, what Binance publishes later),
    /// the first `count` of them.
    func dayRows(_ symbol: String, _ interval: String, _ day: String, first count: Int? = nil) throws -> KlineBatch {
        let dir = work.appendingPathComponent("expected")
        let parts = day.split(separator: "-")
        let r = try run("/usr/bin/env", ["python3", ServerProcess.repoRoot.appendingPathComponent("bench/gen_archives.py").path, "--out", dir.path,
                                         "--symbol", symbol, "--interval", interval, "--month", "\(parts[0])-\(parts[1])", "--day", String(Int(parts[2])!)])
        XCTAssertEqual(r.status, 0, r.output)
        var batch = try expected([dir.appendingPathComponent("\(symbol)-\(interval)-\(day).zip").path])
        if let count {
            batch = KlineBatch(epochs: Array(batch.epochs.prefix(count)), columns: batch.columns.map { ($0.column, $0.values.slice(0..<count)) })
        }
        return batch
    }

    func joined(_ parts: [KlineBatch]) -> KlineBatch {
        var all = parts[0]
        for p in parts.dropFirst() { all.append(p) }
        return all
    }

    /// Up to the last closed candle, exactly, never the open one; an hour later only the new
    /// candle is asked for and added; the daily archive published later supersedes the REST day
    /// with identical values; verify covers REST units.
    func testToNowFillsUpToTheLastClosedCandleAndTheArchiveSupersedesIt() async throws {
        let rest = try startREST()
        defer { rest.stop() }
        try generate("spot", "BTCUSDT", "1h", "2024-01")
        try generate("spot", "BTCUSDT", "1h", "2024-02", days: 1...3)
        let path = try nowJob(try job("edge", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "latest"), "edge-now", rest: rest)

        // 5 February 10:30: the archives end with 3 February; 4 February and 00:00-09:00 of the
        // 5th are closed; the 10:00 candle is open.
        let r1 = try await runAt("2024-02-05T10:30:00Z", ["run", path], rest: rest)
        XCTAssertEqual(r1.status, 0, r1.output)
        let archived = try expected(archivePaths("BTCUSDT", "1h", months: ["2024-01"], days: ("2024-02", 1...3)))
        try await assertTargetHolds("BTCUSDT", "1H", joined([archived, try dayRows("BTCUSDT", "1h", "2024-02-04"),
                                                             try dayRows("BTCUSDT", "1h", "2024-02-05", first: 10)]))
        var m = try manifest("edge")
        let day4 = "rest/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02-04.zip", day5 = "rest/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02-05.zip"
        XCTAssertEqual(m.units[day4]?.status, .done)
        XCTAssertEqual(m.units[day4]?.rows, 24)
        XCTAssertEqual(m.units[day5]?.rows, 10)
        XCTAssertEqual(m.units[day5]?.coveredTo, 1_707_123_600, "09:00 on 5 February, the last closed candle")
        XCTAssertTrue(r1.output.contains("REST requests (weight)"), r1.output)

        // An hour later: one new candle, asked for alone.
        try await rest.control(["reset": true])
        let r2 = try await runAt("2024-02-05T11:30:00Z", ["run", path], rest: rest)
        XCTAssertEqual(r2.status, 0, r2.output)
        XCTAssertEqual(tableValue(r2.output, "rows written"), "1", r2.output)
        let stats = try await rest.stats()
        let klines = try XCTUnwrap(stats["klines_requests"] as? [[String: String]])
        XCTAssertEqual(klines.map { $0["startTime"] }, ["1707127200000"], "only 10:00 onwards")
        try await assertTargetHolds("BTCUSDT", "1H", joined([archived, try dayRows("BTCUSDT", "1h", "2024-02-04"),
                                                             try dayRows("BTCUSDT", "1h", "2024-02-05", first: 11)]))
        m = try manifest("edge")
        XCTAssertEqual(m.units[day5]?.rows, 11)
        let verify = try await runAt("2024-02-05T11:30:00Z", ["verify", path], rest: rest)
        XCTAssertEqual(verify.status, 0, verify.output)
        XCTAssertTrue(verify.output.contains("all match"), verify.output)

        // The 4 February archive is out: it supersedes the REST day, with the same values.
        try generate("spot", "BTCUSDT", "1h", "2024-02", day: 4)
        let r3 = try await runAt("2024-02-05T11:40:00Z", ["run", path], rest: rest)
        XCTAssertEqual(r3.status, 0, r3.output)
        m = try manifest("edge")
        XCTAssertEqual(m.units[day4]?.status, .superseded)
        XCTAssertEqual(m.units["data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2024-02-04.zip"]?.status, .done)
        XCTAssertEqual(m.units[day5]?.status, .done)
        try await assertTargetHolds("BTCUSDT", "1H", joined([archived, try expected(archivePaths("BTCUSDT", "1h", days: ("2024-02", 4...4))),
                                                             try dayRows("BTCUSDT", "1h", "2024-02-05", first: 11)]))
        let status = try await runAt("2024-02-05T11:40:00Z", ["status", path], rest: rest)
        XCTAssertTrue(status.output.contains("r done from REST klines"), status.output)
    }

    /// The weight budget holds (the fixture's counters never pass it), waiting for the next minute
    /// when it must; a 418 stops all REST work with exit 1, and what was written stays recorded.
    func testTheWeightBudgetHoldsAndA418StopsRESTWork() async throws {
        let rest = try startREST()
        defer { rest.stop() }
        let symbols = ["AAAUSDT", "BBBUSDT", "CCCUSDT"]
        for s in symbols { try generate("spot", s, "1m", "2024-02", days: 1...2) }
        // A budget of 5 a minute (limit 10, share 0.5): the time request and two klines requests
        // (weight 2 each) fit, the third key's waits for the next minute of the fixture's clock,
        // which starts 4 s before a minute ends.
        try await rest.control(["weight_limit": 10])
        let base = try job("budget", symbols: symbols, intervals: ["1m"], from: "2024-02", to: "latest")
        let path = try nowJob(base, "budget-now", rest: rest, extra: "rest:\n  weight_limit: 10\n  weight_share: 0.5")
        let r = try await runAt("2024-02-03T00:59:56Z", ["run", path], rest: rest)
        XCTAssertEqual(r.status, 0, r.output)
        let stats = try await rest.stats()
        XCTAssertLessThanOrEqual(stats["max_used_weight"] as! Int, 5, "\(stats)")
        XCTAssertEqual(stats["rate_limited"] as? Int, 0)
        for s in symbols {
            let m = try manifest("budget")
            XCTAssertEqual(m.units["rest/spot/daily/klines/\(s)/1m/\(s)-1m-2024-02-03.zip"]?.rows, 59, "00:00-00:58 closed at 00:59:56")
        }
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: work.appendingPathComponent("state/budget.report.json"))) as? [String: Any])
        XCTAssertEqual(summary["rest_weight_budget"] as? Int, 5)
        XCTAssertGreaterThanOrEqual(summary["rest_budget_waits"] as! Int, 1)
        XCTAssertEqual(summary["rest_requests"] as? Int, 4)

        // Binance counts more than the client expected (the fixture's limit below the budget): a
        // 429 waits for its Retry-After (to the next minute) and the request goes through.
        try await rest.control(["reset": true, "weight_limit": 4])
        let limited = try await runAt("2024-02-03T01:59:56Z", ["run", path], rest: rest)
        XCTAssertEqual(limited.status, 0, limited.output)
        let after = try await rest.stats()
        XCTAssertEqual(after["rate_limited"] as? Int, 1, "\(after)")
        let limitedSummary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: work.appendingPathComponent("state/budget.report.json"))) as? [String: Any])
        XCTAssertEqual(limitedSummary["rest_rate_limited"] as? Int, 1)
        for s in symbols {
            let m = try manifest("budget")
            XCTAssertEqual(m.units["rest/spot/daily/klines/\(s)/1m/\(s)-1m-2024-02-03.zip"]?.rows, 119, "00:00-01:58")
        }

        // Banned: exit 1, a clear message; everything acknowledged before stays recorded.
        try await rest.control(["ban": true])
        let banned = try await runAt("2024-02-03T02:00:00Z", ["run", path], rest: rest)
        XCTAssertEqual(banned.status, 1, banned.output)
        XCTAssertTrue(banned.output.contains("HTTP 418, the IP is banned by Binance for 120 s; all REST work stopped"), banned.output)
        let m = try manifest("budget")
        XCTAssertEqual(m.units["rest/spot/daily/klines/AAAUSDT/1m/AAAUSDT-1m-2024-02-03.zip"]?.rows, 119)
        XCTAssertEqual(m.units.values.filter { $0.status == .done && !$0.isREST }.count, 6)
    }

    /// Mark price and index price klines from archives in their own paths land exactly, in
    /// their own attribute groups; spot has no such dataset.
    func testMarkAndIndexPriceKlinesLandFromTheirArchives() async throws {
        for (dataset, group) in [("markPriceKlines", "MARK"), ("indexPriceKlines", "INDEX")] {
            let dir = tree.appendingPathComponent("data/futures/um/monthly/\(dataset)/BTCUSDT/1h")
            let g = try run("/usr/bin/env", ["python3", ServerProcess.repoRoot.appendingPathComponent("bench/gen_archives.py").path,
                                             "--out", dir.path, "--symbol", "BTCUSDT", "--interval", "1h", "--month", "2024-01", "--header"])
            XCTAssertEqual(g.status, 0, g.output)
            let base = try job("ds-\(dataset)", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01", market: "futures/um")
            let path = try variant(of: base, "ds-\(dataset)-job", replacing: "attribute_group: OHLCV", with: "dataset: \(dataset)")
            let r = try importer(["run", path], today: "2024-06-01")
            XCTAssertEqual(r.status, 0, r.output)
            let client = MarketStoreClient(url: marketstore.url)
            let got = try await client.query(symbols: ["BTCUSDT"], timeframe: "1H", attributeGroup: group)
            let want = try expected([dir.appendingPathComponent("BTCUSDT-1h-2024-01.zip").path])
            XCTAssertEqual(got.first?.epochs, want.epochs, dataset)
            XCTAssertEqual(Array(got.first?.columns.dropFirst() ?? []), want.columns.map(\.values), dataset)
        }
        let spot = try variant(of: try job("ds-spot", symbols: ["BTCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01"), "ds-spot-job",
                               replacing: "attribute_group: OHLCV", with: "dataset: markPriceKlines")
        let bad = try importer(["run", spot], today: "2024-06-01")
        XCTAssertEqual(bad.status, 2, bad.output)
        XCTAssertTrue(bad.output.contains("key 'dataset': markPriceKlines exist for futures/um and futures/cm only, not spot"), bad.output)
    }

    /// Pagination at each endpoint's maximum, whichever end the endpoint counts from: two days of
    /// COIN-M 1m klines (2,880: two requests of at most 1,500, weight 10 each) come back whole, in
    /// order, once each; spot asks 1,000 at a time at weight 2.
    func testRESTPagesCoverTheRangeOnceOnBothKindsOfEndpoint() async throws {
        let rest = try startREST()
        defer { rest.stop() }
        try await rest.control(["now": "2024-03-01T00:00:00Z"])
        let from: Int64 = 1_706_745_600_000, to = from + 2 * 86_400_000 - 60_000  // 1-2 February 2024
        for (market, symbol, requests, weight) in [(Market.futuresCM, "BTCUSD_PERP", 2, 10), (.spot, "BTCUSDT", 3, 2)] {
            try await rest.control(["reset": true])
            let client = RestClient(baseURL: rest.base, market: market, weightLimit: 6000, share: 0.5)
            let klines = try await client.klines(dataset: .klines, instrument: symbol, interval: KlineInterval("1m")!, fromMs: from, toMs: to)
            let opens = klines.map(\.openTime), want = Array(stride(from: from, through: to, by: 60_000))
            XCTAssertTrue(opens == want, "\(market): \(opens.count) klines from \(opens.first ?? 0) to \(opens.last ?? 0), want \(want.count)")
            let counters = await client.counters
            XCTAssertEqual(counters.requests, requests, "\(market)")
            XCTAssertEqual(counters.weight, requests * weight, "\(market)")
            let stats = try await rest.stats()
            XCTAssertEqual((stats["klines_requests"] as? [[String: String]])?.map { $0["limit"] }, Array(repeating: "\(RestMarket(market).maxLimit)", count: requests))
        }
    }

    /// Trades by ID: pages of 1,000 from fromId at each endpoint's weight, stopping at the last
    /// ID asked or at a short page (the present), as lines of the market's archive layout that
    /// the archive's parser reads; futures raw trades need a key and are refused.
    func testTradesByIDComePagedAsArchiveLines() async throws {
        let rest = try startREST()
        defer { rest.stop() }
        try await rest.control(["trades": ["first_id": 1000, "last_id": 4200, "start_ms": 1_706_745_600_000, "step_ms": 250]])
        for (market, dataset, weight, fields) in [(Market.spot, TradeDataset.aggTrades, 4, 8), (.futuresUM, .aggTrades, 20, 7), (.spot, .trades, 25, 7)] {
            try await rest.control(["reset": true])
            let client = RestClient(baseURL: rest.base, market: market, weightLimit: 6000, share: 0.5)
            let lines = try await client.tradeLines(dataset: dataset, symbol: "BTCUSDT", fromID: 1500, toID: 3999)
            XCTAssertEqual(lines.map { Int64($0.split(separator: ",")[0])! }, Array(1500...3999), "\(market) \(dataset)")
            XCTAssertTrue(lines.allSatisfy { $0.split(separator: ",").count == fields }, "\(market) \(dataset): \(lines[0])")
            let counters = await client.counters
            XCTAssertEqual([counters.requests, counters.weight], [3, 3 * weight], "\(market) \(dataset)")
            // Past the last ID the server has: a short page ends it.
            let tail = try await client.tradeLines(dataset: dataset, symbol: "BTCUSDT", fromID: 4000, toID: 9000)
            XCTAssertEqual(tail.count, 201, "\(market) \(dataset)")
        }
        let spot = try await RestClient(baseURL: rest.base, market: .spot, weightLimit: 6000, share: 0.5)
            .tradeLines(dataset: .aggTrades, symbol: "BTCUSDT", fromID: 1000, toID: 1000)
        XCTAssertEqual(spot, ["1000,60023.07919000,0.01000,3000,3002,1706745600000,True,True"])
        do {
            _ = try await RestClient(baseURL: rest.base, market: .futuresCM, weightLimit: 2400, share: 0.5).tradeLines(dataset: .trades, symbol: "BTCUSD_PERP", fromID: 1, toID: 2)
            XCTFail("futures raw trades by ID were asked without a key")
        } catch {
            XCTAssertTrue("\(error)".contains("with an API key"), "\(error)")
        }
    }
}
