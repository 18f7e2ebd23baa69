import Columnar
import CurlHTTP
import Foundation
import MarketStoreModel
import MsgPack
import TestSupport
import XCTest
@testable import MarketStore

/// The client against the MarketStore test server: round trips, schema guard, error paths.
final class MarketStoreClientTests: XCTestCase {
    var server: MarketStoreTestServer!
    var client: MarketStoreClient!

    override func setUp() async throws {
        server = try MarketStoreTestServer()
        client = MarketStoreClient(url: server.url, timeouts: .init(connect: 2, total: 10))
    }

    override func tearDown() async throws { server.stop() }

    /// Kline-like columns for `symbol`: n rows of 1Min from 2024-01-01, f4 or f8 prices, and the
    /// extra columns (QuoteVolume f8, Trades i8, TakerBuy* f8).
    func columns(seed: Int, n: Int, float64: Bool, extra: Bool = true) -> (names: [String], columns: [ColumnValues]) {
        let start: Int64 = 1_704_067_200
        let epochs = (0..<n).map { start + Int64($0) * 60 }
        func prices(_ k: Int) -> ColumnValues {
            let v = (0..<n).map { 100 + Double(seed * 1000 + $0 * 7 + k) / 3 }
            return float64 ? .float64(v) : .float32(v.map { Float($0) })
        }
        var names = ["Epoch", "Open", "High", "Low", "Close", "Volume"]
        var cols: [ColumnValues] = [.int64(epochs), prices(0), prices(1), prices(2), prices(3), prices(4)]
        if extra {
            names += ["QuoteVolume", "Trades", "TakerBuyBaseVolume", "TakerBuyQuoteVolume"]
            cols += [.float64((0..<n).map { 1e6 + Double($0) / 7 }), .int64((0..<n).map { Int64($0 * seed) }),
                     .float64((0..<n).map { Double($0) / 3 }), .float64((0..<n).map { Double($0) / 9 })]
        }
        return (names, cols)
    }

    func testMultiSymbolWritesOfF4AndF8ComeBackExact() async throws {
        for (group, float64) in [("F4", false), ("F8", true)] {
            let parts = (1...3).map { i -> (key: String, names: [String], columns: [ColumnValues]) in
                let c = columns(seed: i, n: 500 + i, float64: float64)
                return ("SYM\(i)USDT/1Min/\(group)", c.names, c.columns)
            }
            let dataset = try WriteDataSet.concatenating(parts)
            XCTAssertEqual(dataset.keys.map(\.start), [0, 501, 1003])
            try await SchemaGuard(client: client).write(dataset)
            let back = try await client.query(symbols: ["SYM1USDT", "SYM2USDT", "SYM3USDT"], timeframe: "1Min", attributeGroup: group)
            XCTAssertEqual(back.map(\.key), parts.map(\.key))
            for (result, part) in zip(back, parts) {
                XCTAssertEqual(result.names, part.names)
                XCTAssertEqual(result.columns, part.columns, "\(result.key): every value exact")
            }
        }
        let stats = try await server.stats()
        XCTAssertEqual(stats.writeCalls, 2, "one request per dataset")
        XCTAssertEqual(stats.writeKeys.map(\.count), [3, 3], "three keys per request")
        let version = try await client.version()
        XCTAssertEqual(version, "007586568aa92a1c83189b3c06843dc27a23e5b3")
    }

    func testQueryRangeLimitAndFromStart() async throws {
        let c = columns(seed: 1, n: 100, float64: false, extra: false)
        try await client.write(try WriteDataSet(names: c.names, columns: c.columns, keys: [.init(key: "BTCUSDT/1Min/OHLCV", start: 0, count: 100)]))
        let epochs = c.columns[0]
        guard case let .int64(e) = epochs else { return XCTFail() }
        let ranged = try await client.query(symbols: ["BTCUSDT"], timeframe: "1Min", attributeGroup: "OHLCV", from: e[10], to: e[20])
        XCTAssertEqual(ranged.first?.epochs, Array(e[10...20]), "both ends included")
        let last = try await client.query(symbols: ["BTCUSDT"], timeframe: "1Min", attributeGroup: "OHLCV", limit: 5)
        XCTAssertEqual(last.first?.epochs, Array(e[95...]))
        let first = try await client.query(symbols: ["BTCUSDT"], timeframe: "1Min", attributeGroup: "OHLCV", limit: 5, limitFromStart: true)
        XCTAssertEqual(first.first?.epochs, Array(e[..<5]))
    }

