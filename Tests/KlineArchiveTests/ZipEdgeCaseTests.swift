import XCTest
@testable import KlineArchive

/// Zip shapes the decoder must read (stored, data descriptor, zip64) or refuse with a clear error
/// (two members, bad CRC, truncation, zip bomb, unsupported method), with both inflaters.
final class ZipEdgeCaseTests: XCTestCase {
    let day = ArchivePeriod(year: 2024, month: 3, day: 5)!
    let archiveName = "ETHUSDT-1m-2024-03-05"
    var csv: String { SyntheticKlines.rows(start: day.start, interval: 60, count: 1440).joined(separator: "\n") + "\n" }

    func decode(_ bytes: [UInt8], name: String? = nil, engine: InflateEngine = .isal) throws -> (KlineBatch, KlineReport) {
        let dir = try TestPaths.temporaryDirectory()
        let path = try writeFile(dir, (name ?? archiveName) + ".zip", bytes)
        return try KlineArchiveDecoder.decode(path: path, options: .init(columns: KlineColumn.allCases, floatType: .float64, inflater: engine))
    }

    func assertZipError(_ bytes: [UInt8], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        for engine in InflateEngine.allCases {
            XCTAssertThrowsError(try decode(bytes, engine: engine), "\(engine)", file: file, line: line) { error in
                XCTAssertTrue("\(error)".contains(message), "\(engine): \(error)", file: file, line: line)
                XCTAssertTrue("\(error)".contains(self.archiveName + ".zip"), "error names the archive: \(error)", file: file, line: line)
            }
        }
    }

    func testDeflatedStoredDataDescriptorAndZip64AllDecodeTheSame() throws {
        let (reference, report) = try decode(ZipBuilder.single(archiveName + ".csv", csv))
        XCTAssertEqual(report.rows, 1440)
        XCTAssertEqual(report.anomalies, [])
        for engine in InflateEngine.allCases {
            for (method, descriptor, zip64) in [(UInt16(0), false, false), (8, false, false), (8, true, false), (8, false, true), (0, true, true), (8, true, true)] {
                let (batch, r) = try decode(ZipBuilder.single(archiveName + ".csv", csv, method: method, dataDescriptor: descriptor, zip64: zip64), engine: engine)
                XCTAssertEqual(batch, reference, "\(engine) method \(method) descriptor \(descriptor) zip64 \(zip64)")
                XCTAssertEqual(r.csvBytes, UInt64(csv.utf8.count))
            }
        }
    }

    /// Crafted zip64 fields: sizes and offsets near 2^63 and 2^64, sums that wrap, sizes that
    /// disagree between the local and central headers. Each is a clean error naming the archive,
    /// never a trap (this runs in the debug build, where overflow traps).
    func testCraftedOffsetsAndSizesAreCleanErrors() throws {
        for (label, bytes, message) in CraftedZips.cases(archiveName + ".csv", csv) {
            for engine in InflateEngine.allCases {
                XCTAssertThrowsError(try decode(bytes, engine: engine), label) { error in
                    guard case .zip? = error as? KlineDecodeError else { return XCTFail("\(label): not a zip error: \(error)") }
                    XCTAssertTrue("\(error)".contains(message), "\(label): \(error)")
                    XCTAssertTrue("\(error)".contains(self.archiveName + ".zip"), "\(label): \(error)")
                }
            }
        }
    }

