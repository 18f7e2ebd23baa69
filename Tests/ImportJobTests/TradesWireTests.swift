import Columnar
import Foundation
import MarketStore
import MarketStoreModel
import TestSupport
import XCTest

@testable import JobState

/// Trades through the binary and the MarketStore test server: the wire contract of the append
/// path (variable-length buckets created by the first write, records read back), `verify`
/// catching a trade appended twice, and a key that exists as a fixed-length bucket refused.
extension ImportJobTests {
    /// Two monthly USDⓈ-M aggTrades archives with a header line, IDs chaining across them.
    func publishAggTrades(_ symbol: String, skippingBeforeFebruary skipped: Int64 = 0) throws {
        var aggID: Int64 = 500, tradeID: Int64 = 9000
        for month in ["2024-01", "2024-02"] {
            if month == "2024-02" { aggID += skipped }
            let start = Int64(ISO8601DateFormatter().date(from: "\(month)-01T00:00:00Z")!.timeIntervalSince1970) * 1000
            var csv = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
            for i in Int64(0)..<400 {
                let trades = 1 + i % 3
                csv += "\(aggID),\(61_000 + i % 50).\(i % 10)0,0.\(String(format: "%03d", 1 + i % 997)),\(tradeID),\(tradeID + trades - 1),\(start + i * 6_000 + i % 5),\(i % 2 == 0 ? "true" : "false")\n"
                aggID += 1
                tradeID += trades
            }
            let folder = tree.appendingPathComponent("data/futures/um/monthly/aggTrades/\(symbol)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let name = "\(symbol)-aggTrades-\(month).zip"
            let zip = ZipBuilder.single("\(symbol)-aggTrades-\(month).csv", csv)
            try Data(zip).write(to: folder.appendingPathComponent(name))
            try "\(sha256Hex(zip))  \(name)\n".write(to: folder.appendingPathComponent(name + ".CHECKSUM"), atomically: true, encoding: .utf8)
        }
    }

    func tradesJob(_ name: String, symbols: [String]) throws -> String {
        let path = work.appendingPathComponent("\(name).yml").path
        try """
            name: \(name)
            source: {base_url: \(archives.url), listing_url: \(archives.url)/listing, cache_dir: \(work.appendingPathComponent("cache").path)}
            market: futures/um
            dataset: aggTrades
            symbols: [\(symbols.joined(separator: ", "))]
            from: 2024-01
            to: 2024-02
            target: {marketstore: "\(marketstore.url)"}
            write: {chunk_rows: 300}
            manifest: \(work.appendingPathComponent("state/\(name).manifest.db").path)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testAggTradesLandOnceAndVerifyCatchesATradeAppendedTwice() async throws {
        try publishAggTrades("AGGUSDT")
        try publishAggTrades("FIXUSDT")
        let client = MarketStoreClient(url: marketstore.url)
        try await client.create(key: "FIXUSDT/1Sec/AGGTRADES", columns: [ColumnSchema("Price", "f8")])
        let path = try tradesJob("agg", symbols: ["AGGUSDT", "FIXUSDT"])
        let run = try importer(["run", path], today: "2024-03-02")
        XCTAssertEqual(run.status, 1, run.output)
        XCTAssertTrue(run.output.contains("FIXUSDT/1Sec/AGGTRADES: the bucket is fixed-length"), run.output)
        let units = try manifest("agg").units
        XCTAssertEqual(units.values.filter { $0.key == "AGGUSDT/1Sec/AGGTRADES" }.map(\.status), [.done, .done])
        XCTAssertEqual(units.values.filter { $0.key == "FIXUSDT/1Sec/AGGTRADES" }.map(\.status), [.writing, .writing], "refused: reconciled, not re-sent, next time")
        let fixed = try await SchemaGuard(client: client).records(key: "FIXUSDT/1Sec/AGGTRADES", from: 0, to: 1 << 40)
        XCTAssertEqual(fixed?.count, 0, "nothing of it written")

        let results = try await client.query(symbols: ["AGGUSDT"], timeframe: "1Sec", attributeGroup: "AGGTRADES")
        let held = try XCTUnwrap(results.first)
        XCTAssertEqual(held.names, ["Epoch", "Price", "Qty", "AggTradeID", "FirstTradeID", "LastTradeID", "IsBuyerMaker", "Nanoseconds"])
        XCTAssertEqual(held.columns[3], .int64(Array(500..<1300)), "every aggregate once, in time order")
        guard case let .int64(first) = held.columns[4], case let .int64(last) = held.columns[5] else { return XCTFail("ID columns") }
        XCTAssertTrue(zip(first.dropFirst(), last).allSatisfy { $0 == $1 + 1 }, "the trade IDs chain")
        XCTAssertEqual(held.columns[7].slice(0..<3), .int32([0, 1_000_000, 2_000_000]))

        // One record of February written again, as a naive re-send would: verify names the unit.
        let again = try WriteDataSet.concatenating([("AGGUSDT/1Sec/AGGTRADES", held.names, held.columns.map { $0.slice(500..<501) })])
        try await client.write(again, variableLength: true)
        let verify = try importer(["verify", path], today: "2024-03-02")
        XCTAssertEqual(verify.status, 1, verify.output)
        XCTAssertTrue(verify.output.contains("AGGUSDT-aggTrades-2024-02.zip: 401 rows in the target, 400 in the manifest"), verify.output)

        // rebuild: without --yes it says what it would do and changes nothing; with it the key is
        // destroyed and the next run writes it whole, which verify accepts.
        let preview = try importer(["rebuild", path, "--key", "AGGUSDT/1Sec/AGGTRADES"], today: "2024-03-02")
        XCTAssertEqual(preview.status, 2, preview.output)
        XCTAssertTrue(preview.output.contains("would destroy AGGUSDT/1Sec/AGGTRADES in \(marketstore.url) (800 rows recorded) and re-import its 2 units"), preview.output)
        let rebuild = try importer(["rebuild", path, "--key", "AGGUSDT/1Sec/AGGTRADES", "--yes"], today: "2024-03-02")
        XCTAssertEqual(rebuild.status, 0, rebuild.output)
        let gone = try await client.getInfo("AGGUSDT/1Sec/AGGTRADES")
        XCTAssertNil(gone)
        _ = try importer(["run", path, "--symbols", "AGGUSDT"], today: "2024-03-02")
        let reverify = try importer(["verify", path, "--symbols", "AGGUSDT"], today: "2024-03-02")
        XCTAssertTrue(reverify.output.contains("verified 2 units: all match"), reverify.output)
        let rebuilt = try await client.query(symbols: ["AGGUSDT"], timeframe: "1Sec", attributeGroup: "AGGTRADES")
        XCTAssertEqual(rebuilt.first?.columns[3], .int64(Array(500..<1300)), "every aggregate once again")
    }

    /// `--force` reconciles each unit by reading its chunks' seconds back: every trade is found and
    /// none appended, though each chunk's last second holds sub-second trades (the real server cuts
    /// a range's records after epoch_end + epoch_end_nanos: read to the second's .0, those trades
    /// looked missing and were appended a second time).
    func testAForcedRerunOfSubSecondTradesAppendsNothing() async throws {
        try publishAggTrades("SUBUSDT")
        let path = try tradesJob("sub", symbols: ["SUBUSDT"])
        XCTAssertEqual(try importer(["run", path], today: "2024-03-02").status, 0)
        let forced = try importer(["run", path, "--force", "--log-format", "json"], today: "2024-03-02")
        XCTAssertEqual(forced.status, 0, forced.output)
        let held = try await MarketStoreClient(url: marketstore.url).query(symbols: ["SUBUSDT"], timeframe: "1Sec", attributeGroup: "AGGTRADES")
        XCTAssertEqual(held.first?.columns[3], .int64(Array(500..<1300)), "every aggregate once after --force")
        let verify = try importer(["verify", path], today: "2024-03-02")
        XCTAssertTrue(verify.output.contains("verified 2 units: all match"), verify.output)
    }

    /// Aggregates missing between January's archive and February's: `status` names the IDs
    /// and the two files, in text and JSON, and exits 1.
    func testStatusReportsAnIDHoleBetweenTwoArchives() async throws {
        try publishAggTrades("HOLUSDT", skippingBeforeFebruary: 4)
        let path = try tradesJob("holes", symbols: ["HOLUSDT"])
        let run = try importer(["run", path], today: "2024-03-02")
        XCTAssertEqual(run.status, 1, run.output)
        let hole = "IDs 900..903 (4) between HOLUSDT-aggTrades-2024-01.zip and HOLUSDT-aggTrades-2024-02.zip"
        XCTAssertTrue(run.output.contains("ID holes: HOLUSDT/1Sec/AGGTRADES: \(hole)"), run.output)
        let status = try importer(["status", path], today: "2024-03-02")
        XCTAssertEqual(status.status, 1, status.output)
        XCTAssertTrue(status.output.contains("ID holes: HOLUSDT/1Sec/AGGTRADES\n  \(hole)"), status.output)
        let json = try importer(["status", path, "--json"], today: "2024-03-02")
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        let holes = (object?["id_holes"] as? [String: [String]])?["HOLUSDT/1Sec/AGGTRADES"]
        XCTAssertEqual(holes?.count, 1)
        XCTAssertTrue(holes?.first?.hasPrefix(hole) == true, "\(String(describing: holes))")
    }

    /// `gaps: rest` through the binary: the four aggregates missing between the two archives come
    /// from the REST test server, the key is whole, and `verify` accepts every unit, the fill's and
    /// the archives' whose seconds the filled trades share.
    func testGapsRestFillsTheHoleAndVerifyCountsEachUnitsOwnIDs() async throws {
        try publishAggTrades("FILUSDT", skippingBeforeFebruary: 4)
        let rest = try startREST()
        defer { rest.stop() }
        // IDs 900..903, timed in the last minute of January (inside January's unit's seconds).
        try await rest.control(["now": "2024-03-02T00:00:00Z", "trades": ["first_id": 900, "last_id": 903, "start_ms": 1_706_745_540_000, "step_ms": 1000]])
        let path = try tradesJob("fill", symbols: ["FILUSDT"])
        let yaml = try String(contentsOfFile: path, encoding: .utf8)
            .replacingOccurrences(of: "cache_dir:", with: "rest_url: \(rest.base), cache_dir:") + "\ngaps: rest\n"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let run = try importer(["run", path], today: "2024-03-02")
        XCTAssertEqual(run.status, 0, run.output)
        let client = MarketStoreClient(url: marketstore.url)
        let held = try await client.query(symbols: ["FILUSDT"], timeframe: "1Sec", attributeGroup: "AGGTRADES")
        guard case let .int64(ids)? = held.first?.columns[3] else { return XCTFail("no AggTradeID column") }
        XCTAssertEqual(ids.sorted(), Array(500..<1304), "every aggregate once")
        let verify = try importer(["verify", path], today: "2024-03-02")
        XCTAssertEqual(verify.status, 0, verify.output)
        XCTAssertTrue(verify.output.contains("verified 3 units: all match"), verify.output)
    }
}