    func testRewritingIsIdempotentAndEpochsAreFlooredToTheirSlot() async throws {
        let key = WriteDataSet.KeyRange(key: "ETHUSDT/1Min/OHLCV", start: 0, count: 3)
        let names = ["Epoch", "Open", "High", "Low", "Close", "Volume"]
        let f: (Float) -> ColumnValues = { .float32([$0, $0, $0]) }
        let ds = try WriteDataSet(names: names, columns: [.int64([60, 120, 150]), f(1), f(2), f(3), f(4), f(5)], keys: [key])
        try await client.write(ds)
        try await client.write(ds)
        let back = try await client.query(symbols: ["ETHUSDT"], timeframe: "1Min", attributeGroup: "OHLCV")
        XCTAssertEqual(back.first?.epochs, [60, 120], "150 lands in the 120 slot (last write wins); nothing duplicated")
    }

    func testTheServerLosesThe1JanuaryRowOf1DBuckets() async throws {
        let jan1: Int64 = 1_704_067_200
        let names = ["Epoch", "Open", "High", "Low", "Close", "Volume"]
        let n = 3
        let col: ColumnValues = .float32([1, 2, 3])
        try await client.write(try WriteDataSet(names: names, columns: [.int64((0..<n).map { jan1 + Int64($0) * 86400 }), col, col, col, col, col],
                                                keys: [.init(key: "BTCUSDT/1D/OHLCV", start: 0, count: n)]))
        let back = try await client.query(symbols: ["BTCUSDT"], timeframe: "1D", attributeGroup: "OHLCV")
        XCTAssertEqual(back.first?.epochs, [jan1 + 86400, jan1 + 2 * 86400])
    }

    // MARK: - Schema guard

    func testGuardSendsColumnsInTheBucketOrder() async throws {
        let key = "BNBUSDT/1Min/OHLCV"
        let base = columns(seed: 1, n: 10, float64: false, extra: false)
        try await client.write(try WriteDataSet(names: base.names, columns: base.columns, keys: [.init(key: key, start: 0, count: 10)]))
        // The same names in another order: Volume first.
        let newer = columns(seed: 2, n: 10, float64: false, extra: false)
        let order = [0, 5, 1, 2, 3, 4]
        let shuffled = try WriteDataSet(names: order.map { newer.names[$0] }, columns: order.map { newer.columns[$0] }, keys: [.init(key: key, start: 0, count: 10)])

        // Unguarded, the server stores it scrambled (the trap) ...
        try await client.write(shuffled)
        let scrambled = try await client.query(symbols: ["BNBUSDT"], timeframe: "1Min", attributeGroup: "OHLCV")
        XCTAssertEqual(scrambled.first?.columns[1], newer.columns[5], "Open holds the Volume values")
        // ... guarded, it arrives in the bucket's order.
        try await SchemaGuard(client: client).write(shuffled)
        let back = try await client.query(symbols: ["BNBUSDT"], timeframe: "1Min", attributeGroup: "OHLCV")
        XCTAssertEqual(back.first?.names, base.names)
        XCTAssertEqual(back.first?.columns, newer.columns)
    }

    func testGuardRefusesOtherTypesUnlessAllowed() async throws {
        let key = "XRPUSDT/1Min/OHLCV"
        let f4 = columns(seed: 1, n: 10, float64: false, extra: false)
        try await client.write(try WriteDataSet(names: f4.names, columns: f4.columns, keys: [.init(key: key, start: 0, count: 10)]))
        let f8 = columns(seed: 1, n: 10, float64: true, extra: false)
        let ds = try WriteDataSet(names: f8.names, columns: f8.columns, keys: [.init(key: key, start: 0, count: 10)])
        do {
            try await SchemaGuard(client: client).write(ds)
            XCTFail("a type mismatch must be refused")
        } catch let MarketStoreError.schemaMismatch(k, bucket, dataset, reason) {
            XCTAssertEqual(k, key)
            XCTAssertEqual(bucket.map(\.type), ["i8", "f4", "f4", "f4", "f4", "f4"])
            XCTAssertEqual(dataset.map(\.type), ["i8", "f8", "f8", "f8", "f8", "f8"])
            XCTAssertTrue(reason.contains("types differ"), reason)
            XCTAssertTrue("\(MarketStoreError.schemaMismatch(key: k, bucket: bucket, dataset: dataset, reason: reason))".contains("Open:f4"))
        }
        try await SchemaGuard(client: client, allowTypeConversion: true).write(ds)
        let back = try await client.query(symbols: ["XRPUSDT"], timeframe: "1Min", attributeGroup: "OHLCV")
        XCTAssertEqual(back.first?.columns[1].wireType, "f4", "the server converted to the bucket's type")
    }

