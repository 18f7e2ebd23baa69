import XCTest
@testable import KlineArchive

/// The number parser gives exactly what the C library's correctly rounding strtof/strtod give.
final class DecimalParserTests: XCTestCase {
    /// Binance's shapes: up to 8 decimals, up to 20 significant digits, with and without trailing
    /// zeros, plus halfway cases for float32 rounding and a few exponent forms.
    func randomDecimal(_ rng: inout SplitMix64) -> String {
        let shape = rng.next() % 10
        if shape == 0 {
            // A float32 midpoint (24-bit mantissa plus a half) printed exactly, then nudged or not.
            let m = Double((rng.next() % (1 << 24)) | (1 << 23)) + 0.5
            let e = Int(rng.next() % 40) - 28
            let v = m * pow(2.0, Double(e))
            return String(format: "%.\(Int(rng.next() % 3) + 24)g", v)
        }
        let significant = Int(rng.next() % 20) + 1
        let decimals = Int(rng.next() % 9)
        var digits = ""
        for i in 0..<significant { digits.append(Character(String(i == 0 ? rng.next() % 9 + 1 : rng.next() % 10))) }
        var text: String
        if decimals == 0 {
            text = digits
        } else if decimals >= significant {
            text = "0." + String(repeating: "0", count: decimals - significant) + digits
        } else {
            text = String(digits.dropLast(decimals)) + "." + String(digits.suffix(decimals))
        }
        if shape == 1 { text += String(repeating: "0", count: Int(rng.next() % 8)) }  // Binance pads with zeros
        if shape == 2 { text += "e" + String(Int(rng.next() % 30) - 15) }
        return text
    }

