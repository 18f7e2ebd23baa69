import Columnar
import Foundation
import KlineArchive
import XCTest
@testable import TradeArchive
import TestSupport

/// The AVX2 trade row kernel (CRowKernels) against the Swift fields: for every layout and row
/// shape, the same rows, report or error; and the kernel takes exactly the rows of the common shape.
final class TradeRowKernelTests: XCTestCase {
    struct Outcome: Equatable {
        var rows: [String] = []
        var report: TradeReport?
        var error: String?
        var kernelRows = 0
    }

    struct Layout {
        var file: String
        var market: TradeMarket
        var header: String?
        /// Row i of a file of this layout.
        var row: (Int) -> String
    }

    override func setUpWithError() throws {
        try XCTSkipUnless(rowKernelAvailable, "this CPU has no AVX2: the row kernel does not run here")
    }

    /// Every layout Binance publishes, with realistic rows (prices and amounts of several shapes).
    let layouts: [Layout] = [
        Layout(file: "BTCUSDT-trades-2025-03-01.zip", market: .spot, header: nil) { i in
            "\(4_000_000_000 + i),85447.\(String(format: "%08d", 79_000_000 + i * 7)),0.\(String(format: "%08d", 20506 + i * 131)),17521.92381740,\(1_740_787_200_000_000 + Int64(i) * 32258),\(i % 3 == 0 ? "True" : "False"),True"
        },
        Layout(file: "LTCUSDT-trades-2024-01-01.zip", market: .spot, header: nil) { i in
            "\(51_175_358 + i),17.8\(i % 10)180000,5.69000000,101.29224200,\(1_704_067_200_010 + Int64(i) * 97),\(i % 2 == 0 ? "True" : "False"),\(i % 5 == 0 ? "False" : "True")"
        },
        Layout(file: "ETHUSDT-aggTrades-2025-03-01.zip", market: .spot, header: nil) { i in
            "\(900_000 + i),2200.\(10 + i % 90)000000,1.\(String(format: "%08d", i * 37)),\(5_000_000 + 3 * i),\(5_000_002 + 3 * i),\(1_740_787_200_000_000 + Int64(i) * 1_000_003),False,True"
        },
        Layout(file: "BTCUSDT-trades-2024-01-01.zip", market: .um, header: "id,price,qty,quote_qty,time,is_buyer_maker") { i in
            "\(4_571_231_491 + i),42314.\(i % 10),0.00\(1 + i % 9),\(42 + i).31400,\(1_704_067_200_048 + Int64(i) * 11),\(i % 2 == 0 ? "true" : "false")"
        },
        Layout(file: "BTCUSD_PERP-trades-2024-01-01.zip", market: .cm, header: "id,price,qty,base_qty,time,is_buyer_maker") { i in
            "\(700_000 + i),42310.\(i % 10),\(1 + i % 40),0.\(String(format: "%08d", 236_350 + i)),\(1_704_067_200_000 + Int64(i) * 250),\(i % 4 == 0 ? "true" : "false")"
        },
        Layout(file: "BTCUSDT-aggTrades-2024-01-01.zip", market: .um,
               header: "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker") { i in
            "\(2_000_000_000 + i),42313.\(90 + i % 10),0.0\(10 + i % 90),\(4_571_231_491 + 2 * i),\(4_571_231_492 + 2 * i),\(1_704_067_200_048 + Int64(i) * 13),\(i % 2 == 0 ? "true" : "false")"
        },
    ]