    func testGuardRefusesOtherNamesUnservableTimeframesAndVariableBuckets() async throws {
        let c = columns(seed: 1, n: 5, float64: false, extra: false)
        try await client.write(try WriteDataSet(names: c.names, columns: c.columns, keys: [.init(key: "A/1Min/OHLCV", start: 0, count: 5)]))
        var renamed = c.names
        renamed[5] = "Vol"
        await assertThrows(try await SchemaGuard(client: self.client).write(try WriteDataSet(names: renamed, columns: c.columns, keys: [.init(key: "A/1Min/OHLCV", start: 0, count: 5)])), "column names differ")
        await assertThrows(try await SchemaGuard(client: self.client).write(try WriteDataSet(names: c.names, columns: c.columns, keys: [.init(key: "A/4H/OHLCV", start: 0, count: 5)])), "cannot serve them back")
        try await client.create(key: "V/1Min/OHLCV", columns: zip(c.names, c.columns).map { ColumnSchema($0, $1.wireType) }, variableLength: true)
        await assertThrows(try await SchemaGuard(client: self.client).write(try WriteDataSet(names: c.names, columns: c.columns, keys: [.init(key: "V/1Min/OHLCV", start: 0, count: 5)])), "variable-length")
        try await SchemaGuard(client: client, allowUnservableTimeframes: true).write(try WriteDataSet(names: c.names, columns: c.columns, keys: [.init(key: "A/4H/OHLCV", start: 0, count: 5)]))
    }

    func testTimeframeMapping() throws {
        XCTAssertEqual(try ["1s", "1m", "5m", "15m", "30m", "1h", "2h", "1d"].map { try Timeframe.forBinanceInterval($0) },
                       ["1Sec", "1Min", "5Min", "15Min", "30Min", "1H", "2H", "1D"])
        for interval in ["3m", "4h", "6h", "8h", "12h", "3d", "1w", "1mo"] {
            XCTAssertThrowsError(try Timeframe.forBinanceInterval(interval), interval)
        }
        XCTAssertEqual(try Timeframe.forBinanceInterval("4h", allowUnservable: true), "4H")
        XCTAssertEqual(Timeframe.seconds("15Min"), 900)
    }

    // MARK: - Errors

    func assertThrows(_ body: @autoclosure () async throws -> Void, _ text: String, file: StaticString = #filePath, line: UInt = #line) async {
        do {
            try await body()
            XCTFail("expected an error containing \"\(text)\"", file: file, line: line)
        } catch {
            XCTAssertTrue("\(error)".contains(text), "\(error)", file: file, line: line)
        }
    }

