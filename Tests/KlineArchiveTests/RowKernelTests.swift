import XCTest
@testable import KlineArchive
import TestSupport

/// The AVX2 row kernel (CRowKernels) against the portable Swift path: for every row shape, the same
/// rows, report or error; and the kernel takes exactly the rows of Binance's 8-decimal shape.
final class RowKernelTests: XCTestCase {
    struct Outcome: Equatable {
        var batch: KlineBatch?
        var report: KlineReport?
        var error: String?
        var kernelRows = 0
    }

    let day = ArchivePeriod(year: 2021, month: 7, day: 14)!

    override func setUpWithError() throws {
        try XCTSkipUnless(rowKernelAvailable, "this CPU has no AVX2: the row kernel does not run here")
    }

    /// `csv` parsed in one buffer, as the decoder does, with or without the kernel.
    func parse<F: KlineFloat>(_ csv: String, _ type: F.Type, kernel: Bool, interval: Int64? = 60) -> Outcome {
        parse(bytes: Array(csv.utf8), type, kernel: kernel, interval: interval)
    }

    func parse<F: KlineFloat>(bytes: [UInt8], _: F.Type, kernel: Bool, interval: Int64? = 60, chunkRows: Int = 7) -> Outcome {
        let parser = KlineCSVParser<F>(archive: "kernel", columns: KlineColumn.allCases, intervalSeconds: interval, period: day,
                                       reserve: 16, rowKernel: kernel)
        var batches: [KlineBatch] = []
        var offset = 0
        do {
            try KlineArchiveDecoder.run(archive: "kernel", parser, chunkRows: chunkRows, read: { buffer, capacity in
                let n = min(capacity, bytes.count - offset)
                bytes.withUnsafeBufferPointer { _ = memcpy(buffer, $0.baseAddress! + offset, n) }
                offset += n
                return n
            }) { batches.append($0) }
        } catch {
            return Outcome(error: "\(error)", kernelRows: parser.kernelRows)
        }
        var report = KlineReport(archive: "kernel", member: "kernel", interval: "1m")
        parser.finishReport(into: &report)
        return Outcome(batch: batches.dropFirst().reduce(into: batches.first) { $0!.append($1) }, report: report, kernelRows: parser.kernelRows)
    }

    /// Both paths give the same outcome in float32 and float64; returns the kernel's in float64.
    @discardableResult
    func assertSamePaths(_ csv: String, interval: Int64? = 60, file: StaticString = #filePath, line: UInt = #line) -> Outcome {
        assertSamePaths(bytes: Array(csv.utf8), interval: interval, file: file, line: line)
    }

    @discardableResult
    func assertSamePaths(bytes: [UInt8], interval: Int64? = 60, chunkRows: Int = 7, context: String = "",
                         file: StaticString = #filePath, line: UInt = #line) -> Outcome {
        var kernelOutcome = Outcome()
        for float64 in [false, true] {
            func run<F: KlineFloat>(_ type: F.Type, kernel: Bool) -> Outcome {
                parse(bytes: bytes, type, kernel: kernel, interval: interval, chunkRows: chunkRows)
            }
            var kernel = float64 ? run(Double.self, kernel: true) : run(Float.self, kernel: true)
            let swift = float64 ? run(Double.self, kernel: false) : run(Float.self, kernel: false)
            XCTAssertEqual(swift.kernelRows, 0, file: file, line: line)
            let taken = kernel.kernelRows
            kernel.kernelRows = 0
            XCTAssertEqual(kernel, swift, "\(float64 ? "float64" : "float32") \(context)", file: file, line: line)
            kernel.kernelRows = taken
            kernelOutcome = kernel
        }
        return kernelOutcome
    }

    func rows(micro: Bool = false) -> [String] {
        SyntheticKlines.rows(start: day.start, interval: 60, count: 20, micro: micro)
    }

    /// Row 5 of 20 with field `column` replaced by `value`.
    func withField(_ column: Int, _ value: String) -> String {
        var lines = rows()
        var fields = lines[5].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        fields[column] = value
        lines[5] = fields.joined(separator: ",")
        return lines.joined(separator: "\n") + "\n"
    }