    /// `csv` fed in one piece, as the archive decoder's buffer does, with or without the kernel.
    func parse<F: KlineFloat>(_ csv: [UInt8], _ layout: Layout, _: F.Type, kernel: Bool) -> Outcome {
        let name = TradeArchiveName(fileName: layout.file)!
        var outcome = Outcome()
        let parser = TradeCSVParser<F>(layout: TradeLayout(dataset: name.dataset, market: layout.market), source: layout.file,
                                       member: layout.file, name: name, chunkRows: 9, rowKernel: kernel) { b in
            for i in 0..<b.count {
                let third = b.amounts.isEmpty ? "\(b.firstTradeIDs[i])-\(b.lastTradeIDs[i])" : "\(b.amounts[i])"
                outcome.rows.append("\(b.ids[i]) \(b.epochs[i]).\(b.nanoseconds[i]) \(b.prices[i]) \(b.quantities[i]) \(third) "
                    + "\(b.buyerMaker[i]) \(b.bestMatch.isEmpty ? "-" : "\(b.bestMatch[i])")")
            }
        }
        do {
            try csv.withUnsafeBytes { try parser.feed($0) }
            outcome.report = try parser.finish()
        } catch {
            outcome.error = "\(error)"
        }
        outcome.kernelRows = parser.kernelRows
        return outcome
    }

    /// Both paths give the same outcome in float32 and float64; returns the kernel's in float64.
    @discardableResult
    func assertSamePaths(_ csv: String, _ layout: Layout, file: StaticString = #filePath, line: UInt = #line) -> Outcome {
        assertSamePaths(bytes: Array(csv.utf8), layout, file: file, line: line)
    }

    @discardableResult
    func assertSamePaths(bytes csv: [UInt8], _ layout: Layout, file: StaticString = #filePath, line: UInt = #line) -> Outcome {
        var kernelOutcome = Outcome()
        for float64 in [false, true] {
            var kernel = float64 ? parse(csv, layout, Double.self, kernel: true) : parse(csv, layout, Float.self, kernel: true)
            let swift = float64 ? parse(csv, layout, Double.self, kernel: false) : parse(csv, layout, Float.self, kernel: false)
            XCTAssertEqual(swift.kernelRows, 0, file: file, line: line)
            let taken = kernel.kernelRows
            kernel.kernelRows = 0
            XCTAssertEqual(kernel, swift, "\(layout.file) \(float64 ? "float64" : "float32")", file: file, line: line)
            kernel.kernelRows = taken
            kernelOutcome = kernel
        }
        return kernelOutcome
    }

    /// A file of `count` rows of `layout` (with its header), row `at` replaced by `replacement`.
    func file(_ layout: Layout, count: Int = 30, replacing at: Int = -1, with replacement: String = "", separator: String = "\n") -> String {
        var lines = (0..<count).map(layout.row)
        if at >= 0 { lines[at] = replacement }
        return ((layout.header.map { [$0] } ?? []) + lines).joined(separator: separator) + separator
    }

    /// The rows the kernel can take in `csv`: every data row after the first (which fixes the time
    /// unit on the careful path) that starts at least the kernel's span plus a load before the end.
    func rowsWithSpan(_ csv: String, _ layout: Layout) -> Int {
        let bytes = Array(csv.utf8)
        var starts = [0] + bytes.indices.filter { bytes[$0] == 0x0A }.map { $0 + 1 }.dropLast()
        starts.removeFirst(layout.header == nil ? 1 : 2)
        return starts.filter { $0 <= bytes.count - TradeCSVParser<Double>.kernelReach }.count
    }

    func testTheKernelTakesTheCommonRowsOfEveryLayout() throws {
        for layout in layouts {
            for separator in ["\n", "\r\n"] {
                let csv = file(layout, separator: separator)
                let outcome = assertSamePaths(csv, layout)
                XCTAssertNil(outcome.error, layout.file)
                XCTAssertEqual(outcome.report?.rows, 30)
                XCTAssertEqual(outcome.kernelRows, rowsWithSpan(csv, layout), "\(layout.file) \(separator.count)")
                XCTAssertGreaterThan(outcome.kernelRows, 20, layout.file)
            }
        }
    }

    /// Row 10 of a raw spot trades file with field `field` set to `value`.
    func spotRow(_ field: Int, _ value: String) -> String {
        var fields = layouts[0].row(10).split(separator: ",").map(String.init)
        fields[field] = value
        return fields.joined(separator: ",")
    }