    func parse<T>(_ text: String, _ f: (UnsafePointer<UInt8>, UnsafePointer<UInt8>) -> T?) -> T? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { f($0.baseAddress!, $0.baseAddress! + $0.count) }
    }

    func testOneMillionRandomDecimalsMatchStrtofAndStrtod() {
        var rng = SplitMix64(seed: 20_261_125)
        var mismatches: [String] = []
        for _ in 0..<1_000_000 {
            let text = randomDecimal(&rng)
            let f = parse(text, DecimalParser.parseFloat)
            let d = parse(text, DecimalParser.parseDouble)
            if f?.bitPattern != strtof(text, nil).bitPattern || d?.bitPattern != strtod(text, nil).bitPattern {
                if mismatches.count < 10 { mismatches.append(text) }
            }
        }
        XCTAssertEqual(mismatches, [])
    }

    /// The 8-decimal float32 path multiplies instead of dividing: it must still round exactly,
    /// above all next to float32 halfway points, where it has to hand over to the division.
    func testEightDecimalFloat32PathMatchesStrtof() {
        var rng = SplitMix64(seed: 88)
        var mismatches: [String] = []
        func check(_ m: UInt64) {
            let text = String(m / 100_000_000) + "." + String(String(m % 100_000_000 + 100_000_000).dropFirst())
            // nil hands the field to the general parser, as the CSV parser does.
            let value = Float.exactEightDecimals(m) ?? parse(text, DecimalParser.parseFloat)
            if value?.bitPattern != strtof(text, nil).bitPattern, mismatches.count < 10 { mismatches.append(text) }
        }
        for _ in 0..<200_000 {
            check(rng.next() % 1_000_000_000_000_000)  // up to 10 integer digits
            // Float32 halfway points that 8 decimals can write (values of 2^20 ... 2^26, where the
            // halfway step is a multiple of 2^-4), and their neighbours 1e-8 apart, which lie a few
            // double ulps away: about a third of these go to the division.
            let e = Int(rng.next() % 6) + 20
            let halfway = (Double((1 << 23) | (rng.next() % (1 << 23))) + 0.5) * pow(2.0, Double(e - 23))
            let center = UInt64(halfway * 1e8)  // exact: below 2^53 and a multiple of 10^8 / 2^4
            for k in 0...4 { check(center + UInt64(k) - 2) }
        }
        XCTAssertEqual(mismatches, [])
    }

    func testKnownHardCases() {
        let cases = [
            "0", "0.00000000", "-0.0", "1", "16777216", "16777217", "16777219", "0.1", "0.3", "7195.24000000",
            "9007199254740993", "90071992547409931", "12345678901234567890", "1234567890.1234567890",
            "0.00000001", "4.0000000000000000001", "3.4028235e38", "3.4028236e38", "1e-45", "2.5e-46",
            // float32 double-rounding traps: halfway between floats in double, not in decimal
            "1.00000005960464477539062500000001", "1.000000059604644775390625", "8388609.5", "8388610.5",
            "0.000000000000000000000000000000000000011754942807573642917",
        ]
        for text in cases {
            XCTAssertEqual(parse(text, DecimalParser.parseFloat)?.bitPattern, strtof(text, nil).bitPattern, text)
            XCTAssertEqual(parse(text, DecimalParser.parseDouble)?.bitPattern, strtod(text, nil).bitPattern, text)
        }
    }

    func testMalformedInputIsRejected() {
        for text in ["", "-", ".", "1.2.3", "1e", "1e+", "abc", "1,5", " 1", "1 ", "0x10", "inf", "nan", "--1", "1..2"] {
            XCTAssertNil(parse(text, DecimalParser.parseDouble), text)
            XCTAssertNil(parse(text, DecimalParser.parseFloat), text)
        }
    }

    /// The CSV parser's own fast paths (8-byte loads) give the same bits as strtof/strtod for
    /// random decimals in every float column.
    func testRandomDecimalsThroughTheCSVParserMatchStrtofAndStrtod() throws {
        var rng = SplitMix64(seed: 7)
        let start = ArchivePeriod(year: 2024, month: 1)!.start
        var lines: [String] = []
        var fields: [[String]] = []
        for i in 0..<30_000 {
            var f = (0..<8).map { _ -> String in
                var text = randomDecimal(&rng)
                if rng.next() % 2 == 0, !text.contains("e"), let dot = text.firstIndex(of: ".") {
                    // Binance's shape: pad or cut to exactly 8 decimals.
                    let decimals = text.distance(from: dot, to: text.endIndex) - 1
                    text = decimals < 8 ? text + String(repeating: "0", count: 8 - decimals) : String(text.prefix(text.distance(from: text.startIndex, to: dot) + 9))
                }
                return text
            }
            fields.append(f)
            let t = (start + Int64(i)) * 1000
            f.insert(String(t), at: 0)
            f.insert(String(t + 999), at: 6)
            f.insert(String(rng.next() % 100_000), at: 8)
            f.append("0")
            lines.append(f.joined(separator: ","))
        }
        let dir = try TestPaths.temporaryDirectory()
        let path = try writeFile(dir, "XUSDT-1s-2024-01.zip", ZipBuilder.single("XUSDT-1s-2024-01.csv", lines.joined(separator: "\n")))
        let float64 = KlineColumn.allCases.filter { $0 != .trades }
        let (b4, _) = try KlineArchiveDecoder.decode(path: path, options: .init(columns: float64, floatType: .float32))
        let (b8, _) = try KlineArchiveDecoder.decode(path: path, options: .init(columns: float64, floatType: .float64))
        var mismatches: [String] = []
        for (k, column) in float64.enumerated() {
            guard case let .float32(v4) = b4.values(column)!, case let .float64(v8) = b8.values(column)! else { return XCTFail() }
            for i in 0..<fields.count where v4[i].bitPattern != strtof(fields[i][k], nil).bitPattern || v8[i].bitPattern != strtod(fields[i][k], nil).bitPattern {
                if mismatches.count < 10 { mismatches.append("\(column) row \(i): \(fields[i][k])") }
            }
        }
        XCTAssertEqual(mismatches, [])
    }
}