    /// Both inflaters give the member's exact bytes whatever the caller's buffer size, across
    /// several 64 KiB input refills (odd sizes end reads in the middle of deflate blocks).
    func testBothInflatersStreamTheExactBytesThroughAnyBufferSize() throws {
        let big = SyntheticKlines.rows(start: day.start, interval: 60, count: 1440, seed: 7).joined(separator: "\n") + "\n"
        let text = String(repeating: big, count: 3)  // about 600 kB of CSV, about 3 input refills
        let dir = try TestPaths.temporaryDirectory()
        let path = try writeFile(dir, archiveName + ".zip", ZipBuilder.single(archiveName + ".csv", text))
        for engine in InflateEngine.allCases {
            for capacity in [3, 777, 65536, 1 << 20] {
                let reader = try ZipEntryReader(path: path, engine: engine)
                var out: [UInt8] = []
                let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity)
                defer { buffer.deallocate() }
                while true {
                    let n = try reader.read(into: buffer, capacity: capacity)
                    if n == 0 { break }
                    out.append(contentsOf: UnsafeBufferPointer(start: buffer, count: n))
                }
                XCTAssertEqual(out, Array(text.utf8), "\(engine), buffer of \(capacity) bytes")
            }
        }
    }

    func testBytesAfterTheDeflateStreamAreRefused() {
        // igzip reads ahead up to 8 bytes: counts below, at and beyond that all show.
        for count in [1, 5, 8, 9, 100] {
            var m = ZipBuilder.Member(name: archiveName + ".csv", data: Array(csv.utf8))
            m.trailingBytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 1) }
            assertZipError(ZipBuilder(members: [m]).bytes(), "\(count) bytes of compressed data after the end of the stream")
        }
    }

    func testTwoMembersAreRefused() {
        let m = ZipBuilder.Member(name: archiveName + ".csv", data: Array(csv.utf8))
        var other = m
        other.name = "README.txt"
        assertZipError(ZipBuilder(members: [m, other]).bytes(), "expected exactly one .csv member, found 2")
        assertZipError(ZipBuilder(members: [other]).bytes(), "expected exactly one .csv member, found 1: README.txt")
    }

    func testBadCRCIsRefused() {
        var m = ZipBuilder.Member(name: archiveName + ".csv", data: Array(csv.utf8))
        m.crcOverride = 0x1234_5678
        assertZipError(ZipBuilder(members: [m]).bytes(), "CRC-32 mismatch")
        m.method = 0
        assertZipError(ZipBuilder(members: [m]).bytes(), "CRC-32 mismatch")
    }

    func testWrongDeclaredSizeIsRefused() {
        var m = ZipBuilder.Member(name: archiveName + ".csv", data: Array(csv.utf8))
        m.declaredSizeOverride = UInt64(csv.utf8.count + 10)
        assertZipError(ZipBuilder(members: [m]).bytes(), "the directory says")
        m.declaredSizeOverride = UInt64(csv.utf8.count - 10)
        assertZipError(ZipBuilder(members: [m]).bytes(), "past its declared size")
    }

    func testTruncatedArchivesAreRefused() {
        let full = ZipBuilder.single(archiveName + ".csv", csv)
        for cut in [10, full.count / 2, full.count - 30, full.count - 1] {
            assertZipError(Array(full.prefix(cut)), "not a zip archive (or truncated)")
        }
        // Directory intact, compressed bytes cut short: rebuild the tail after dropping data.
        var m = ZipBuilder.Member(name: archiveName + ".csv", data: Array(csv.utf8))
        m.method = 8
        let zipped = ZipBuilder(members: [m]).bytes()
        var corrupted = zipped
        for i in 100..<400 { corrupted[i] = 0 }  // garbage in the middle of the deflate stream
        assertZipError(corrupted, "is corrupt")
    }

    func testZipBombIsRefused() {
        // A daily 1m archive holds at most 1,440 rows; 8 MB of CSV is refused while inflating,
        // whatever the directory claims.
        let row = SyntheticKlines.rows(start: day.start, interval: 60, count: 1)[0] + "\n"
        let huge = Array(String(repeating: row, count: 8_000_000 / row.utf8.count).utf8)
        assertZipError(ZipBuilder(members: [.init(name: archiveName + ".csv", data: huge)]).bytes(), "refused as a zip bomb")
        var lying = ZipBuilder.Member(name: archiveName + ".csv", data: huge)
        lying.declaredSizeOverride = 1000  // stops at the declared size, long before the bomb is out
        assertZipError(ZipBuilder(members: [lying]).bytes(), "inflates past its declared size of 1000 bytes")
        lying.declaredSizeOverride = 1 << 40  // a declared size past the bound is refused up front
        lying.zip64 = true
        assertZipError(ZipBuilder(members: [lying]).bytes(), "refused as a zip bomb")
    }

    func testUnsupportedMethodIsRefused() {
        var bytes = ZipBuilder.single(archiveName + ".csv", csv, method: 0)
        // Patch the method (bzip2 = 12) in the local header (offset 8) and the directory entry.
        bytes[8] = 12
        let cd = bytes.count - 22 - 46 - (archiveName.count + 4)
        XCTAssertEqual(Array(bytes[cd..<(cd + 4)]), [0x50, 0x4b, 0x01, 0x02])
        bytes[cd + 10] = 12
        assertZipError(bytes, "compression method 12 is not supported")
    }

    func testNotAZipAtAll() {
        assertZipError(Array(csv.utf8), "not a zip archive")
    }
}
