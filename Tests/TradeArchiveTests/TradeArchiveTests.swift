import Columnar
import Foundation
import KlineArchive
import TestSupport
import TradeArchive
import XCTest

/// The tick decoder on synthetic files of every layout Binance publishes (binance-public-data's
/// README; no real trade archive is in ../shared): values exact, times split into seconds and
/// nanoseconds, IDs checked for holes, the stream cut anywhere.
final class TradeArchiveTests: TemporaryDirectoryTestCase {
    /// Every chunk and the report of `csv` fed in pieces of `piece` bytes.
    func parse<F: KlineFloat>(_ csv: String, _ file: String, market: TradeMarket, as: F.Type = Double.self, piece: Int = 1 << 20,
                              chunkRows: Int = 100_000) throws -> (chunks: [TradeBatch<F>], report: TradeReport) {
        let name = try XCTUnwrap(TradeArchiveName(fileName: file))
        var chunks: [TradeBatch<F>] = []
        let parser = TradeCSVParser<F>(layout: TradeLayout(dataset: name.dataset, market: market), source: file, member: file, name: name,
                                       chunkRows: chunkRows) { chunks.append($0) }
        let bytes = Array(csv.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + piece)
            try bytes[start..<end].withUnsafeBytes { try parser.feed($0) }
            start = end
        }
        let report = try parser.finish()
        return (chunks, report)
    }

    func testSpotTradesInMillisecondsAreExactAndSplitIntoSecondsAndNanoseconds() throws {
        let csv = """
            51175358,17.80180000,5.69000000,101.29224200,1704067200010,True,True
            51175359,17.80190000,0.10000000,1.78019000,1704067200999,False,True
            51175360,0.00000001,123456.78900000,0.00123456,1704067201000,False,False

            """.replacingOccurrences(of: "\n\n", with: "\n")
        let (chunks, report) = try parse(csv, "LTCUSDT-trades-2024-01-01.zip", market: .spot)
        let b = try XCTUnwrap(chunks.first)
        XCTAssertEqual(chunks.count, 1)
        XCTAssertEqual(b.ids, [51175358, 51175359, 51175360])
        XCTAssertEqual(b.epochs, [1704067200, 1704067200, 1704067201])
        XCTAssertEqual(b.nanoseconds, [10_000_000, 999_000_000, 0])
        XCTAssertEqual(b.prices, [Double("17.80180000")!, Double("17.80190000")!, Double("0.00000001")!])
        XCTAssertEqual(b.quantities, [Double("5.69000000")!, Double("0.10000000")!, Double("123456.78900000")!])
        XCTAssertEqual(b.amounts, [Double("101.29224200")!, Double("1.78019000")!, Double("0.00123456")!])
        XCTAssertEqual(b.buyerMaker, [true, false, false])
        XCTAssertEqual(b.bestMatch, [true, true, false])
        XCTAssertTrue(b.firstTradeIDs.isEmpty)
        XCTAssertEqual(report.rows, 3)
        XCTAssertEqual(report.timeUnit, .milliseconds)
        XCTAssertFalse(report.hasHeader)
        XCTAssertEqual([report.firstID, report.lastID], [51175358, 51175360])
        XCTAssertEqual([report.firstMicros, report.lastMicros], [1704067200010000, 1704067201000000])
        XCTAssertEqual(report.holeCount, 0)
    }

    /// Spot files from 2025 on give microseconds: the sub-second part keeps all six digits.
    func testSpotMicrosecondsAndFloat32AreExact() throws {
        let csv = "7,0.20000001,50.12345678,10.02469138,1735689600010866,False,True\n8,3.40282e38,1,1,1735689600999999,True,True\n"
        let (chunks, report) = try parse(csv, "XUSDT-trades-2025-01-01.zip", market: .spot, as: Float.self)
        let b = try XCTUnwrap(chunks.first)
        XCTAssertEqual(report.timeUnit, .microseconds)
        XCTAssertEqual(b.epochs, [1735689600, 1735689600])
        XCTAssertEqual(b.nanoseconds, [10_866_000, 999_999_000])
        XCTAssertEqual(b.prices, [Float("0.20000001")!, Float("3.40282e38")!])
        XCTAssertEqual(b.quantities.first, Float("50.12345678")!)
    }

    /// Futures files: a header line (checked by name), lower-case booleans, no isBestMatch;
    /// COIN-M's third amount is in the base asset.
    func testFuturesTradesWithHeadersOnBothMarkets() throws {
        let um = "id,price,qty,quote_qty,time,is_buyer_maker\n100,42000.1,0.002,84.0002,1704067200000,true\n101,42000.2,0.001,42.0002,1704067200001,false\n"
        let (umChunks, umReport) = try parse(um, "BTCUSDT-trades-2024-01-01.zip", market: .um)
        XCTAssertTrue(umReport.hasHeader)
        XCTAssertEqual(umReport.rows, 2)
        XCTAssertEqual(umChunks.first?.buyerMaker, [true, false])
        XCTAssertEqual(umChunks.first?.bestMatch, [])
        let cm = "id,price,qty,base_qty,time,is_buyer_maker\n5,42000.1,3,0.00714284,1704067200000,True\n"
        let (cmChunks, _) = try parse(cm, "BTCUSD_PERP-trades-2024-01.zip", market: .cm)
        XCTAssertEqual(cmChunks.first?.amounts, [Double("0.00714284")!])
        // A futures file without its header (before about 2022) reads the same.
        let old = try parse(String(um.drop { $0 != "\n" }.dropFirst()), "BTCUSDT-trades-2021-01-01.zip", market: .um)
        XCTAssertFalse(old.report.hasHeader)
        XCTAssertEqual(old.chunks.first?.ids, [100, 101])
        XCTAssertEqual(old.report.outsidePeriod, 2, "2024 rows in a 2021 file are counted, kept")
    }

    /// Aggregates chain their trades: a hole in the aggregate IDs and one in the trade IDs they
    /// cover are each listed with the times around them.
    func testAggregateChainsAndTheirHoles() throws {
        let csv = """
            agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker
            10,1.5,2,100,104,1704067200000,true
            11,1.6,1,105,105,1704067200500,false
            13,1.7,1,106,107,1704067201000,false
            14,1.8,1,111,111,1704067202000,true

            """.replacingOccurrences(of: "\n\n", with: "\n")
        let (chunks, report) = try parse(csv, "ETHUSDT-aggTrades-2024-01-01.zip", market: .um)
        XCTAssertEqual(chunks.first?.firstTradeIDs, [100, 105, 106, 111])
        XCTAssertEqual(chunks.first?.lastTradeIDs, [104, 105, 107, 111])
        XCTAssertEqual(chunks.first?.amounts, [])
        XCTAssertEqual(report.holes, [
            IDHole(kind: "agg_trade_id", first: 12, last: 12, afterMicros: 1704067200500000, beforeMicros: 1704067201000000),
            IDHole(kind: "trade_id", first: 108, last: 110, afterMicros: 1704067201000000, beforeMicros: 1704067202000000),
        ])
        XCTAssertEqual([report.holeCount, Int(report.idsMissing)], [2, 4])
        XCTAssertEqual([report.firstTradeID, report.lastTradeID], [100, 111])
        // Spot aggregates: no header, isBestMatch.
        let spot = try parse("0,0.20000000,50.00000000,0,0,1735689600010866,False,True\n", "XUSDT-aggTrades-2025-01-01.zip", market: .spot)
        XCTAssertEqual(spot.chunks.first?.bestMatch, [true])
        XCTAssertEqual(spot.report.timeUnit, .microseconds)
    }

    /// Holes, repeats and steps back in raw trades: a hole is listed once, a repeated ID and a
    /// step back are counted and do not move the continuity line back.
    func testTradeIDHolesRepeatsAndStepsBack() throws {
        let rows = [(1, 0), (2, 1), (6, 2), (6, 3), (4, 4), (7, 5), (8, 4)].map { id, ms in "\(id),1,1,1,\(1704067200000 + ms),true" }
        let (chunks, report) = try parse(rows.joined(separator: "\n") + "\n", "AUSDT-trades-2024-01-01.zip", market: .um)
        XCTAssertEqual(chunks.first?.ids, [1, 2, 6, 6, 4, 7, 8], "every row is kept, in file order")
        XCTAssertEqual(report.holes, [IDHole(kind: "trade_id", first: 3, last: 5, afterMicros: 1704067200001000, beforeMicros: 1704067200002000)])
        XCTAssertEqual(report.outOfOrder, 2)
        XCTAssertEqual(report.timeBackwards, 1)
        XCTAssertEqual(report.lastID, 8)
    }

    /// The stream cut anywhere (one byte at a time included) and chunked anyhow gives the same
    /// rows and report; CRLF line ends and a missing last newline read the same.
    func testAnyCutOfTheStreamGivesTheSameRowsAndReport() throws {
        var lines = ["id,price,qty,quote_qty,time,is_buyer_maker"]
        for i in 0..<50 { lines.append("\(1000 + i),\(100 + i).\(i % 7)1,0.0\(i + 1),\(i).5,\(1704067200000 + Int64(i) * 137),\(i % 3 == 0 ? "true" : "false")") }
        let csv = lines.joined(separator: "\n") + "\n"
        let whole = try parse(csv, "BUSDT-trades-2024-01-01.zip", market: .um)
        func joined(_ chunks: [TradeBatch<Double>]) -> [String] {
            chunks.flatMap { b in (0..<b.count).map { "\(b.ids[$0]) \(b.epochs[$0]) \(b.nanoseconds[$0]) \(b.prices[$0]) \(b.quantities[$0]) \(b.amounts[$0]) \(b.buyerMaker[$0])" } }
        }
        for piece in [1, 2, 3, 7, 64, 1000] {
            for chunkRows in [1, 7, 50, 100_000] {
                let cut = try parse(csv, "BUSDT-trades-2024-01-01.zip", market: .um, piece: piece, chunkRows: chunkRows)
                XCTAssertEqual(joined(cut.chunks), joined(whole.chunks), "piece \(piece), chunk \(chunkRows)")
                XCTAssertEqual(cut.report, whole.report)
                XCTAssertEqual(cut.chunks.map(\.count).max(), min(chunkRows, 50))
            }
        }
        let crlf = try parse(csv.replacingOccurrences(of: "\n", with: "\r\n"), "BUSDT-trades-2024-01-01.zip", market: .um, piece: 5)
        XCTAssertEqual(joined(crlf.chunks), joined(whole.chunks))
        let unterminated = try parse(String(csv.dropLast()), "BUSDT-trades-2024-01-01.zip", market: .um, piece: 3)
        XCTAssertEqual(joined(unterminated.chunks), joined(whole.chunks))
    }

    /// Bad input is refused with the file, the line and the field named.
    func testMalformedFilesAreRefusedWithTheLineAndTheField() throws {
        let file = "CUSDT-trades-2024-01-01.zip"
        let good = "1,1.5,2,3,1704067200000,true"
        let cases: [(String, TradeMarket, String)] = [
            ("id,price,qty,quoteQty,time,is_buyer_maker\n\(good)\n", .um, "the header is \"id,price,qty,quoteQty,time,is_buyer_maker\", not the expected \"id,price,qty,quote_qty,time,is_buyer_maker\""),
            ("\(good)\n2,1.5,2,1704067200000,true\n", .um, "line 2: 5 fields, expected 6"),
            ("\(good),x\n", .um, "line 1: more than 6 fields"),
            ("\(good)\n2,1.5,2,3,1704067200000,yes\n", .um, "line 2: is_buyer_maker \"yes\" is not true or false"),
            ("\(good)\n2,1.5,2,3,1704067200000000,true\n", .um, "line 2: time 1704067200000000 is in microseconds where the rows before are in milliseconds"),
            ("\(good)\n2,1.5,2,3,170406720,true\n", .um, "line 2: time 170406720 is neither milliseconds (13 digits) nor microseconds (16)"),
            ("\(good)\n2,1.5e,2,3,1704067200000,true\n", .um, "line 2: price \"1.5e\" is not a number"),
            ("\(good)\n2,-1.5,2,3,1704067200000,true\n", .um, "line 2: price \"-1.5\" is not a number"),
            ("\(good)\n-2,1.5,2,3,1704067200000,true\n", .um, "line 2: id \"-2\" is not an ID"),
            ("\(good)\n\n\(good)\n", .um, "line 2: an empty line"),
            ("\(good)\n" + String(repeating: "9", count: 5000), .um, "line 2: longer than 4096 bytes"),
            ("1,1.5,2,3,1704067200000,true\n", .spot, "line 1: 6 fields, expected 7"),
        ]
        for (csv, market, message) in cases {
            for piece in [1, 1 << 20] {
                XCTAssertThrowsError(try parse(csv, file, market: market, piece: piece), message) { error in
                    XCTAssertTrue("\(error)".hasPrefix("\(file): "), "\(error)")
                    XCTAssertTrue("\(error)".contains(message), "\(error), not \(message)")
                }
            }
        }
        let agg = "1,1.5,2,9,8,1704067200000,true\n"
        XCTAssertThrowsError(try parse(agg, "CUSDT-aggTrades-2024-01-01.zip", market: .um)) { error in
            XCTAssertTrue("\(error)".contains("line 1: first_trade_id 9 is after last_trade_id 8"), "\(error)")
        }
    }

    /// An archive decodes as it inflates, in chunks, exactly as its CSV parses; a name that is not
    /// a tick archive's and a corrupt zip are refused by name.
    func testArchivesDecodeInChunksAndBadOnesAreRefused() throws {
        var rows: [String] = []
        for i in 0..<2500 { rows.append("\(i),\(1 + i % 100).\(i % 1000),0.\(i + 1),\(i).25,\(1704067200000 + Int64(i) * 20),\(i % 2 == 0 ? "True" : "False"),True") }
        let csv = rows.joined(separator: "\n") + "\n"
        let path = dir.appendingPathComponent("DUSDT-trades-2024-01-01.zip")
        try Data(ZipBuilder.single("DUSDT-trades-2024-01-01.csv", csv)).write(to: path)
        var chunks: [TradeBatch<Double>] = []
        let report = try TradeArchiveDecoder.decode(path: path.path, market: .spot, as: Double.self, chunkRows: 1000) { chunks.append($0) }
        XCTAssertEqual(chunks.map(\.count), [1000, 1000, 500])
        XCTAssertEqual(report.member, "DUSDT-trades-2024-01-01.csv")
        XCTAssertEqual(report.rows, 2500)
        let parsed = try parse(csv, "DUSDT-trades-2024-01-01.zip", market: .spot)
        XCTAssertEqual(chunks.flatMap(\.prices), parsed.chunks.flatMap(\.prices))
        XCTAssertEqual(chunks.flatMap(\.nanoseconds), parsed.chunks.flatMap(\.nanoseconds))

        let wrongName = dir.appendingPathComponent("DUSDT-1m-2024-01.zip")
        try Data(ZipBuilder.single("DUSDT-1m-2024-01.csv", csv)).write(to: wrongName)
        XCTAssertThrowsError(try TradeArchiveDecoder.decode(path: wrongName.path, market: .spot, as: Double.self) { _ in }) { error in
            XCTAssertTrue("\(error)".contains("not a trades or aggTrades archive name"), "\(error)")
        }
        var corrupt = ZipBuilder.single("DUSDT-trades-2024-01-02.csv", csv)
        corrupt[corrupt.count / 2] ^= 0xFF
        let corruptPath = dir.appendingPathComponent("DUSDT-trades-2024-01-02.zip")
        try Data(corrupt).write(to: corruptPath)
        XCTAssertThrowsError(try TradeArchiveDecoder.decode(path: corruptPath.path, market: .spot, as: Double.self) { _ in }) { error in
            guard case .zip = error as? TradeDecodeError else { return XCTFail("\(error)") }
        }
    }

    /// Seeded mutations of valid files of every layout, fed in random pieces: each decodes or is
    /// refused with a `TradeDecodeError`; none crashes (the quick paths read through pointers).
    func testMutatedInputNeverCrashes() throws {
        var random = SeededMutations(seed: 0x5EED_7AD3)
        let seeds: [(String, String, TradeMarket)] = [
            ("51175358,17.80180000,5.69000000,101.29224200,1735689600010866,True,True\n51175359,17.8019,0.1,1.78019,1735689600999999,False,True\n",
             "XUSDT-trades-2025-01-01.zip", .spot),
            ("id,price,qty,quote_qty,time,is_buyer_maker\n100,42000.1,0.002,84.0002,1704067200000,true\n101,42000.2,0.001,42.0002,1704067200001,false\n",
             "BTCUSDT-trades-2024-01-01.zip", .um),
            ("agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n10,1.5,2,100,104,1704067200000,true\n11,1.6,1,105,105,1704067200500,false\n",
             "ETHUSDT-aggTrades-2024-01-01.zip", .cm),
        ]
        var decoded = 0, refused = 0
        for i in 0..<3000 {
            let (csv, file, market) = seeds[i % seeds.count]
            var bytes = Array(csv.utf8)
            random.mutate(&bytes, most: 4)
            let name = try XCTUnwrap(TradeArchiveName(fileName: file))
            let parser = TradeCSVParser<Float>(layout: TradeLayout(dataset: name.dataset, market: market), source: file, member: file, name: name,
                                               chunkRows: 1 + random.next(3)) { _ in }
            do {
                var start = 0
                while start < bytes.count {
                    let end = min(bytes.count, start + 1 + random.next(17))
                    try bytes[start..<end].withUnsafeBytes { try parser.feed($0) }
                    start = end
                }
                _ = try parser.finish()
                decoded += 1
            } catch is TradeDecodeError {
                refused += 1
            }
        }
        XCTAssertGreaterThan(decoded, 100)
        XCTAssertGreaterThan(refused, 100)
    }

    func testArchiveNames() {
        XCTAssertEqual(TradeArchiveName(fileName: "data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2024-01.zip")?.period, ArchivePeriod(year: 2024, month: 1))
        XCTAssertEqual(TradeArchiveName(fileName: "BTCUSDT-aggTrades-2024-01-31.zip")?.dataset, .aggTrades)
        XCTAssertNil(TradeArchiveName(fileName: "BTCUSDT-trades-2024-13.zip"))
        XCTAssertNil(TradeArchiveName(fileName: "BTCUSDT-bookDepth-2024-01-01.zip"))
    }
}