    func testTheKernelTakesTheCommonRowsAndGivesTheSwiftPathsValues() throws {
        for micro in [false, true] {
            for separator in ["\n", "\r\n"] {
                let csv = rows(micro: micro).joined(separator: separator) + separator
                let outcome = assertSamePaths(csv)
                XCTAssertNil(outcome.error)
                XCTAssertEqual(outcome.report?.rows, 20)
                // Every row but the first, which fixes the time unit on the careful path, and the
                // last ones, which lack the kernel's span of bytes after them: rising and falling
                // candles alike.
                var offset = 0
                let spanned = rows(micro: micro).dropLast().map { offset += $0.utf8.count + separator.utf8.count; return offset }
                    .filter { $0 + KlineCSVParser<Double>.kernelSpan <= csv.utf8.count }.count
                XCTAssertEqual(outcome.kernelRows, spanned, "micro \(micro)")
                XCTAssertEqual(parse(csv, Float.self, kernel: true).kernelRows, spanned, "float32, micro \(micro)")
                XCTAssertGreaterThanOrEqual(spanned, 15)
            }
        }
    }

    /// The kernel rows of the unchanged 20 rows.
    var common: Int { parse(rows().joined(separator: "\n") + "\n", Double.self, kernel: true).kernelRows }

    func testShapesTheKernelTakes() throws {
        for value in ["1.00000000", "0.00000000", "0.00000001", "1234567.12345678", "0030000.00000000", "30000.99999999"] {
            XCTAssertEqual(assertSamePaths(withField(5, value)).kernelRows, common, value)
        }
        for trades in ["0", "7", "1234567890123456"] {
            XCTAssertEqual(assertSamePaths(withField(8, trades)).kernelRows, common, trades)
        }
    }

    func testShapesTheKernelLeavesToTheSwiftPath() throws {
        // Other decimal shapes, 8 integer digits, signs, exponents, long counts, another `ignore`.
        let cases: [(Int, String)] = [(1, "30000.5"), (1, "30000.123456789"), (1, "30000"), (1, "12345678.00000000"),
                                      (1, "+30000.00000000"), (1, "3.0e4"), (5, "1E-5"), (8, "12345678901234567"),
                                      (11, "1"), (11, "00")]
        for (column, value) in cases {
            XCTAssertEqual(assertSamePaths(withField(column, value)).kernelRows, common - 1, "\(column): \(value)")
        }
        // A float32 rounding tie (153795.7265625 lies halfway between two floats) is left to the
        // Swift path's division, and comes out correctly rounded; float64 has no such doubt.
        let tieCSV = withField(10, "153795.72656250")
        let tie = parse(tieCSV, Float.self, kernel: true)
        XCTAssertEqual(tie.kernelRows, parse(rows().joined(separator: "\n") + "\n", Float.self, kernel: true).kernelRows - 1)
        XCTAssertEqual(tie.batch?.values(.takerBuyQuoteVolume)?.double(at: 5), Double(strtof("153795.72656250", nil)))
        XCTAssertEqual(assertSamePaths(tieCSV).kernelRows, common)
    }

    /// The kernel takes only rows that continue the interval grid with the right close time and
    /// sane prices: any other content is judged by the Swift path, with the same report.
    func testRowsThatBreakTheRunAreLeftToTheSwiftPath() throws {
        let fields = rows()[5].split(separator: ",").map(String.init)
        let (high, low, openTime) = (fields[2], fields[3], Int64(fields[0])!)
        let cases: [(String, (Int, String), Anomaly.Kind)] = [
            ("low above open and close", (3, high), .ohlcInconsistent), ("high below open and close", (2, low), .ohlcInconsistent),
            ("open above high", (1, "1234567.00000000"), .ohlcInconsistent), ("close below low", (4, "0.00000001"), .ohlcInconsistent),
            ("low of 0", (3, "0.00000000"), .nonPositivePrice),
            ("close time", (6, String(openTime + 1)), .closeTimeMismatch),
        ]
        for (name, (column, value), kind) in cases {
            let outcome = assertSamePaths(withField(column, value))
            XCTAssertEqual(outcome.kernelRows, common - 1, name)
            XCTAssertTrue(outcome.report?.anomalies.contains { $0.kind == kind } ?? false, name)
        }
        // Off the grid: that row and the next start no run (the grid is not predicted after it).
        let offGrid = assertSamePaths(withField(0, String(openTime + 1)))
        XCTAssertEqual(offGrid.kernelRows, common - 2)
        XCTAssertTrue(offGrid.report?.anomalies.contains { $0.kind == .offGrid } ?? false)
        // A gap: the row after it starts no run; the rows after that do.
        var gap = rows()
        gap.remove(at: 5)
        let outcome = assertSamePaths(gap.joined(separator: "\n") + "\n")
        XCTAssertEqual(outcome.kernelRows, common - 2)
        XCTAssertEqual(outcome.report?.missingRows, assertSamePaths(rows().joined(separator: "\n") + "\n").report.map { $0.missingRows + 1 })
    }

