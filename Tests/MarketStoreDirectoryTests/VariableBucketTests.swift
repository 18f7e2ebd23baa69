import Columnar
import Foundation
import MarketStoreModel
import TestSupport
import XCTest
@testable import MarketStoreDirectory

/// Variable-length year files (trades) as the real server writes and reads them: its snappy
/// blocks decode, its interval ticks round the same way, appends merge by time, and a crash
/// between a block and its slot leaves the interval's old records.
final class VariableBucketTests: TemporaryDirectoryTestCase {
    var work: URL { dir }

    static func hex(_ s: String) -> [UInt8] {
        stride(from: 0, to: s.count, by: 2).map { UInt8(s.dropFirst($0).prefix(2), radix: 16)! }
    }

    /// One interval's block as MarketStore v4.1.23 wrote it (SNAPPY/1Sec/TRADES, 2024-03-05
    /// 12:00:00, four records of Price f8, Qty f8, TradeID i8, IsBuyerMaker i1 and ticks, with
    /// snappy back-references), and what the server's query returned for it.
    func testABlockTheServerWroteDecodesToWhatItServed() throws {
        let block = Self.hex("741c0000000020c9ed400108100000e03f680909100001707841050b3010c9ed40fca9f1d24d62603f660512100000003789091d"
                             + "0008151d08503f6701190c00000001111d193a38503f650000000000000001000000c0")
        let records = try Snappy.decode(block)
        XCTAssertEqual(records.count, 4 * 29)
        func value<T>(_ record: Int, _ at: Int, _: T.Type) -> T { records.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: record * 29 + at, as: T.self) } }
        XCTAssertEqual((0..<4).map { value($0, 16, Int64.self) }, [104, 102, 103, 101], "by ticks, equal ticks in write order")
        XCTAssertEqual((0..<4).map { value($0, 0, Double.self) }, [61001.0, 61000.5, 61000.25, 61000.5])
        XCTAssertEqual((0..<4).map { value($0, 8, Double.self) }, [0.5, 0.002, 0.001, 0.001])
        let t: Int64 = 1_709_640_000
        let times = (0..<4).map { IntervalTicks.time(ticks: value($0, 25, UInt32.self), intervalStart: t, intervalsPerDay: 86400) }
        XCTAssertEqual(times.map(\.epoch), [t, t, t, t])
        XCTAssertEqual(times.map(\.nanos), [999_000, 1_000_000, 1_000_000, 750_000_000], "the nanoseconds the server answered")
        XCTAssertThrowsError(try Snappy.decode(Array(block.dropLast(3)))) { XCTAssertTrue("\($0)".contains("snappy"), "\($0)") }
    }

    func testLiteralBlocksOfEverySizeDecode() throws {
        for n in [0, 1, 60, 61, 256, 257, 65_536, 65_537, 200_000] {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) }
            XCTAssertEqual(try Snappy.decode(Snappy.encodeLiterals(bytes)), bytes, "\(n) bytes")
        }
    }

    /// The 1Min records of the recorded exchange (Tests/contracts/variable_length.real.json, "read
    /// back 1Min ticks"): written to a file and read back, their times are what the server gave.
    func testTicksRoundAsTheServerRounds() throws {
        let t: Int64 = 1_709_640_000
        let writer = try DirectoryWriter(root: work.path)
        try writer.append(try WriteDataSet(names: ["Epoch", "Price", "Nanoseconds"],
                                           columns: [.int64([t + 7, t + 59, t + 61]), .float64([1, 2, 3]), .int32([123_456_789, 999_999_999, 1])],
                                           keys: [.init(key: "V2/1Min/TRADES", start: 0, count: 3)]))
        let back = try XCTUnwrap(try DirectoryReader(root: work.path).read(key: "V2/1Min/TRADES"))
        XCTAssertEqual(back.names, ["Epoch", "Price", "Nanoseconds"])
        XCTAssertEqual(back.columns[0], .int64([t + 7, t + 59, t + 61]))
        XCTAssertEqual(back.columns[2], .int32([123_456_788, 999_999_986, 999_999_996]))
    }

    /// Appends merge into an interval's records by time, equal times in write order; a window
    /// returns whole seconds; the header says variable, and a fixed-length key is refused.
    func testAppendsMergeByTimeAndAFixedKeyIsRefused() throws {
        let t: Int64 = 1_735_689_600
        let writer = try DirectoryWriter(root: work.path)
        func append(_ epochs: [Int64], _ nanos: [Int32], _ ids: [Int64]) throws {
            try writer.append(try WriteDataSet(names: ["Epoch", "TradeID", "Nanoseconds"], columns: [.int64(epochs), .int64(ids), .int32(nanos)],
                                               keys: [.init(key: "ABC/1Sec/TRADES", start: 0, count: ids.count)]))
        }
        try append([t, t, t + 1], [999_999_000, 10_866_000, 1], [3, 1, 4])
        try append([t, t], [10_866_000, 500_000_000], [1, 2])
        let all = try XCTUnwrap(try DirectoryReader(root: work.path).read(key: "ABC/1Sec/TRADES"))
        XCTAssertEqual(all.columns[1], .int64([1, 1, 2, 3, 4]), "as the server: trade 1 twice, by time, equal times in write order")
        XCTAssertEqual(all.columns[2], .int32([10_866_000, 10_866_000, 500_000_000, 999_999_000, 1]))
        let second = try XCTUnwrap(try DirectoryReader(root: work.path).read(key: "ABC/1Sec/TRADES", from: t + 1, to: t + 1))
        XCTAssertEqual(second.columns[1], .int64([4]))
        let head = [UInt8](try XCTUnwrap(FileHandle(forReadingAtPath: work.appendingPathComponent("ABC/1Sec/TRADES/2025.bin").path)?.readData(ofLength: BucketHeader.size)))
        let header = try BucketHeader(decoding: head, path: "2025.bin")
        XCTAssertTrue(header.variableLength)
        XCTAssertEqual(header.recordLength, 24)

        try writer.write(try WriteDataSet(names: ["Epoch", "TradeID"], columns: [.int64([t]), .int64([9])], keys: [.init(key: "FIX/1Sec/TRADES", start: 0, count: 1)]))
        XCTAssertThrowsError(try writer.append(try WriteDataSet(names: ["Epoch", "TradeID"], columns: [.int64([t]), .int64([9])],
                                                                keys: [.init(key: "FIX/1Sec/TRADES", start: 0, count: 1)]))) {
            XCTAssertTrue("\($0)".contains("the bucket is fixed-length"), "\($0)")
        }
    }

    /// A block written but its slot not (a crash between the two): the interval still reads as
    /// before, and the next append writes it whole again.
    func testABlockWithoutItsSlotIsNotRead() throws {
        let t: Int64 = 1_735_689_600
        let writer = try DirectoryWriter(root: work.path)
        let key = "CRASH/1Sec/TRADES"
        func dataset(_ ids: [Int64]) throws -> WriteDataSet {
            try WriteDataSet(names: ["Epoch", "TradeID", "Nanoseconds"], columns: [.int64(ids.map { _ in t }), .int64(ids), .int32(ids.map { Int32($0) })],
                             keys: [.init(key: key, start: 0, count: ids.count)])
        }
        try writer.append(try dataset([1, 2]))
        let path = work.appendingPathComponent("\(key)/2025.bin").path
        let file = try XCTUnwrap(FileHandle(forReadingAtPath: path))
        try file.seek(toOffset: UInt64(BucketHeader.size))
        let slots = [UInt8](file.readData(ofLength: 24))
        try writer.append(try dataset([3]))
        // Undo the second append's slot write, as if the process died before it.
        let fd = open(path, O_WRONLY)
        _ = Array(slots).withUnsafeBytes { pwrite(fd, $0.baseAddress, 24, off_t(BucketHeader.size)) }
        close(fd)
        let back = try XCTUnwrap(try DirectoryReader(root: work.path).read(key: key))
        XCTAssertEqual(back.columns[1], .int64([1, 2]), "the old records, whole")
        try writer.append(try dataset([3]))
        XCTAssertEqual(try DirectoryReader(root: work.path).read(key: key)?.columns[1], .int64([1, 2, 3]))
    }
}