    func testServerErrorsBecomeTypedErrorsWithTheServersText() async throws {
        let c = columns(seed: 1, n: 5, float64: false, extra: false)
        let ds = try WriteDataSet(names: c.names, columns: c.columns, keys: [.init(key: "BTCUSDT/1Min/OHLCV", start: 0, count: 5)])
        try await server.control(["fail_write": 1, "error": "open /data/BTCUSDT/1Min/OHLCV/2024.bin: no space left on device"])
        do {
            try await client.write(ds)
            XCTFail()
        } catch let MarketStoreError.refused(method, keys, message) {
            XCTAssertEqual(method, "DataService.Write")
            XCTAssertEqual(keys, ["BTCUSDT/1Min/OHLCV"])
            XCTAssertEqual(message, "open /data/BTCUSDT/1Min/OHLCV/2024.bin: no space left on device")
        }
        // An Epoch column that is not Epoch (i8) never reaches the server (the real one answers
        // "unexpected data type for Epoch column", or stores nonsense under another name).
        var names = c.names
        names[0] = "Time"
        XCTAssertThrowsError(try WriteDataSet(names: names, columns: c.columns, keys: [.init(key: "BTCUSDT/1Min/OHLCV", start: 0, count: 5)])) {
            XCTAssertTrue("\($0)".contains("the first column must be Epoch (i8), not Time"), "\($0)")
        }
        var floatEpoch = c.columns
        floatEpoch[0] = .float64([1, 2, 3, 4, 5])
        XCTAssertThrowsError(try WriteDataSet(names: c.names, columns: floatEpoch, keys: [.init(key: "BTCUSDT/1Min/OHLCV", start: 0, count: 5)])) {
            XCTAssertTrue("\($0)".contains("the first column must be Epoch (i8), not Epoch (f8)"), "\($0)")
        }
        // The real server's own refusals, against the bucket the first valid write creates.
        try await client.write(ds)
        var extra = c
        extra.names.append("Extra")
        extra.columns.append(.float32([1, 2, 3, 4, 5]))
        await assertThrows(try await self.client.write(try WriteDataSet(names: extra.names, columns: extra.columns, keys: [.init(key: "BTCUSDT/1Min/OHLCV", start: 0, count: 5)])),
                           "unable to match data columns ([{Epoch INT64} {Open FLOAT32}")
        // The real server's text (utils/io/keytypes.go) starts with "error: ".
        await assertThrows(try await self.client.write(try WriteDataSet(names: c.names, columns: c.columns, keys: [.init(key: "BTCUSDT/1min/OHLCV", start: 0, count: 5)])),
                           "refused for BTCUSDT/1min/OHLCV: error: Unable to get timeframe from key")
        await assertThrows(_ = try await self.client.query(symbols: ["BTCUSDT"], timeframe: "4H", attributeGroup: "OHLCV"), "no files returned from query parse")
        await assertThrows(_ = try await self.client.query(symbols: ["BTCUSDT"], timeframe: "1S", attributeGroup: "OHLCV"), "timeframe not found in \"1S\"")
        await assertThrows(_ = try await self.client.call("DataService.Nope", params: nil), "can't find method \"DataService.Nope\"")
        await assertThrows(try await self.client.destroy(key: "NOPE/1Min/OHLCV"), "Unable to find level item: NOPE")
        let missing = try await client.getInfo("NOPE/1Min/OHLCV")
        XCTAssertNil(missing)
        let info = try await client.getInfo("BTCUSDT/1Min/OHLCV")
        XCTAssertEqual(info?.columns.map(\.description), ["Epoch:i8", "Open:f4", "High:f4", "Low:f4", "Close:f4", "Volume:f4"])
        XCTAssertEqual(info?.timeframeSeconds, 60)
        let symbols = try await client.listSymbols()
        XCTAssertEqual(symbols, ["BTCUSDT"])
        let keys = try await client.listSymbols(format: "tbk")
        XCTAssertEqual(keys, ["BTCUSDT/1Min/OHLCV"])
    }

