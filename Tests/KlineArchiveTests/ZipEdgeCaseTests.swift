import XCTest
@testable import KlineArchive

/// Zip shapes the decoder must read (stored, data descriptor, zip64) or refuse with a clear error
/// (two members, bad CRC, truncation, zip bomb, unsupported method).
final class ZipEdgeCaseTests: XCTestCase {
    let day = ArchivePeriod(year: 2024, month: 3, day: 5)!
    let archiveName = "ETHUSDT-1m-2024-03-05"
    var csv: String { SyntheticKlines.rows(start: day.start, interval: 60, count: 1440).joined(separator: "\n") + "\n" }

    func decode(_ bytes: [UInt8], name: String? = nil) throws -> (KlineBatch, KlineReport) {
        let dir = try TestPaths.temporaryDirectory()
        let path = try writeFile(dir, (name ?? archiveName) + ".zip", bytes)
        return try KlineArchiveDecoder.decode(path: path, options: .init(columns: KlineColumn.allCases, floatType: .float64))
    }

    func assertZipError(_ bytes: [UInt8], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(bytes), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(message), "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(self.archiveName + ".zip"), "error names the archive: \(error)", file: file, line: line)
        }
    }

    func testDeflatedStoredDataDescriptorAndZip64AllDecodeTheSame() throws {
        let (reference, report) = try decode(ZipBuilder.single(archiveName + ".csv", csv))
        XCTAssertEqual(report.rows, 1440)
        XCTAssertEqual(report.anomalies, [])
        for (method, descriptor, zip64) in [(UInt16(0), false, false), (8, true, false), (8, false, true), (0, true, true), (8, true, true)] {
            let (batch, r) = try decode(ZipBuilder.single(archiveName + ".csv", csv, method: method, dataDescriptor: descriptor, zip64: zip64))
            XCTAssertEqual(batch, reference, "method \(method) descriptor \(descriptor) zip64 \(zip64)")
            XCTAssertEqual(r.csvBytes, UInt64(csv.utf8.count))
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
