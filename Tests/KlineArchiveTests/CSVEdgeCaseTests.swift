import XCTest
@testable import KlineArchive

/// CSV shapes and anomalies: header, CRLF, last line, malformed values, column counts, time units,
/// grid, duplicates, gaps, OHLC sanity, policies, streaming.
final class CSVEdgeCaseTests: XCTestCase {
    let day = ArchivePeriod(year: 2021, month: 7, day: 14)!
    let archiveName = "BNBUSDT-1m-2021-07-14"
    let header = "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore"

    func rows(_ n: Int = 1440, micro: Bool = false) -> [String] {
        SyntheticKlines.rows(start: day.start, interval: 60, count: n, micro: micro)
    }

    func decode(_ csv: String, options: KlineDecodeOptions = .init(columns: KlineColumn.allCases, floatType: .float64), name: String? = nil) throws -> (KlineBatch, KlineReport) {
        let dir = try TestPaths.temporaryDirectory()
        let n = name ?? archiveName
        let path = try writeFile(dir, n + ".zip", ZipBuilder.single(n + ".csv", csv))
        return try KlineArchiveDecoder.decode(path: path, options: options)
    }

    func assertError(_ csv: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try decode(csv), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(message), "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(self.archiveName + ".zip"), "names the archive: \(error)", file: file, line: line)
        }
    }

    func anomaly(_ r: KlineReport, _ kind: Anomaly.Kind) -> Anomaly? { r.anomalies.first { $0.kind == kind } }

    func testHeaderCRLFAndMissingFinalNewlineGiveTheSameRows() throws {
        let plain = rows()
        let (reference, r0) = try decode(plain.joined(separator: "\n") + "\n")
        XCTAssertEqual(r0.rows, 1440)
        XCTAssertFalse(r0.header)
        for csv in [header + "\n" + plain.joined(separator: "\n") + "\n",
                    plain.joined(separator: "\r\n") + "\r\n",
                    header + "\r\n" + plain.joined(separator: "\r\n"),
                    plain.joined(separator: "\n")] {
            let (batch, report) = try decode(csv)
            XCTAssertEqual(batch, reference)
            XCTAssertEqual(report.header, csv.hasPrefix("open_time"))
            XCTAssertEqual(report.anomalies, [])
        }
    }

    func testValuesAreTheCorrectlyRoundedFloats() throws {
        let lines = rows(30)
        let (b4, _) = try decode(lines.joined(separator: "\n"), options: .init(columns: KlineColumn.allCases, floatType: .float32))
        let (b8, _) = try decode(lines.joined(separator: "\n"), options: .init(columns: KlineColumn.allCases, floatType: .float64))
        for (i, line) in lines.enumerated() {
            let f = line.split(separator: ",").map(String.init)
            XCTAssertEqual(b4.epochs[i], Int64(f[0])! / 1000)
            for c in KlineColumn.allCases where c != .trades {
                XCTAssertEqual(b4.values(c)!.double(at: i), Double(strtof(f[c.csvField], nil)), "\(c) row \(i)")
                XCTAssertEqual(b8.values(c)!.double(at: i), strtod(f[c.csvField], nil), "\(c) row \(i)")
            }
            XCTAssertEqual(b4.values(.trades), b8.values(.trades))
            XCTAssertEqual(b8.values(.trades)!.double(at: i), Double(f[8])!)
        }
    }

    func testMalformedNumberNamesLineAndColumn() {
        var lines = rows(100)
        var f = lines[41].split(separator: ",").map(String.init)
        f[3] = "12.3.4"
        lines[41] = f.joined(separator: ",")
        assertError(lines.joined(separator: "\n"), "line 42, column 4 (low): malformed value \"12.3.4\"")
        f[3] = ""
        lines[41] = f.joined(separator: ",")
        assertError(lines.joined(separator: "\n"), "line 42, column 4 (low): malformed value \"\"")
        f[3] = "1.5"; f[8] = "12x"
        lines[41] = f.joined(separator: ",")
        assertError(lines.joined(separator: "\n"), "line 42, column 9 (count): malformed value \"12x\"")
        // With a header line, lines count from the header.
        assertError(header + "\n" + lines.joined(separator: "\n"), "line 43, column 9 (count)")
        f[8] = "12"; f[0] = "\u{FF}\u{FE}"
        lines[41] = f.joined(separator: ",")
        assertError(lines.joined(separator: "\n"), "line 42, column 1 (open_time)")
    }

    func testWrongColumnCount() {
        var lines = rows(10)
        lines[6] += ",extra"
        assertError(lines.joined(separator: "\n"), "line 7: expected 12 columns, found 13")
        lines = rows(10)
        lines[6] = lines[6].split(separator: ",").prefix(9).joined(separator: ",")
        assertError(lines.joined(separator: "\n"), "line 7: expected 12 columns, found 9")
        assertError("1,2,3\n", "not a kline archive: line 1 has 3 columns")
    }

    func testMixedAndUnknownTimeUnits() {
        let lines = Array(rows(10)) + SyntheticKlines.rows(start: day.start + 600, interval: 60, count: 1, micro: true)
        assertError(lines.joined(separator: "\n"), "line 11, column 1 (open_time): time unit us where the file uses ms (mixed units)")
        var f = rows(3)[2].split(separator: ",").map(String.init)
        f[6] = f[6] + "000"
        assertError((rows(2) + [f.joined(separator: ",")]).joined(separator: "\n"), "line 3, column 7 (close_time): time unit us")
        f = rows(1)[0].split(separator: ",").map(String.init)
        f[0] = String(f[0].dropLast())
        assertError(f.joined(separator: ","), "line 1, column 1 (open_time): 12 digits is neither milliseconds (13) nor microseconds (16)")
    }

    func testMicrosecondRowsDecodeToSeconds() throws {
        let (b, r) = try decode(rows(1440, micro: true).joined(separator: "\n"))
        let (bm, _) = try decode(rows(1440).joined(separator: "\n"))
        XCTAssertEqual(r.timeUnit, "us")
        XCTAssertEqual(b, bm)
    }

    func testOffGridOpenTimeIsReportedNotHidden() throws {
        var lines = rows(1440)
        var f = lines[10].split(separator: ",").map(String.init)
        f[0] = String(Int64(f[0])! + 30_000)  // 30 s late
        f[6] = String(Int64(f[6])! + 30_000)
        lines[10] = f.joined(separator: ",")
        let (batch, report) = try decode(lines.joined(separator: "\n"))
        let a = try XCTUnwrap(anomaly(report, .offGrid))
        XCTAssertEqual(a.count, 1)
        XCTAssertEqual(a.examples.first?.line, 11)
        XCTAssertEqual(batch.epochs[10], day.start + 600 + 30, "the epoch keeps its seconds; nothing is floored")
        XCTAssertThrowsError(try decode(lines.joined(separator: "\n"), options: .init(policy: .strict))) { error in
            XCTAssertTrue("\(error)".contains("strict validation failed: off_grid_open_time x1"), "\(error)")
        }
    }

    func testDuplicatesKeepTheLastRowAndOutOfOrderRowsAreSorted() throws {
        var lines = rows(1440)
        var dup = lines[100].split(separator: ",").map(String.init)
        dup[4] = "99999.99"; dup[2] = "99999.99"  // close and high of the replacement row
        lines.insert(dup.joined(separator: ","), at: 500)
        lines.swapAt(10, 11)
        let (batch, report) = try decode(lines.joined(separator: "\n"))
        XCTAssertEqual(report.rowsInFile, 1441)
        XCTAssertEqual(report.rows, 1440)
        XCTAssertEqual(report.duplicates, 1)
        XCTAssertEqual(report.outOfOrder, 1)
        XCTAssertEqual(anomaly(report, .duplicateOpenTime)?.examples.first?.line, 501)
        XCTAssertEqual(anomaly(report, .outOfOrder)?.examples.first?.line, 12)
        XCTAssertEqual(batch.count, 1440)
        XCTAssertEqual(batch.epochs, (0..<1440).map { day.start + Int64($0) * 60 })
        XCTAssertEqual(batch.values(.close)!.double(at: 100), 99999.99, "the last row wins")
        XCTAssertEqual(report.missingRows, 0)
    }

    func testGapsAreCountedWithTheirRanges() throws {
        var lines = rows(1440)
        lines.removeSubrange(300..<310)  // 10 minutes missing
        lines.removeLast(5)  // the day's last 5 minutes
        let (batch, report) = try decode(lines.joined(separator: "\n"))
        XCTAssertEqual(batch.count, 1425)
        XCTAssertEqual(report.expectedRows, 1440)
        XCTAssertEqual(report.missingRows, 15)
        XCTAssertEqual(report.missingRanges, [[day.start + 300 * 60, day.start + 309 * 60], [day.start + 1435 * 60, day.start + 1439 * 60]])
        XCTAssertEqual(anomaly(report, .missingIntervals)?.count, 15)
    }

    func testRowsOutsideThePeriodAndCloseTimeMismatch() throws {
        var lines = rows(1440)
        lines += SyntheticKlines.rows(start: day.end, interval: 60, count: 1)
        var f = lines[3].split(separator: ",").map(String.init)
        f[6] = String(Int64(f[6])! - 1)
        lines[3] = f.joined(separator: ",")
        let (_, report) = try decode(lines.joined(separator: "\n"))
        XCTAssertEqual(anomaly(report, .outsidePeriod)?.examples.first?.line, 1441)
        XCTAssertEqual(anomaly(report, .closeTimeMismatch)?.examples.first?.line, 4)
    }

    func testOHLCViolations() throws {
        var lines = rows(20)
        func set(_ i: Int, _ field: Int, _ value: String) {
            var f = lines[i].split(separator: ",").map(String.init)
            f[field] = value
            lines[i] = f.joined(separator: ",")
        }
        set(2, 3, "99999999")  // low above high
        set(5, 1, "0")  // zero open: also below low
        set(8, 5, "-1.5")  // negative volume
        set(11, 7, "1e400")  // overflows float64
        let (_, report) = try decode(lines.joined(separator: "\n"), name: "BNBUSDT-1m-2021-07-14")
        XCTAssertEqual(anomaly(report, .ohlcInconsistent)?.examples.map(\.line), [3, 6])
        XCTAssertEqual(anomaly(report, .nonPositivePrice)?.examples.map(\.line), [6])
        XCTAssertEqual(anomaly(report, .negativeVolume)?.examples.map(\.line), [9])
        XCTAssertEqual(anomaly(report, .nonFinite)?.examples.map(\.line), [12])
        XCTAssertThrowsError(try decode(lines.joined(separator: "\n"), options: .init(policy: .strict)))
    }

    func testBlankAndHugeLines() throws {
        let lines = rows(10)
        XCTAssertNoThrow(try decode(lines.joined(separator: "\n") + "\n\n\n"), "blank lines at the end are tolerated")
        assertError(lines[0..<5].joined(separator: "\n") + "\n\n" + lines[5...].joined(separator: "\n"), "line 6 is blank, inside the data")
        assertError(lines[0] + "\n" + String(repeating: "9", count: 5000) + "\n", "line 2 is longer than 1024 bytes")
        assertError(lines[0] + "\n" + String(repeating: "9", count: 600_000) + "\n", "line 2 is longer than 1024 bytes")
    }

    func testStreamingBatchesEqualTheWholeDecode() throws {
        let dir = try TestPaths.temporaryDirectory()
        let path = try writeFile(dir, archiveName + ".zip", ZipBuilder.single(archiveName + ".csv", rows().joined(separator: "\n")))
        let options = KlineDecodeOptions(columns: [.close, .trades, .open], floatType: .float32)
        let (whole, report) = try KlineArchiveDecoder.decode(path: path, options: options)
        var sizes: [Int] = []
        var joined: KlineBatch?
        let streamed = try KlineArchiveDecoder.stream(path: path, options: options, chunkRows: 500) { b in
            sizes.append(b.count)
            if joined == nil { joined = b } else { joined!.append(b) }
        }
        XCTAssertEqual(sizes, [500, 500, 440])
        XCTAssertEqual(joined, whole)
        XCTAssertEqual(streamed, report)
        XCTAssertEqual(whole.columns.map(\.column), [.close, .trades, .open], "columns in the requested order")
    }

    func testIntervalAndPeriodComeFromTheNameOrOptions() throws {
        let csv = rows(60).joined(separator: "\n")
        XCTAssertThrowsError(try decode(csv, name: "some-export")) { error in
            XCTAssertTrue("\(error)".contains("cannot tell the kline interval"), "\(error)")
        }
        let (_, report) = try decode(csv, options: .init(interval: KlineInterval("1m")), name: "some-export")
        XCTAssertNil(report.period)
        XCTAssertEqual(report.expectedRows, 60, "without a period, gaps are counted between the first and last row")
        XCTAssertEqual(report.missingRows, 0)
    }
}