    /// Variable-length buckets as the real server keeps them (alpacahq/marketstore v4 executor):
    /// records append (the same write twice is twice the records), Nanoseconds is the records'
    /// time, not a column of the bucket, and comes back last, a second's records come back by
    /// time with equal times in write order, and in a 1Sec bucket µs and ns come back exactly.
    func testVariableLengthBucketsAppendAndKeepTheirNanoseconds() async throws {
        let key = "TRDUSDT/1Sec/TRADES"
        func write(_ epochs: [Int64], _ nanos: [Int32], ids: [Int64]) async throws {
            let dataset = try WriteDataSet.concatenating([(key, ["Epoch", "Price", "TradeID", "IsBuyerMaker", "Nanoseconds"],
                                                          [.int64(epochs), .float64(ids.map { Double($0) / 4 }), .int64(ids),
                                                           .int8(ids.map { Int8($0 % 2) }), .int32(nanos)])])
            try await client.write(dataset, variableLength: true)
        }
        let t: Int64 = 1_735_689_600
        try await write([t, t, t + 1], [999_999_000, 10_866_000, 1], ids: [3, 1, 4])
        try await write([t, t], [10_866_000, 500_000_000], ids: [1, 2])  // trade 1 again, and a later-written earlier record
        let info = try await client.getInfo(key)
        XCTAssertEqual(info?.variableLength, true)
        XCTAssertEqual(info?.columns.map(\.name), ["Epoch", "Price", "TradeID", "IsBuyerMaker"], "Nanoseconds is not stored as a column")
        let results = try await client.query(symbols: ["TRDUSDT"], timeframe: "1Sec", attributeGroup: "TRADES")
        let back = try XCTUnwrap(results.first)
        XCTAssertEqual(back.names, ["Epoch", "Price", "TradeID", "IsBuyerMaker", "Nanoseconds"])
        XCTAssertEqual(back.epochs, [t, t, t, t, t + 1])
        XCTAssertEqual(back.columns[2], .int64([1, 1, 2, 3, 4]), "appended: trade 1 twice; by time, equal times in write order")
        XCTAssertEqual(back.columns[4], .int32([10_866_000, 10_866_000, 500_000_000, 999_999_000, 1]))
        XCTAssertEqual(back.columns[3], .uint8([1, 1, 0, 1, 0]), "an i1 column comes back typed u1, as from the real server")
        XCTAssertEqual(back.columns[1], .float64([0.25, 0.25, 0.5, 0.75, 1]))
        // A Nanoseconds column that is not i4 is refused, as the server's GetTime does.
        let wrong = try WriteDataSet.concatenating([(key, ["Epoch", "Price", "TradeID", "IsBuyerMaker", "Nanoseconds"],
                                                    [.int64([t]), .float64([1]), .int64([9]), .int8([0]), .int64([5])])])
        do {
            try await client.write(wrong, variableLength: true)
            XCTFail("an i8 Nanoseconds column was accepted")
        } catch {
            XCTAssertTrue("\(error)".contains("unexpected data type for Nanoseconds column"), "\(error)")
        }
    }

    /// A query's `to` is a whole second, its records included: the real server ends the range at
    /// epoch_end + epoch_end_nanos and cuts the records after that time, so without the nanoseconds
    /// a read of seconds [t, t + 1] lost t + 1's sub-second trades (reconciliation would append them
    /// again, and verify counted them missing). Recorded in Tests/contracts/variable_length.real.json.
    func testARangeOfSecondsIncludesItsLastSecondsSubSecondRecords() async throws {
        let key = "SUBUSDT/1Sec/TRADES"
        let t: Int64 = 1_735_689_600
        let dataset = try WriteDataSet.concatenating([(key, ["Epoch", "Price", "TradeID", "Nanoseconds"],
                                                      [.int64([t, t + 1, t + 1, t + 2]), .float64([1, 2, 3, 4]), .int64([1, 2, 3, 4]),
                                                       .int32([500_000_000, 0, 600_000_000, 1])])])
        try await client.write(dataset, variableLength: true)
        let back = try await client.query(symbols: ["SUBUSDT"], timeframe: "1Sec", attributeGroup: "TRADES", from: t, to: t + 1)
        XCTAssertEqual(back.first?.columns[2], .int64([1, 2, 3]), "every record of seconds t and t + 1")
        let guarded = try await SchemaGuard(client: client).records(key: key, from: t + 1, to: t + 1)
        XCTAssertEqual(guarded?.columns[2], .int64([2, 3]))
        let empty = try await SchemaGuard(client: client).records(key: key, from: t + 5, to: t + 9)
        XCTAssertEqual(empty?.count, 0, "a window of the key's year with nothing in it is empty, not absent")
    }

