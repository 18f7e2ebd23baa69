import Columnar
import Foundation
import MarketStoreModel
import MsgPack
import TestSupport
import XCTest
@testable import MarketStore

/// pymarketstore (the real Python client) against the test server gives what the real server gave
/// (the captures), and the Swift client's Write body equals pymarketstore's for the same array.
final class PyMarketStoreContractTests: XCTestCase {
    func testContractWithPymarketstoreAndTheCaptures() async throws {
        let captures = MarketStoreTestServer.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/marketstore/captures")
        guard FileManager.default.fileExists(atPath: captures.path) else {
            throw missing("../shared/marketstore/captures is absent (looked in \(captures.path))")
        }
        // The captured dataset, as the Swift client would send it.
        let captured = try MsgPackReader.decode([UInt8](Data(contentsOf: captures.appendingPathComponent("write_request_body.msgpack"))))
        let ds = try XCTUnwrap(captured["params"]?["requests"]?.arrayValue?.first?["dataset"])
        let names = try XCTUnwrap(ds["names"]?.arrayValue?.compactMap(\.stringValue))
        let types = try XCTUnwrap(ds["types"]?.arrayValue?.compactMap(\.stringValue))
        let columns = try zip(types, ds["data"]!.arrayValue!).map { try XCTUnwrap(ColumnValues(wireType: $0, bytes: $1.binaryValue!)) }
        let dataset = try WriteDataSet(names: names, columns: columns, keys: [.init(key: "BTCUSDT/1Min/OHLCV", start: 0, count: columns[0].count)])
        let body = FileManager.default.temporaryDirectory.appendingPathComponent("swift-write-\(getpid()).msgpack")
        try Data(dataset.requestBody(id: "1")).write(to: body)
        XCTAssertEqual(try MsgPackReader.decode(dataset.requestBody(id: "1")), captured, "the same structure as pymarketstore's captured body")

        let server = try MarketStoreTestServer()
        defer { server.stop() }
        let result = try runPython(["Tests/helpers/pymarketstore_contract.py", server.url, captures.path, body.path])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output.components(separatedBy: "same:").count - 1, 10, result.output)
    }

    func runPython(_ args: [String]) throws -> (status: Int32, output: String) {
        try runCommand("/usr/bin/env", ["python3"] + args, directory: MarketStoreTestServer.repoRoot)
    }
}

/// The test server's variable-length buckets answer a scripted exchange (out-of-order and repeated
/// appends, windows and limits, 1Min ticks, record type either way round, a year boundary, destroy)
/// exactly as a real MarketStore v4.1.23 answered it (Tests/contracts/variable_length.real.json,
/// recorded with `variable_length_contract.py record` against a server built from the v4.1.23 tag).
final class VariableLengthContractTests: XCTestCase {
    func testTestServerAnswersAsTheRealServerRecorded() throws {
        let server = try MarketStoreTestServer()
        defer { server.stop() }
        let result = try runCommand("/usr/bin/env", ["python3", "Tests/helpers/variable_length_contract.py", "check", server.url,
                                                      "Tests/contracts/variable_length.real.json"],
                                    directory: MarketStoreTestServer.repoRoot)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("variable-length contract: ok"), result.output)
    }
}
