import Columnar
import Foundation
import KlineArchive
import MarketStore
import MarketStoreModel
import TestSupport
import XCTest
@testable import MarketStoreDirectory

/// The directory sink writes what the real server writes, byte for byte (the golden directory of
/// ../shared/marketstore), merges into existing files, and refuses what it must.
final class DirectoryWriterTests: XCTestCase {
    var work: URL!

    override func setUpWithError() throws {
        work = FileManager.default.temporaryDirectory.appendingPathComponent("mktsdb-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: work) }

    struct Golden: Decodable {
        struct Write: Decodable {
            let input_csv: String
            let key: String
            let rows: Int
            let columns: [Column]
        }
        struct Column: Decodable { let name: String; let type: String }
        let writes: [Write]
    }

    /// A golden CSV wrapped in a zip (the decoder reads archives), decoded with golden.json's columns.
    func decodeGolden(_ write: Golden.Write, golden: URL) throws -> (names: [String], columns: [ColumnValues]) {
        let csv = try Data(contentsOf: golden.appendingPathComponent(write.input_csv))
        let interval = String(write.input_csv.split(separator: "-").last!.dropLast(4))  // "1m" from BTCUSDT-1m.csv
        let zip = work.appendingPathComponent("\(UUID().uuidString).zip")
        try Data(oneMemberZip([UInt8](csv), name: "data.csv")).write(to: zip)
        let columns = write.columns.dropFirst().map { KlineColumn(name: $0.name == "Trades" ? "Trades" : $0.name)! }
        let floatType: FloatType = write.columns.dropFirst().contains { $0.type == "f8" } ? .float64 : .float32
        let (batch, report) = try KlineArchiveDecoder.decode(path: zip.path, options: .init(interval: KlineInterval(interval)!, columns: columns, floatType: floatType))
        XCTAssertEqual(report.rowsInFile, write.rows)
        return (write.columns.map(\.name), [.int64(batch.epochs)] + batch.columns.map(\.values))
    }

    func testByteForByteEqualityWithTheRealServersDirectory() throws {
        let golden = ServerProcess.shared.appendingPathComponent("marketstore/golden")
        guard FileManager.default.fileExists(atPath: golden.path) else { throw missing("../shared/marketstore/golden is absent") }
        let spec = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: golden.appendingPathComponent("inputs/golden.json")))
        let root = work.appendingPathComponent("data").path
        let writer = try DirectoryWriter(root: root)
        for write in spec.writes {
            let (names, columns) = try decodeGolden(write, golden: golden.appendingPathComponent("inputs").deletingLastPathComponent())
            try writer.write(key: write.key, names: names, columns: columns)
        }
        let expected = golden.appendingPathComponent("data")
        let files = FileManager.default.enumerator(atPath: expected.path)!.compactMap { $0 as? String }.filter {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: expected.appendingPathComponent($0).path, isDirectory: &isDir)
            return !isDir.boolValue
        }.sorted()
        let mine = FileManager.default.enumerator(atPath: root)!.compactMap { $0 as? String }.filter { !$0.hasSuffix("/") && !FileManager.default.fileExists(atPath: root + "/" + $0 + "/.") }.sorted()
        XCTAssertEqual(mine, files, "the same files")
        XCTAssertEqual(files.filter { $0.hasSuffix(".bin") }.count, 5)
        for file in files {
            let a = try Data(contentsOf: expected.appendingPathComponent(file))
            let b = try Data(contentsOf: URL(fileURLWithPath: root).appendingPathComponent(file))
            XCTAssertEqual(a.count, b.count, file)
            XCTAssertTrue(a == b, "\(file): bytes differ at \(zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1)")
        }
        // Our reader serves what the server serves: 9 of the 10 daily rows (1 January is lost).
        XCTAssertEqual(try DirectoryReader(root: root).read(key: "BTCUSDT/1D/OHLCV")?.columns[0].count, 9)
        XCTAssertEqual(try DirectoryReader(root: root).read(key: "ETHUSDT/1H/OHLCV")?.columns[0].count, 10)
        XCTAssertEqual(try DirectoryReader(root: expected.path).read(key: "BTCUSDT/1Min/OHLCV")?.columns[0].count, 260)
    }

    func testSecondWriteOverwritesSlotsKeepsTheOthersAndReordersColumns() throws {
        let root = work.appendingPathComponent("data").path
        let writer = try DirectoryWriter(root: root)
        let t0: Int64 = 1_704_067_200
        let names = ["Epoch", "Open", "High", "Low", "Close", "Volume"]
        func col(_ v: [Float]) -> ColumnValues { .float32(v) }
        try writer.write(key: "BTCUSDT/1Min/OHLCV", names: names,
                         columns: [.int64([t0, t0 + 60, t0 + 120]), col([1, 2, 3]), col([1, 2, 3]), col([1, 2, 3]), col([1, 2, 3]), col([10, 20, 30])])
        // The same names in another order (Volume first), rewriting the middle slot only.
        try writer.write(key: "BTCUSDT/1Min/OHLCV", names: ["Epoch", "Volume", "Open", "High", "Low", "Close"],
                         columns: [.int64([t0 + 60]), col([99]), col([5]), col([5]), col([5]), col([5])])
        let back = try XCTUnwrap(try DirectoryReader(root: root).read(key: "BTCUSDT/1Min/OHLCV"))
        XCTAssertEqual(back.names, names)
        XCTAssertEqual(back.columns[0], .int64([t0, t0 + 60, t0 + 120]))
        XCTAssertEqual(back.columns[1], .float32([1, 5, 3]))
        XCTAssertEqual(back.columns[5], .float32([10, 99, 30]))
        // A year boundary makes two files.
        try writer.write(key: "ETHUSDT/1H/OHLCV", names: names,
                         columns: [.int64([t0 - 3600, t0]), col([1, 2]), col([1, 2]), col([1, 2]), col([1, 2]), col([1, 2])])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/ETHUSDT/1H/OHLCV").sorted(), ["2023.bin", "2024.bin", "category_name"])
        // Rows out of order, across the year boundary, one slot twice: sorted, the last row wins.
        try writer.write(key: "XRPUSDT/1H/OHLCV", names: names,
                         columns: [.int64([t0 + 3600, t0 - 3600, t0 + 3600, t0]), col([1, 2, 3, 4]), col([1, 2, 3, 4]), col([1, 2, 3, 4]), col([1, 2, 3, 4]), col([5, 6, 7, 8])])
        let xrp = try XCTUnwrap(try DirectoryReader(root: root).read(key: "XRPUSDT/1H/OHLCV"))
        XCTAssertEqual(xrp.columns[0], .int64([t0 - 3600, t0, t0 + 3600]))
        XCTAssertEqual(xrp.columns[1], .float32([2, 4, 3]))
        XCTAssertEqual(xrp.columns[5], .float32([6, 8, 7]))
        // A multi-key request: each key gets its own range of the shared columns.
        let two = try WriteDataSet(names: names, columns: [.int64([t0, t0 + 60, t0, t0 + 60, t0 + 120]), col([1, 2, 3, 4, 5]), col([1, 2, 3, 4, 5]),
                                                           col([1, 2, 3, 4, 5]), col([1, 2, 3, 4, 5]), col([1, 2, 3, 4, 5])],
                                   keys: [.init(key: "AAAUSDT/1Min/OHLCV", start: 0, count: 2), .init(key: "BBBUSDT/1Min/OHLCV", start: 2, count: 3)])
        try writer.write(two)
        XCTAssertEqual(try DirectoryReader(root: root).read(key: "AAAUSDT/1Min/OHLCV")?.columns[1], .float32([1, 2]))
        XCTAssertEqual(try DirectoryReader(root: root).read(key: "BBBUSDT/1Min/OHLCV")?.columns[0], .int64([t0, t0 + 60, t0 + 120]))
        XCTAssertEqual(try DirectoryReader(root: root).read(key: "BBBUSDT/1Min/OHLCV")?.columns[1], .float32([3, 4, 5]))
    }

    func testSchemaMismatchesAreRefused() throws {
        let writer = try DirectoryWriter(root: work.appendingPathComponent("data").path)
        let e: ColumnValues = .int64([1_704_067_200])
        try writer.write(key: "A/1Min/OHLCV", names: ["Epoch", "Open", "Close"], columns: [e, .float32([1]), .float32([2])])
        XCTAssertThrowsError(try writer.write(key: "A/1Min/OHLCV", names: ["Epoch", "Open", "Close"], columns: [e, .float64([1]), .float64([2])])) {
            XCTAssertTrue("\($0)".contains("column Open has another type") && "\($0)".contains("Open:f4") && "\($0)".contains("Open:f8"), "\($0)")
        }
        XCTAssertThrowsError(try writer.write(key: "A/1Min/OHLCV", names: ["Epoch", "Open", "Last"], columns: [e, .float32([1]), .float32([2])])) {
            XCTAssertTrue("\($0)".contains("column names differ"), "\($0)")
        }
        XCTAssertThrowsError(try writer.write(key: "A/1Min", names: ["Epoch"], columns: [e]))
        XCTAssertThrowsError(try writer.write(key: "../x/1Min/OHLCV", names: ["Epoch"], columns: [e]))
    }

    /// Both rules of the in-use check, each alone: a process holding a file under the root open
    /// (the WAL is backdated, so the recent-WAL rule cannot fire), then a WAL modified just now
    /// with no process holding it.
    func testADirectoryInUseIsRefusedUnlessForced() throws {
        let root = work.appendingPathComponent("busy").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let wal = root + "/WALFile.1700000000.walfile"
        FileManager.default.createFile(atPath: wal, contents: Data([1, 2, 3]))
        let anHourAgo = Date().addingTimeInterval(-3600)
        try FileManager.default.setAttributes([.modificationDate: anHourAgo], ofItemAtPath: wal)
        XCTAssertNil(DirectoryWriter.inUseEvidence(root: root), "an old WAL nobody holds open")
        // Another process holding the write-ahead log open, as a running server does.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/bin/sh")
        holder.arguments = ["-c", "exec 3<\(wal); exec sleep 30"]
        try holder.run()
        defer { holder.terminate() }
        var evidence: String?
        for _ in 0..<50 where evidence == nil {  // until the shell has opened it
            usleep(100_000)
            evidence = DirectoryWriter.inUseEvidence(root: root)
        }
        XCTAssertEqual(evidence, "process \(holder.processIdentifier) has \(URL(fileURLWithPath: wal).resolvingSymlinksInPath().path) open")
        XCTAssertThrowsError(try DirectoryWriter(root: root)) {
            XCTAssertTrue("\($0)".contains("in use by a running MarketStore server"), "\($0)")
        }
        XCTAssertNoThrow(try DirectoryWriter(root: root, force: true))
        holder.terminate()
        holder.waitUntilExit()
        XCTAssertNil(DirectoryWriter.inUseEvidence(root: root))
        // Nobody holds it, but it was written a moment ago.
        try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: wal)
        XCTAssertTrue(DirectoryWriter.inUseEvidence(root: root)?.hasPrefix("WALFile.1700000000.walfile was modified") == true)
    }

    /// A hostile year-file header (a timeframe of 0 ns, a year out of range, a type code this
    /// reader does not know) is a clean error naming the file, not a division by zero or empty
    /// columns.
    func testAHostileYearFileHeaderIsACleanError() throws {
        let good = BucketHeader(year: 2024, timeframeSeconds: 60, columns: [(name: "Open", type: "f4")]).encoded()
        func patched(_ at: Int, _ bytes: [UInt8]) -> [UInt8] {
            var b = good
            b.replaceSubrange(at..<(at + bytes.count), with: bytes)
            return b
        }
        let le64 = { (v: Int64) in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        for (label, header, message) in [("timeframe 0", patched(272, le64(0)), "timeframe of 0 ns"),
                                         ("year 2^62", patched(264, le64(1 << 62)), "year 4611686018427387904"),
                                         ("unknown type", patched(33080, [77]), "column Open has type code 77")] {
            XCTAssertThrowsError(try BucketHeader(decoding: header, path: "/x/2024.bin"), label) {
                XCTAssertEqual("\($0)".hasPrefix("/x/2024.bin: not a MarketStore year file: "), true, "\($0)")
                XCTAssertTrue("\($0)".contains(message), "\(label): \($0)")
            }
        }
        XCTAssertNoThrow(try BucketHeader(decoding: good, path: "/x/2024.bin"))
    }
}
