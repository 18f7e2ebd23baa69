import Foundation
import TestSupport
import XCTest
@testable import MsgPack

final class MsgPackTests: XCTestCase {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let captures = (ProcessInfo.processInfo.environment["BINANCE_IMPORT_SHARED"].map { URL(fileURLWithPath: $0) }
        ?? repoRoot.deletingLastPathComponent().appendingPathComponent("shared")).appendingPathComponent("marketstore/captures")

    func captureNames() throws -> [String] {
        guard FileManager.default.fileExists(atPath: Self.captures.path) else {
            throw missing("../shared/marketstore/captures is absent (looked in \(Self.captures.path))")
        }
        return try FileManager.default.contentsOfDirectory(atPath: Self.captures.path)
            .filter { $0.hasSuffix(".msgpack") }.map { String($0.dropLast(".msgpack".count)) }.sorted()
    }

    /// Every captured body decodes; re-encoding gives the very same bytes; and an independent
    /// decoder (Python's msgpack) reads both our re-encoding and the structure of `.repr.txt` alike.
    func testCapturesDecodeAndReencodeToTheSameStructure() throws {
        let names = try captureNames()
        XCTAssertEqual(names.count, 4)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("msgpack-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for name in names {
            let body = try [UInt8](Data(contentsOf: Self.captures.appendingPathComponent(name + ".msgpack")))
            let value = try MsgPackReader.decode(body)
            let encoded = MsgPackWriter.encode(value)
            if name.hasSuffix("request_body") {  // pymarketstore's encoder uses the shortest forms, as ours does
                XCTAssertEqual(encoded, body, "\(name): re-encoding gives the captured bytes")
            }
            XCTAssertEqual(try MsgPackReader.decode(encoded), value)
            let out = dir.appendingPathComponent(name + ".msgpack")
            try Data(encoded).write(to: out)
            let check = Process()
            check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            check.arguments = ["python3", Self.repoRoot.appendingPathComponent("Tests/helpers/msgpack_capture_check.py").path,
                               Self.captures.appendingPathComponent(name + ".repr.txt").path, out.path]
            try check.run()
            check.waitUntilExit()
            XCTAssertEqual(check.terminationStatus, 0, "\(name): our bytes decode to the structure of .repr.txt")
        }
        let write = try MsgPackReader.decode([UInt8](Data(contentsOf: Self.captures.appendingPathComponent("write_request_body.msgpack"))))
        XCTAssertEqual(write["method"], "DataService.Write")
        let dataset = write["params"]?["requests"]?.arrayValue?.first?["dataset"]
        XCTAssertEqual(dataset?["names"], ["Epoch", "Open", "High", "Low", "Close", "Volume"])
        XCTAssertEqual(dataset?["data"]?.arrayValue?.first?.binaryValue?.count, 40)
    }

    func testRoundTripOfEveryTypeAndWidth() throws {
        let values: [MsgPackValue] = [
            nil, true, false, 0, 127, 128, 255, 256, 65535, 65536, .uint(UInt64(UInt32.max) + 1), .uint(.max),
            -1, -32, -33, -128, -129, -32768, -32769, .int(Int64(Int32.min) - 1), .int(.min),
            .float32(1.5), .float32(-.infinity), .float64(.pi), .float64(-0.0),
            "", "é", .string(String(repeating: "x", count: 31)), .string(String(repeating: "x", count: 32)),
            .string(String(repeating: "y", count: 300)), .string(String(repeating: "z", count: 70000)),
            .binary([]), .binary([1, 2, 3]), .binary([UInt8](repeating: 7, count: 300)), .binary([UInt8](repeating: 9, count: 70000)),
            .array([]), .array((0..<20).map { .uint(UInt64($0)) }), .array((0..<70000).map { _ in nil }),
            .object(["a": 1, "b": ["c": [1, 2]].isEmpty ? nil : .object(["c": [1, 2]])]),
            .map((0..<20).map { .init(.uint(UInt64($0)), "v") }),
        ]
        for v in values {
            XCTAssertEqual(try MsgPackReader.decode(MsgPackWriter.encode(v)), v, "\(v)".prefix(80).description)
        }
        XCTAssertEqual(MsgPackWriter.encode(300), [0xCD, 0x01, 0x2C])
        XCTAssertEqual(MsgPackWriter.encode(-5), [0xFB])
        var w = MsgPackWriter()
        w.writeBinary(column: [Float(1), 2])
        XCTAssertEqual(w.bytes, [0xC4, 8, 0, 0, 0x80, 0x3F, 0, 0, 0, 0x40], "a column goes on the wire as its little-endian bytes")
    }