    /// The schema guard's append path: a new key becomes a variable-length bucket and its records
    /// read back by seconds; a key that exists as a fixed-length bucket is refused before any
    /// record is sent (its record type would win silently), naming the key and why.
    func testTheGuardAppendsToVariableLengthBucketsAndRefusesFixedOnes() async throws {
        let guarded = SchemaGuard(client: client)
        let t: Int64 = 1_735_689_600
        let names = ["Epoch", "Price", "TradeID", "Nanoseconds"]
        func trades(_ key: String) throws -> WriteDataSet {
            try WriteDataSet.concatenating([(key, names, [.int64([t, t, t + 2]), .float64([1.5, 2.5, 3.5]), .int64([7, 8, 9]), .int32([5, 6, 7])])])
        }
        try await guarded.append(try trades("ABCUSDT/1Sec/TRADES"))
        let info = try await client.getInfo("ABCUSDT/1Sec/TRADES")
        XCTAssertEqual(info?.variableLength, true)
        let records = try await guarded.records(key: "ABCUSDT/1Sec/TRADES", from: t, to: t + 1)
        XCTAssertEqual(records?.columns[2], .int64([7, 8]), "the records of the seconds asked")
        let missing = try await guarded.records(key: "NOPEUSDT/1Sec/TRADES", from: t, to: t)
        XCTAssertNil(missing)

        try await client.create(key: "FIXUSDT/1Sec/TRADES", columns: [ColumnSchema("Price", "f8"), ColumnSchema("TradeID", "i8")])
        do {
            try await guarded.append(try trades("FIXUSDT/1Sec/TRADES"))
            XCTFail("a fixed-length bucket took trades")
        } catch let MarketStoreError.schemaMismatch(key, _, _, reason) {
            XCTAssertEqual(key, "FIXUSDT/1Sec/TRADES")
            XCTAssertTrue(reason.contains("fixed-length"), reason)
        }
        let fixed = try await guarded.records(key: "FIXUSDT/1Sec/TRADES", from: t, to: t + 2)
        XCTAssertEqual(fixed?.count, 0, "nothing written to it")
    }

    /// Appending to a column grows its array in place: with spare capacity the storage does not
    /// move (a copy per append made requests of many batches quadratic).
    func testColumnAppendDoesNotCopyTheColumn() {
        for var column in [ColumnValues.float32([]), .float64([]), .int64([]), .int32([]), .int8([]), .uint8([])] {
            let size = ["f4": 4, "f8": 8, "i8": 8, "i4": 4, "i1": 1, "u1": 1][column.wireType]!
            column.append(contentsOf: column.slice(0..<0))
            var grown = column
            // Give it room: 1,000 values, then trim back to 1 while keeping the capacity.
            grown.append(contentsOf: ColumnValues(wireType: column.wireType, bytes: [UInt8](repeating: 0, count: size * 1000))!)
            switch grown {
            case var .float32(v): v.removeLast(999); grown = .float32(v)
            case var .float64(v): v.removeLast(999); grown = .float64(v)
            case var .int64(v): v.removeLast(999); grown = .int64(v)
            case var .int32(v): v.removeLast(999); grown = .int32(v)
            case var .int8(v): v.removeLast(999); grown = .int8(v)
            case var .uint8(v): v.removeLast(999); grown = .uint8(v)
            }
            // A copy is made while the old storage is alive, so it lands elsewhere: the address is
            // compared after every single append.
            for _ in 0..<100 {
                let before = grown.withUnsafeBytes { $0.baseAddress }
                grown.append(contentsOf: ColumnValues(wireType: column.wireType, bytes: [UInt8](repeating: 1, count: size))!)
                XCTAssertEqual(grown.withUnsafeBytes { $0.baseAddress }, before, "\(column.wireType): the storage moved, so it was copied")
            }
            XCTAssertEqual(grown.count, 101)
        }
    }

