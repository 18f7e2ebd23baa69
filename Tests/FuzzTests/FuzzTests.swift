import Foundation
import TestSupport
import XCTest
@testable import KlineArchive
@testable import MsgPack

/// Seeded fuzzing of the three decoders that read untrusted bytes: the CSV parser, the zip
/// reader and the msgpack decoder. Every input must decode or throw the decoder's own error:
/// no crash, no hang (a time bound), no unbounded memory (peak RSS checked). FUZZ_ITERATIONS
/// sets the count (`make fuzz`: 1,000,000; `make test`: the default 20,000).
final class FuzzTests: XCTestCase {
    let iterations = Int(ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"] ?? "") ?? 20000
    var rng = SplitMix64(seed: UInt64(ProcessInfo.processInfo.environment["FUZZ_SEED"] ?? "") ?? 20_261_125)

    // A quiet minute of BTCUSDT, in the shape the row kernel takes (at most 7 integer digits).
    static let row = "1704067200000,42283.58000000,42312.65000000,42277.42000000,42304.80000000,105.38585700,1704067259999,4458327.60321360,1210,8.43086900,356666.22687120,0"

    /// `row` moved `minute` minutes on, close time too, as consecutive rows of a real file are:
    /// the row kernel takes only rows on the grid whose close time ends their minute.
    static func minuteRow(_ minute: Int) -> String {
        let openTime = 1_704_067_200_000 + 60_000 * minute
        return row.replacingOccurrences(of: "1704067200000", with: String(openTime))
            .replacingOccurrences(of: "1704067259999", with: String(openTime + 59_999))
    }

    func mutate(_ input: [UInt8], alphabet: [UInt8]) -> [UInt8] {
        var b = input
        for _ in 0..<Int(rng.next() % 6 + 1) {
            let at = b.isEmpty ? 0 : Int(rng.next() % UInt64(b.count))
            switch rng.next() % 6 {
            case 0 where !b.isEmpty: b[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
            case 1 where !b.isEmpty: b[at] ^= UInt8(1 << (rng.next() % 8))
            case 2: b.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
            case 3 where !b.isEmpty: b.remove(at: at)
            case 4 where !b.isEmpty: b.removeSubrange(at...)
            default:
                if !b.isEmpty { b.insert(contentsOf: b[at..<min(b.count, at + Int(rng.next() % 40))], at: Int(rng.next() % UInt64(b.count))) }
            }
        }
        return b
    }

    /// Runs `iterations` inputs: `attempt(i)` says whether input i decoded (true) or was refused
    /// with the decoder's own error (false); anything else it throws fails the test. Prints the
    /// counts and checks the memory bound.
    func fuzz(_ name: String, _ attempt: (Int) throws -> Bool) rethrows {
        var ok = 0, refused = 0
        let started = Date()
        for i in 0..<iterations {
            if try attempt(i) { ok += 1 } else { refused += 1 }
        }
        print("FUZZ \(name): \(ok + refused) inputs, \(ok) decoded, \(refused) refused with an error, \(String(format: "%.1f", Date().timeIntervalSince(started))) s, peak RSS \(peakRSS() / 1_048_576) MB")
        // The mutations must reach both outcomes, or the fuzz exercises one path only.
        XCTAssertGreaterThan(ok, 0, "\(name): no input decoded")
        XCTAssertGreaterThan(refused, 0, "\(name): no input refused")
        XCTAssertLessThan(peakRSS(), 512 << 20)
    }

    /// Each input is decoded twice: through the decoder's loop (fed in random small pieces, so lines
    /// straddle refills, or whole, so the row kernel runs; most rows take the common-row sweep) and
    /// line by line through the careful path alone. Both must give the same rows, report, or error.
    func testCSVParser() throws {
        let alphabet = Array("0123456789.,-+eE\r\n ".utf8) + [0, 0xFF, 0x80, UInt8(ascii: "a")]
        let seed = Array((0..<4).map(FuzzTests.minuteRow).joined(separator: "\n").utf8)
        func newParser() -> KlineCSVParser<Float> {
            KlineCSVParser<Float>(archive: "fuzz", columns: KlineColumn.allCases, intervalSeconds: 60,
                                  period: ArchivePeriod(year: 2024, month: 1, day: 1), reserve: 16)
        }
        struct Outcome: Equatable {
            var batch: KlineBatch?
            var report: KlineReport?
            var error: String?
        }
        func outcome(_ parser: KlineCSVParser<Float>, _ decode: (KlineCSVParser<Float>) throws -> [KlineBatch]) -> Outcome {
            do {
                let batches = try decode(parser)
                var r = KlineReport(archive: "fuzz", member: "fuzz", interval: "1m")
                parser.finishReport(into: &r)
                return Outcome(batch: batches.dropFirst().reduce(into: batches.first) { $0!.append($1) }, report: r)
            } catch {
                return Outcome(error: "\(error)")
            }
        }
        var kernelRows = 0
        fuzz("csv") { _ in
            let input = mutate(seed, alphabet: alphabet)
            // A quarter of the inputs in one piece: then rows have the row kernel's span after them.
            let pieces = rng.next() % 4 == 0 ? input.count : Int(rng.next() % 64) + 1
            let swept = outcome(newParser()) { parser in
                defer { kernelRows += parser.kernelRows }
                var batches: [KlineBatch] = []
                var offset = 0
                try KlineArchiveDecoder.run(archive: "fuzz", parser, chunkRows: 2, bufferSize: 4096, read: { buffer, capacity in
                    let n = min(capacity, pieces, input.count - offset)
                    input.withUnsafeBufferPointer { _ = memcpy(buffer, $0.baseAddress! + offset, n) }
                    offset += n
                    return n
                }) { batches.append($0) }
                return batches
            }
            let careful = outcome(newParser()) { parser in
                try (input + [UInt8](repeating: 0, count: 64)).withUnsafeBufferPointer { buf in  // padded like the decoder's buffer
                    var p = buf.baseAddress!
                    let end = buf.baseAddress! + input.count
                    while p < end {
                        var e = p
                        while e < end && e.pointee != 0x0A { e += 1 }
                        if e - p > KlineArchiveDecoder.maxLineLength { throw KlineDecodeError.lineTooLong(archive: "fuzz", line: parser.line + 1, limit: KlineArchiveDecoder.maxLineLength) }
                        try parser.parseLine(p, e > p && (e - 1).pointee == 0x0D ? e - 1 : e)
                        p = e + 1
                    }
                }
                return parser.bufferedRows > 0 ? [parser.takeBatch()] : []
            }
            XCTAssertEqual(swept, careful, "input: \(String(decoding: input, as: UTF8.self))")
            return swept.error == nil
        }
        print("FUZZ csv: the row kernel took \(kernelRows) rows")
        if rowKernelAvailable { XCTAssertGreaterThan(kernelRows, 0, "the row kernel took no row") }
    }

    func testZipReader() throws {
        let csv = Array((Self.row + "\n").utf8)
        let seeds = [oneMemberZip(csv, method: 8), oneMemberZip(csv, method: 0)]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("BTCUSDT-1m-2024-01-01.zip").path
        defer { try? FileManager.default.removeItem(at: dir) }
        for seed in seeds {  // the seeds themselves are good archives
            FileManager.default.createFile(atPath: path, contents: Data(seed))
            XCTAssertEqual(try KlineArchiveDecoder.decode(path: path).report.rows, 1)
        }
        let alphabet: [UInt8] = Array(0...255)
        try fuzz("zip") { i in
            let input = mutate(seeds[i % 2], alphabet: alphabet)
            FileManager.default.createFile(atPath: path, contents: Data(input))
            do {  // both inflaters, in turn
                _ = try KlineArchiveDecoder.decode(path: path, options: .init(inflater: i % 4 < 2 ? .isal : .zlib))
                return true
            } catch is KlineDecodeError {
                return false
            }
        }
    }

    func testMsgPackDecoder() throws {
        var w = MsgPackWriter()
        w.write(.object(["method": "DataService.Write", "id": "1", "jsonrpc": "2.0", "params": .object(["requests": [.object(["dataset": .object([
            "types": ["i8", "f4"], "names": ["Epoch", "Open"], "data": [.binary([UInt8](repeating: 1, count: 16)), .binary([UInt8](repeating: 2, count: 8))],
            "length": 2, "startindex": .object(["A/1Min/B": 0]), "lengths": .object(["A/1Min/B": 2]),
        ])])]])]))
        let seed = w.bytes
        let alphabet: [UInt8] = [0xC0, 0xC1, 0xC4, 0xC5, 0xC6, 0xCA, 0xCB, 0xCF, 0xD3, 0xD9, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, 0x91, 0x81, 0xFF, 0x7F, 0x00, 0xA5]
        try fuzz("msgpack") { i in
            let input = i % 10 == 9 ? (0..<Int(rng.next() % 48)).map { _ in UInt8(truncatingIfNeeded: rng.next()) } : mutate(seed, alphabet: alphabet)
            do {
                _ = try MsgPackReader.decode(input)
                return true
            } catch is MsgPackDecodeError {
                return false
            }
        }
    }
}

func peakRSS() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else { return 0 }
    return kb * 1024
}