    func assertDecodeError(_ bytes: [UInt8], _ reason: MsgPackDecodeError.Reason, offset: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try MsgPackReader.decode(bytes), file: file, line: line) { error in
            XCTAssertEqual(error as? MsgPackDecodeError, MsgPackDecodeError(reason: reason, offset: offset), file: file, line: line)
        }
    }

    func testMalformedInputThrowsWithTheOffset() {
        assertDecodeError([], .empty, offset: 0)
        assertDecodeError([0x92, 0x01], .truncated(needed: 1), offset: 0)
        assertDecodeError([0x92, 0x01, 0x92], .truncated(needed: 2), offset: 2)
        assertDecodeError([0xCD, 0x01], .truncated(needed: 1), offset: 1)
        assertDecodeError([0xC1], .unsupportedType(0xC1), offset: 0)
        assertDecodeError([0x91, 0xD4, 0x01, 0x02], .unsupportedType(0xD4), offset: 1)  // ext types are not MarketStore's
        assertDecodeError([0xA2, 0xC3, 0x28], .invalidUTF8, offset: 0)
        assertDecodeError([0x01, 0x02], .trailingBytes(count: 1), offset: 1)
        // A count far beyond the body is refused before anything is allocated.
        assertDecodeError([0xDD, 0x00, 0xFF, 0xFF, 0xFF, 0x01], .truncated(needed: 0xFF_FFFE), offset: 0)
        assertDecodeError([0xDF, 0x00, 0xFF, 0xFF, 0xFF], .truncated(needed: 0x1FF_FFFE), offset: 0)
        assertDecodeError([0xDD, 0x7F, 0xFF, 0xFF, 0xFF], .tooLarge(count: 0x7FFF_FFFF, limit: 1 << 30), offset: 0)
        assertDecodeError([0xC6, 0xFF, 0xFF, 0xFF, 0xFF], .tooLarge(count: 0xFFFF_FFFF, limit: 1 << 30), offset: 0)
        assertDecodeError([UInt8](repeating: 0x91, count: 100) + [0xC0], .tooDeep(limit: 64), offset: 65)
    }

    /// 200,000 mutated and random bodies: every one decodes or throws a MsgPackDecodeError.
    func testFuzzedInputNeverCrashesOrHangs() throws {
        var seeds: [[UInt8]] = [MsgPackWriter.encode(.object(["method": "DataService.Write", "id": "1", "params": .object(["requests": [.object(["dataset": .object(["data": [.binary([1, 2, 3, 4, 5, 6, 7, 8])], "length": 1, "names": ["Epoch"]])])]])]))]
        if let names = try? captureNames() {
            seeds += try names.map { try [UInt8](Data(contentsOf: Self.captures.appendingPathComponent($0 + ".msgpack"))) }
        }
        var rng = SystemRandomNumberGenerator()
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 11 ^ (state << 7)
        }
        _ = rng
        let started = Date()
        var decoded = 0, refused = 0
        for i in 0..<200_000 {
            var body: [UInt8]
            if i % 10 == 9 {
                body = (0..<Int(next() % 64)).map { _ in UInt8(truncatingIfNeeded: next()) }
            } else {
                body = seeds[Int(next() % UInt64(seeds.count))]
                for _ in 0..<Int(next() % 4 + 1) {
                    guard !body.isEmpty else { break }
                    let at = Int(next() % UInt64(body.count))
                    switch next() % 5 {
                    case 0: body[at] ^= UInt8(1 << (next() % 8))
                    case 1: body[at] = UInt8(truncatingIfNeeded: next())
                    case 2: body.removeSubrange(at...)
                    case 3: body.insert(UInt8(truncatingIfNeeded: next()), at: at)
                    default: body[at] = [0xDD, 0xDF, 0xC6, 0xDB, 0xCF, 0xD3][Int(next() % 6)]
                    }
                }
            }
            do {
                // What decodes is a value: written again it reads back the same (compared as
                // bytes, since a NaN is not equal to itself).
                let written = MsgPackWriter.encode(try MsgPackReader.decode(body))
                XCTAssertEqual(MsgPackWriter.encode(try MsgPackReader.decode(written)), written, "body \(i)")
                decoded += 1
            } catch let error as MsgPackDecodeError {
                // A refusal points into the body (or at its end, where more was needed).
                XCTAssertTrue((0...body.count).contains(error.offset), "body \(i): \(error) at \(error.offset) of \(body.count)")
                refused += 1
            }
        }
        // Both paths exercised: mutations that still decode, and refusals.
        XCTAssertGreaterThan(decoded, 1000)
        XCTAssertGreaterThan(refused, 100_000)
        XCTAssertLessThan(Date().timeIntervalSince(started), 120, "bounded time")
    }
}
