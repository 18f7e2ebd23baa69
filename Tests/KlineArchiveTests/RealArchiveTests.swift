import Foundation
import TestSupport
import XCTest
@testable import KlineArchive

/// Every real archive in ../shared/binance decodes to exactly what an independent Python reader
/// (zipfile + csv + numpy, Tests/helpers/reference_decode.py) gives: rows, epochs, and every value
/// bit for bit in float32 and float64.
final class RealArchiveTests: XCTestCase {
    struct Reference: Decodable {
        let rows: Int
        let time_unit: String
        let epochs: [Int64]
        let f4: [String: [UInt32]]
        let f8: [String: [UInt64]]
        let Trades: [Int64]
    }

    func reference(_ path: String) throws -> Reference {
        let script = TestPaths.repoRoot.appendingPathComponent("Tests/helpers/reference_decode.py").path
        let result = try runProcess("/usr/bin/env", ["python3", script, path])
        XCTAssertEqual(result.status, 0, "reference reader failed: \(result.stderr)")
        return try JSONDecoder().decode(Reference.self, from: result.stdout)
    }

    func testEveryRealKlineArchiveMatchesTheIndependentReader() throws {
        let dir = try TestPaths.sharedBinance()
        let archives = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".zip") }.sorted()
        XCTAssertEqual(archives.count, 5)
        for file in archives {
            let path = dir.appendingPathComponent(file).path
            let expected = try reference(path)
            for floatType in [FloatType.float32, .float64] {
                let (batch, report) = try KlineArchiveDecoder.decode(path: path, options: .init(columns: KlineColumn.allCases, floatType: floatType))
                let zlibDecode = try KlineArchiveDecoder.decode(path: path, options: .init(columns: KlineColumn.allCases, floatType: floatType, inflater: .zlib))
                XCTAssertEqual(zlibDecode.batch, batch, "\(file): zlib and ISA-L give the same rows")
                let swiftRows = try KlineArchiveDecoder.decode(path: path, options: .init(columns: KlineColumn.allCases, floatType: floatType, rowKernel: false))
                XCTAssertEqual(swiftRows.batch, batch, "\(file): the row kernel and the Swift path give the same rows")
                XCTAssertEqual(swiftRows.report, report, file)
                XCTAssertEqual(report.rows, expected.rows, file)
                XCTAssertEqual(report.rowsInFile, expected.rows, file)
                XCTAssertEqual(report.timeUnit, expected.time_unit, file)
                XCTAssertEqual(batch.epochs, expected.epochs, file)
                XCTAssertEqual(report.firstOpenTime, expected.epochs.first, file)
                XCTAssertEqual(report.lastOpenTime, expected.epochs.last, file)
                XCTAssertEqual(report.expectedRows, expected.rows, "\(file): a full day")
                XCTAssertEqual(report.anomalies, [], file)
                XCTAssertFalse(report.header)
                for (column, values) in batch.columns {
                    switch values {
                    case let .float32(v):
                        XCTAssertEqual(v.map(\.bitPattern), expected.f4[column.rawValue], "\(file) \(column) f4")
                    case let .float64(v):
                        XCTAssertEqual(v.map(\.bitPattern), expected.f8[column.rawValue], "\(file) \(column) f8")
                    case let .int64(v):
                        XCTAssertEqual(v, expected.Trades, "\(file) Trades")
                    case .int32, .int8, .uint8:
                        XCTFail("\(file) \(column): a kline column of type \(values.wireType)")
                    }
                }
            }
        }
    }

    func testMicrosecondFilesGiveEpochSeconds() throws {
        let path = try TestPaths.sharedBinance().appendingPathComponent("BTCUSDT-1h-2026-05-08.zip").path
        let (batch, report) = try KlineArchiveDecoder.decode(path: path)
        XCTAssertEqual(report.timeUnit, "us")
        XCTAssertEqual(batch.epochs.first, 1_778_198_400)  // 2026-05-08T00:00:00Z
        XCTAssertEqual(batch.epochs.last, 1_778_198_400 + 23 * 3600)
        XCTAssertEqual(report.periodStart, 1_778_198_400)
    }

    func testFundingRateArchiveIsRefusedAsNotKline() throws {
        let path = try TestPaths.sharedBinance().appendingPathComponent("non-kline/BTCUSDT-fundingRate-2026-04.zip").path
        for interval in [nil, KlineInterval("1h")] {
            XCTAssertThrowsError(try KlineArchiveDecoder.decode(path: path, options: .init(interval: interval))) { error in
                guard case KlineDecodeError.notKline = error else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".contains("not a kline archive"), "\(error)")
                XCTAssertTrue("\(error)".contains("BTCUSDT-fundingRate-2026-04.zip"), "\(error)")
            }
        }
    }

    /// The CLI's JSON has the documented fields, and a broken archive exits non-zero with the reason.
    func testInspectCommandJSONAndExitCodes() throws {
        let binary = TestPaths.productsDirectory.appendingPathComponent("binance-import").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw missing("binance-import is not built next to the tests (\(binary)); `make test` builds it")
        }
        let dir = try TestPaths.sharedBinance()
        let ok = try runProcess(binary, ["inspect", dir.appendingPathComponent("BTCUSDT-1m-2020-01-02.zip").path, "--json", "--head", "2"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let json = try JSONSerialization.jsonObject(with: ok.stdout) as! [String: Any]
        XCTAssertEqual(json["rows"] as? Int, 1440)
        XCTAssertEqual(json["first_open_time"] as? Int, 1_577_923_200)
        XCTAssertEqual(json["last_open_time"] as? Int, 1_577_923_200 + 1439 * 60)
        XCTAssertEqual(json["time_unit"] as? String, "ms")
        XCTAssertEqual(json["header"] as? Bool, false)
        XCTAssertEqual((json["anomalies"] as? [Any])?.count, 0)
        let head = json["head"] as! [[String: Any]]
        XCTAssertEqual(head.count, 2)
        XCTAssertEqual(head[0]["Open"] as? Double, Double(Float("7200.77")!))

        // A funding-rate archive is read by its own decoder (FuturesArchive): its report.
        let funding = try runProcess(binary, ["inspect", dir.appendingPathComponent("non-kline/BTCUSDT-fundingRate-2026-04.zip").path, "--json", "--head", "1"])
        XCTAssertEqual(funding.status, 0, funding.stderr)
        let fundingJSON = try XCTUnwrap(try JSONSerialization.jsonObject(with: funding.stdout) as? [String: Any], String(decoding: funding.stdout, as: UTF8.self))
        XCTAssertEqual(fundingJSON["dataset"] as? String, "fundingRate")
        XCTAssertEqual(fundingJSON["rows"] as? Int, 90)
        XCTAssertEqual((fundingJSON["head"] as? [[String: Any]])?.first?["Rate"] as? Double, Double("-0.00003449"))

        // Bytes that are not a zip, under a kline archive's name: exit 1 with the reason.
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent("BTCUSDT-1m-2024-01-\(getpid()).zip")
        try Data("not a zip".utf8).write(to: garbage)
        defer { try? FileManager.default.removeItem(at: garbage) }
        let bad = try runProcess(binary, ["inspect", garbage.path, "--json"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains(garbage.path), bad.stderr)

        let usage = try runProcess(binary, ["inspect", "x.zip", "--dtype", "float16"])
        XCTAssertEqual(usage.status, 2, usage.stderr)
    }
}

/// `inspect --json` prints valid JSON whatever happens (issue 32): the error object for an
/// archive that does not decode, and NaN (an empty metrics value) as null in `head`.
final class InspectJSONTests: XCTestCase {
    func testInspectJSONIsValidOnFailureAndWithEmptyValues() throws {
        let binary = TestPaths.productsDirectory.appendingPathComponent("binance-import").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw missing("binance-import is not built next to the tests (\(binary)); `make test` builds it")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-json-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let header = "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio"
        let metrics = dir.appendingPathComponent("BTCUSDT-metrics-2026-07-01.zip")
        try Data(ZipBuilder.single("BTCUSDT-metrics-2026-07-01.csv", header + "\n2026-07-01 00:00:00,BTCUSDT,1.5,2.5,,1.2,,0.9\n2026-07-01 00:05:00,BTCUSDT,1.5,2.5,0.1,1.2,nan,0.9\n")).write(to: metrics)
        let ok = try runProcess(binary, ["inspect", metrics.path, "--json", "--head", "5"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: ok.stdout) as? [String: Any], ok.stderr)
        let head = try XCTUnwrap(json["head"] as? [[String: Any]])
        XCTAssertEqual(head.count, 2)
        XCTAssertTrue(head[0]["CountTopTraderLongShortRatio"] is NSNull, "\(head[0])")
        XCTAssertEqual(head[0]["SumOpenInterest"] as? Double, 1.5)
        XCTAssertEqual([json["empty_values"] as? Int, json["not_a_number"] as? Int], [2, 1])

        let renamed = dir.appendingPathComponent("BTCUSDT-fundingRate-2026-01.zip")
        try Data(ZipBuilder.single("BTCUSDT-fundingRate-2026-01.csv", "calc_time,interval_hours,last_funding_rate\n1767225600000,8,0.0001\n")).write(to: renamed)
        let bad = try runProcess(binary, ["inspect", renamed.path, "--json"])
        XCTAssertEqual(bad.status, 1, bad.stderr)
        let error = try XCTUnwrap(try JSONSerialization.jsonObject(with: bad.stdout) as? [String: Any], "stdout: \(String(decoding: bad.stdout, as: UTF8.self))")
        XCTAssertEqual(error["exit_code"] as? Int, 1)
        XCTAssertTrue((error["error"] as? String)?.contains("the header is \"calc_time,interval_hours,last_funding_rate\"") == true, "\(error)")
        XCTAssertTrue(bad.stderr.contains(renamed.path), bad.stderr)
    }

    /// `inspect` on a trades archive: its market from its path (or --market), the ID range and
    /// holes, the first rows; the JSON error object when the columns are not the market's.
    func testInspectTradesShowsIDsHolesAndRows() throws {
        let binary = TestPaths.productsDirectory.appendingPathComponent("binance-import").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw missing("binance-import is not built next to the tests (\(binary)); `make test` builds it")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-trades-\(getpid())-\(UUID().uuidString.prefix(6))")
        let folder = dir.appendingPathComponent("data/futures/um/daily/aggTrades/BTCUSDT")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let csv = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
            + "7,42000.1,0.5,100,101,1704067200123,true\n8,42000.2,0.1,102,102,1704067200456,false\n9,42000.3,0.2,106,107,1704067201000,false\n"
        let archive = folder.appendingPathComponent("BTCUSDT-aggTrades-2024-01-01.zip")
        try Data(ZipBuilder.single("BTCUSDT-aggTrades-2024-01-01.csv", csv)).write(to: archive)
        let text = try runProcess(binary, ["inspect", archive.path, "--head", "1", "--dtype", "float64"])
        XCTAssertEqual(text.status, 0, text.stderr)
        let out = String(decoding: text.stdout, as: UTF8.self)
        for line in ["dataset: aggTrades (BTCUSDT, 2024-01-01, um)", "header: yes", "times in: milliseconds", "aggregate IDs: 7..9", "trade IDs: 100..107",
                     "hole: trade_id 103..105 (3 missing) between 2024-01-01T00:00:00.456000Z and 2024-01-01T00:00:01.000000Z",
                     "Epoch=1704067200 Nanoseconds=123000000 Price=42000.1 Qty=0.5 AggTradeID=7 FirstTradeID=100 LastTradeID=101 IsBuyerMaker=true"] {
            XCTAssertTrue(out.contains(line + "\n"), "\(line) in \(out)")
        }
        let strict = try runProcess(binary, ["inspect", archive.path, "--strict"])
        XCTAssertEqual(strict.status, 1, "a hole fails --strict")

        let spot = try runProcess(binary, ["inspect", archive.path, "--market", "spot", "--json"])
        XCTAssertEqual(spot.status, 1, spot.stderr)
        let error = try XCTUnwrap(try JSONSerialization.jsonObject(with: spot.stdout) as? [String: Any], spot.stderr)
        XCTAssertTrue((error["error"] as? String)?.contains("the header is \"agg_trade_id,") == true, "\(error)")
    }
}

/// A test that reads ../shared must fail on CI when it is absent (a CI machine without it would
/// otherwise pass by skipping): every such guard goes through `missing`, which skips only off CI.
final class SharedRequirementTests: XCTestCase {
    func testNoTestSkipsOnCIWhenSharedIsAbsent() throws {
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let files = try XCTUnwrap(FileManager.default.enumerator(atPath: tests.path)).compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") }
        var offenders: [String] = []
        for file in files {
            let text = try String(contentsOf: tests.appendingPathComponent(file), encoding: .utf8)
            for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            where line.contains("XCTSkip(\"" + "../shared") {
                offenders.append("\(file):\(n + 1)")
            }
        }
        XCTAssertEqual(offenders, [], "use missing(...), which fails on CI")
        let saved = ProcessInfo.processInfo.environment["CI"]
        setenv("CI", "true", 1)
        defer { if let saved { setenv("CI", saved, 1) } else { unsetenv("CI") } }
        XCTAssertFalse(missing("../shared is absent") is XCTSkip, "on CI the absence fails the test")
    }
}