    func testShapesTheKernelTakes() throws {
        let spot = layouts[0]
        let base = assertSamePaths(file(spot), spot).kernelRows
        let shapes = [
            spotRow(1, "0.1"), spotRow(1, "85447"), spotRow(2, "123456789012345"), spotRow(1, "12345678.1234567"), spotRow(1, "00012.50000000"), spotRow(1, "0.00000001"),
            spotRow(2, "0.0"), spotRow(3, "999999999999.999"), spotRow(0, "7"), spotRow(0, "4000000000000010"), spotRow(5, "true"),
            spotRow(6, "false"),
        ]
        for row in shapes {
            let outcome = assertSamePaths(file(spot, replacing: 10, with: row), spot)
            XCTAssertNil(outcome.error, row)
            XCTAssertEqual(outcome.kernelRows, base, "the kernel left \(row)")
        }
    }

    func testShapesTheKernelLeavesToTheSwiftPath() throws {
        let spot = layouts[0]
        let base = assertSamePaths(file(spot), spot).kernelRows
        let shapes = [
            spotRow(1, "1234567890.123456"), spotRow(1, "1234567890123456"),  // 16 digits
            spotRow(1, "12345678901234567.5"),  // 18 digits
            spotRow(2, ".5"), spotRow(2, "5."), spotRow(2, "1e-5"), spotRow(2, "1.5E2"),
            spotRow(3, "153795.72656250"),  // a float32 tie: the kernel refuses it in float32 only
            spotRow(5, "TRUE"),  // the Swift path's error
            spotRow(0, "12345678901234567"),  // 17 digits
            spotRow(4, "1740787200000"),  // milliseconds in a microsecond file: the Swift path's error
            spotRow(6, "True,True"),  // a field too many: the Swift path's error
        ]
        for row in shapes {
            let outcome = assertSamePaths(file(spot, replacing: 10, with: row), spot)
            if row.contains("153795.72656250") {
                XCTAssertNil(outcome.error)
                // float64 (the outcome returned) takes the tie; the float32 run was compared above.
                XCTAssertEqual(outcome.kernelRows, base)
                let float32 = parse(Array(file(spot, replacing: 10, with: row).utf8), spot, Float.self, kernel: true)
                XCTAssertEqual(float32.kernelRows, base - 1, "float32 took the tie")
            } else {
                // Left to the Swift path, or an error there after the 9 rows before it.
                XCTAssertEqual(outcome.kernelRows, outcome.error == nil ? base - 1 : 9, "the kernel took \(row)")
            }
        }
        // An aggregate whose trades run backwards: the Swift path's error.
        let agg = layouts[5]
        let outcome = assertSamePaths(file(agg, replacing: 10, with: "2000000010,42313.90,0.01,9,8,1704067200178,true"), agg)
        XCTAssertTrue(outcome.error?.contains("line 12: first_trade_id 9 is after last_trade_id 8") == true, "\(outcome.error ?? "no error")")
    }

    /// Mutated files of every layout, fed whole: the same rows or the same error either way
    /// (FUZZ_ITERATIONS files, as for the fuzz tests; 1,200 by default).
    func testMutatedFilesGiveTheSameOutcomeEitherWay() throws {
        let iterations = Int(ProcessInfo.processInfo.environment["FUZZ_ITERATIONS"] ?? "") ?? 1200
        var random = SeededMutations(seed: 0x7AD3_5EED)
        var kernelRows = 0, refused = 0
        for i in 0..<iterations {
            let layout = layouts[i % layouts.count]
            var bytes = Array(file(layout, count: 12).utf8)
            random.mutate(&bytes, most: 3)
            let outcome = assertSamePaths(bytes: bytes, layout)
            kernelRows += outcome.kernelRows
            if outcome.error != nil { refused += 1 }
        }
        XCTAssertGreaterThan(kernelRows, 1000)
        XCTAssertGreaterThan(refused, 100)
    }
}