    /// Runs the kernel takes whose times are not the common case (rows outside the period, a
    /// block of rows again, no fixed interval) are tracked row by row, with the same report.
    func testRunsOutsideTheCommonCaseGiveTheSameReport() throws {
        let rows = SyntheticKlines.rows(start: day.start, interval: 60, count: 60)
        let repeated = rows + rows[30..<45]
        let backwards = rows[30...] + rows[..<30]
        let crossing = SyntheticKlines.rows(start: day.end - 30 * 60, interval: 60, count: 60)
        for (name, csv, interval) in [("a block again", repeated, Int64?(60)), ("a block before the earlier", Array(backwards), 60), ("past the period", crossing, 60),
                                      ("before the period", SyntheticKlines.rows(start: day.start - 30 * 60, interval: 60, count: 60), 60),
                                      ("no interval", rows, nil)] {
            let outcome = assertSamePaths(csv.joined(separator: "\n") + "\n", interval: interval)
            XCTAssertNil(outcome.error, name)
            XCTAssertGreaterThan(outcome.kernelRows, csv.count - 8, name)
        }
        XCTAssertEqual(assertSamePaths(repeated.joined(separator: "\n") + "\n").report?.duplicates, 15)
        XCTAssertEqual(assertSamePaths(backwards.joined(separator: "\n") + "\n").report?.outOfOrder, 30)
    }

    func testMalformedRowsGiveTheSameErrorsEitherWay() throws {
        let cases: [(Int, String)] = [(1, "30a00.00000000"), (2, ""), (3, "30000.0000000x"), (4, "30000..0000000"),
                                      (0, "16262208000000"), (8, "-5"), (9, "1.00000000,2")]
        for (column, value) in cases {
            XCTAssertNotNil(assertSamePaths(withField(column, value)).error, "\(column): \(value)")
        }
        // A row cut short: its line feed comes before its 11th comma.
        var lines = rows()
        lines[5] = lines[5].split(separator: ",").prefix(6).joined(separator: ",")
        XCTAssertNotNil(assertSamePaths(lines.joined(separator: "\n") + "\n").error)
    }

    /// Mutated files, fed whole: the same rows, report or error either way (FUZZ_ITERATIONS files,
    /// as for the fuzz tests; 500 by default: each is parsed four times). Line mutations (a row removed, a block of rows
    /// repeated or moved earlier) break and restart the kernel's runs; byte mutations change
    /// shapes and values. Batches of 7 rows cut runs short; batches of 1,000 let them span
    /// the slot bitmap's 64-slot words.
    func testMutatedFilesGiveTheSameOutcomeEitherWay() throws {
        let iterations = Int(ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"] ?? "") ?? 500
        var random = SeededMutations(seed: 0x4B11_5EED)
        var kernelRows = 0, refused = 0, anomalous = 0
        for i in 0..<iterations {
            var lines = SyntheticKlines.rows(start: day.start, interval: 60, count: 100, micro: i % 2 == 1, seed: UInt64(i % 5 + 1))
            for _ in 0..<random.next(3) {
                let at = random.next(lines.count), length = random.next(70) + 1
                let block = Array(lines[at..<min(lines.count, at + length)])
                switch random.next(3) {
                case 0: lines.remove(at: at)
                case 1: lines.insert(contentsOf: block, at: min(lines.count, at + length + random.next(10)))
                default: lines.removeSubrange(at..<at + block.count); lines.insert(contentsOf: block, at: random.next(at + 1))
                }
            }
            var bytes = Array((lines.joined(separator: i % 3 == 0 ? "\r\n" : "\n") + "\n").utf8)
            if random.next(2) == 0 { random.mutate(&bytes, most: 3) }
            let outcome = assertSamePaths(bytes: bytes, chunkRows: i % 4 < 2 ? 7 : 1000, context: "file \(i)")
            kernelRows += outcome.kernelRows
            if outcome.error != nil { refused += 1 }
            if let report = outcome.report, report.duplicates + report.outOfOrder + report.missingRows > 0 { anomalous += 1 }
        }
        XCTAssertGreaterThan(kernelRows, iterations * 50)
        XCTAssertGreaterThan(refused, iterations / 20)
        XCTAssertGreaterThan(anomalous, iterations / 4)
    }
}