    /// The answers as the real server (v4.1.23, frontend/write.go) shapes them, read raw: GetInfo
    /// of a missing key carries zero values, a nil DSV and the error; a found key has an EMPTY
    /// error string (not nil); Create and Destroy append one {"error": "", "version"} per
    /// successful request (Write appends nothing on success).
    func testRawAnswersHaveTheRealServersShape() async throws {
        func responses(_ method: String, _ key: String, _ extra: KeyValuePairs<String, MsgPackValue> = [:]) async throws -> [MsgPackValue] {
            let request = MsgPackValue.map([.init(.string("key"), .string(key))] + extra.map { .init(.string($0.key), $0.value) })
            let result = try await client.call(method, params: .object(["requests": [request]]))
            return try XCTUnwrap(result["responses"]?.arrayValue, "\(method): \(result)")
        }
        let missing = try await responses("DataService.GetInfo", "NOPE/1Min/OHLCV")
        XCTAssertEqual(missing.count, 1)
        XCTAssertEqual(missing[0]["LatestYear"]?.int64Value, 0)
        XCTAssertEqual(missing[0]["TimeFrame"]?.int64Value, 0)
        XCTAssertEqual(missing[0]["RecordType"]?.int64Value, 0)
        XCTAssertEqual(missing[0]["DSV"]?.isNull, true)
        let error = missing[0]["ServerResp"]?["error"]?.stringValue ?? ""
        XCTAssertTrue(error.hasPrefix("unable to get info about key NOPE/1Min/OHLCV: directory path ") && error.hasSuffix("/NOPE/1Min/OHLCV/1970.bin not found in catalog"), error)
        XCTAssertEqual(missing[0]["ServerResp"]?["version"]?.stringValue?.count, 40)

        let created = try await responses("DataService.Create", "NEW/1Min/OHLCV:Symbol/Timeframe/AttributeGroup",
                                          ["column_names": .array([.string("Close")]), "column_types": .array([.string("f4")]), "is_variable_length": .bool(false)])
        XCTAssertEqual(created.map { $0["error"]?.stringValue }, [""])
        let found = try await responses("DataService.GetInfo", "NEW/1Min/OHLCV")
        XCTAssertEqual(found[0]["ServerResp"]?["error"]?.stringValue, "", "a found key's error is an empty string")
        XCTAssertEqual(found[0]["DSV"]?.arrayValue?.count, 2)
        let destroyed = try await responses("DataService.Destroy", "NEW/1Min/OHLCV")
        XCTAssertEqual(destroyed.map { $0["error"]?.stringValue }, [""])
        XCTAssertEqual(destroyed.first?["version"]?.stringValue?.count, 40)
        let badTimeframe = try await responses("DataService.Create", "X/1min/OHLCV:Symbol/Timeframe/AttributeGroup",
                                               ["column_names": .array([.string("Close")]), "column_types": .array([.string("f4")])])
        XCTAssertEqual(badTimeframe.map { $0["error"]?.stringValue }, ["error: Unable to get timeframe from key"])
        // The typed client reads all of these as they are meant.
        try await client.create(key: "NEW/1Min/OHLCV", columns: [ColumnSchema("Close", "f4")])
        try await client.destroy(key: "NEW/1Min/OHLCV")
        let gone = try await client.getInfo("NEW/1Min/OHLCV")
        XCTAssertNil(gone)
    }

    func testEmptyBodiesClosedConnectionsAndNoServerAreFailures() async throws {
        let c = columns(seed: 1, n: 5, float64: false, extra: false)
        let ds = try WriteDataSet(names: c.names, columns: c.columns, keys: [.init(key: "BTCUSDT/1Min/OHLCV", start: 0, count: 5)])
        try await server.control(["empty_write": 1])
        await assertThrows(try await self.client.write(ds), "empty body")
        try await server.control(["garbage_write": 1])
        await assertThrows(try await self.client.write(ds), "not a valid RPC response: msgpack: unsupported type byte 0xc1 at byte 0")
        // libcurl re-sends a request once when a kept-alive connection closes before any answer
        // (harmless: writes to fixed-length buckets are idempotent), so drop two in a row.
        try await server.control(["drop_write": 1])
        try await server.control(["drop_write": 2])
        do {
            try await client.write(ds)
            XCTFail()
        } catch let MarketStoreError.transport(e) {
            XCTAssertEqual(e.code, 52, "curl: empty reply from server")
        }
        try await server.control(["delay_write": 1, "delay": 3])
        let impatient = MarketStoreClient(url: server.url, timeouts: .init(connect: 1, total: 1))
        do {
            try await impatient.write(ds)
            XCTFail()
        } catch let MarketStoreError.transport(e) {
            XCTAssertTrue(e.isTimeout, "\(e)")
        }
        try await client.write(ds)  // the connection recovers
        server.stop()
        await assertThrows(try await self.client.write(ds), "MarketStore unreachable")
    }

    func testHTTPLevelBehaviourOfTheServer() async throws {
        let session = CurlSession()
        let wrongType = try await session.perform(method: "POST", url: server.url, headers: ["Content-Type: text/plain"], body: [1])
        XCTAssertEqual(wrongType.status, 415)
        XCTAssertEqual(String(decoding: wrongType.body, as: UTF8.self), "rpc: unrecognized Content-Type: text/plain\n")
        let get = try await session.perform(method: "GET", url: server.url)
        XCTAssertEqual(get.status, 405)
        XCTAssertNotNil(get.headers["marketstore-version"])
        let junk = try await session.perform(method: "POST", url: server.url, headers: ["Content-Type: application/x-msgpack"], body: [0xC1])
        XCTAssertEqual(junk.status, 200)
        XCTAssertEqual(junk.body, [], "undecodable msgpack: an empty 200")
        // A range past the data makes the real server panic and close the connection.
        var w = MsgPackWriter()
        w.write(.object(["method": "DataService.Write", "id": "1", "jsonrpc": "2.0", "params": .object(["requests": [.object(["dataset": .object([
            "types": ["i8"], "names": ["Epoch"], "data": [.binary([UInt8](repeating: 0, count: 8))], "length": 1,
            "startindex": .object(["A/1Min/B": 0]), "lengths": .object(["A/1Min/B": 5]),
        ])])]])]))
        do {
            _ = try await session.perform(method: "POST", url: server.url, headers: ["Content-Type: application/x-msgpack"], body: w.bytes)
            XCTFail("the connection must be closed")
        } catch let e as TransportError {
            XCTAssertEqual(e.code, 52)
        }
    }

    func testDataSetsAreCheckedBeforeSending() {
        let e: ColumnValues = .int64([1, 2, 3])
        let f: ColumnValues = .float32([1, 2, 3])
        XCTAssertThrowsError(try WriteDataSet(names: ["Epoch", "Open"], columns: [e, f], keys: [.init(key: "A/1Min/B", start: 1, count: 3)])) {
            XCTAssertTrue("\($0)".contains("covers rows 1..<4 of 3"), "\($0)")
        }
        XCTAssertThrowsError(try WriteDataSet(names: ["Epoch", "Open"], columns: [e, f], keys: [.init(key: "A/1Min", start: 0, count: 3)])) {
            XCTAssertTrue("\($0)".contains("is not SYMBOL/Timeframe/AttributeGroup"), "\($0)")
        }
        XCTAssertThrowsError(try WriteDataSet(names: ["Open", "Epoch"], columns: [f, e], keys: []))
        XCTAssertThrowsError(try WriteDataSet(names: ["Epoch", "Open"], columns: [e, .float32([1])], keys: []))
        XCTAssertThrowsError(try WriteDataSet(names: ["Epoch", "Open"], columns: [e, f], keys: [.init(key: "A/1Min/B", start: 0, count: 2), .init(key: "C/1Min/B", start: 1, count: 2)])) {
            XCTAssertTrue("\($0)".contains("overlap"), "\($0)")
        }
    }
}

/// Cancelling the task that waits for a transfer ends the transfer: a stop reaches a request
/// to a server that never answers within a second, not at its 20 s low-speed limit.
final class CurlCancellationTests: XCTestCase {
    func testCancellingTheTaskEndsAStalledTransfer() async throws {
        try await assertCancellingEndsAStalledTransfer(CurlSession())
    }

    /// The same for a session whose transfers run on a multi handle (the downloads' HTTP/2
    /// transport); its request body is copied, as the transfer outlives the call.
    func testCancellingTheTaskEndsAStalledTransferOnAMultiHandle() async throws {
        try await assertCancellingEndsAStalledTransfer(CurlSession(multi: CurlMulti()))
    }

    func assertCancellingEndsAStalledTransfer(_ session: CurlSession) async throws {
        let silent = try ServerProcess.required(script: "Tests/servers/silent_server.py")
        defer { silent.stop() }
        let started = ContinuousClock.now
        let request = Task { try await session.perform(method: "POST", url: silent.url, body: Array(repeating: 7, count: 1000)) }
        try await Task.sleep(nanoseconds: 300_000_000)
        request.cancel()
        let result = await request.result
        let took = ContinuousClock.now - started
        XCTAssertLessThan(took, .seconds(3), "ended \(took) after the start")
        switch result {
        case .success(let response): XCTFail("a silent server answered \(response.status)")
        case .failure(let error): XCTAssertTrue(error is CancellationError, "\(error)")
        }
        // The session is usable afterwards: a transfer that is not cancelled runs to its end.
        let marketstore = try MarketStoreTestServer()
        defer { marketstore.server.stop() }
        let answer = try await session.perform(method: "GET", url: marketstore.url.replacingOccurrences(of: "/rpc", with: "/"))
        XCTAssertGreaterThan(answer.status, 0)
    }
}
