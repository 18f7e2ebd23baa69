#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Exact decimal-string to float conversion, straight from bytes (no String per field).
///
/// Written by hand because no offline package parses from raw bytes: Swift's `Double(String)`
/// needs a String per field, which is several times slower than the CSV scan itself.
///
/// Fast path (Clinger): with a mantissa m < 2^53 and a power of ten 10^k, k <= 22, both are exact
/// doubles, so one IEEE multiplication or division gives the correctly rounded double. For float32,
/// rounding that double once more is correct unless the double is exactly halfway between two
/// floats (the only place double rounding can go wrong); those rare cases, mantissas with more than
/// 19 significant digits and exponents past the table go to the C library's `strtof`/`strtod`,
/// which round correctly.
public enum DecimalParser {
    /// A decimal field scanned into `mantissa x 10^(-scale)`.
    public struct Scanned {
        public var mantissa: UInt64 = 0
        public var scale: Int = 0
        public var negative = false
        /// More than 19 significant digits: the mantissa is not exact.
        public var overflow = false
    }

    static let powersOfTen: [Double] = (0...22).map { k in
        var v = 1.0
        for _ in 0..<k { v *= 10 }
        return v
    }

    /// Scans `[start, end)` as `[-|+]digits[.digits][(e|E)[-|+]digits]`; nil when malformed.
    @inline(__always)
    public static func scan(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Scanned? {
        var s = Scanned()
        return scanPrefix(start, end, into: &s) == end ? s : nil
    }

    /// Scans the longest number at `start` (stopping at the first byte that cannot continue it) and
    /// returns where it stopped; nil when no digit was seen. The caller checks the stop byte.
    @inline(__always)
    public static func scanPrefix(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>,
                                  into s: inout Scanned) -> UnsafePointer<UInt8>? {
        var p = start
        if p < end, p.pointee == UInt8(ascii: "-") || p.pointee == UInt8(ascii: "+") {
            s.negative = p.pointee == UInt8(ascii: "-")
            p += 1
        }
        var digits = 0  // significant digits taken into the mantissa
        var sawDigit = false
        while p < end {
            let d = p.pointee &- 48
            if d > 9 { break }
            sawDigit = true
            if digits < 19 {
                s.mantissa = s.mantissa &* 10 &+ UInt64(d)
                if s.mantissa != 0 { digits += 1 }
            } else {
                s.overflow = true
            }
            p += 1
        }
        if p < end, p.pointee == UInt8(ascii: ".") {
            p += 1
            while p < end {
                let d = p.pointee &- 48
                if d > 9 { break }
                sawDigit = true
                if digits < 19 {
                    s.mantissa = s.mantissa &* 10 &+ UInt64(d)
                    if s.mantissa != 0 { digits += 1 }
                    s.scale += 1
                } else {
                    s.overflow = true
                }
                p += 1
            }
        }
        guard sawDigit else { return nil }
        if p < end, p.pointee | 0x20 == UInt8(ascii: "e") {
            p += 1
            var expNegative = false
            if p < end, p.pointee == UInt8(ascii: "-") || p.pointee == UInt8(ascii: "+") {
                expNegative = p.pointee == UInt8(ascii: "-")
                p += 1
            }
            var exp = 0
            var expDigits = 0
            while p < end {
                let d = p.pointee &- 48
                if d > 9 { break }
                if exp < 100_000 { exp = exp * 10 + Int(d) }
                expDigits += 1
                p += 1
            }
            guard expDigits > 0 else { return nil }
            s.scale += expNegative ? exp : -exp
        }
        return p
    }

    /// The correctly rounded double, or nil when the fast path cannot guarantee it.
    @inline(__always)
    static func fastDouble(_ s: Scanned) -> Double? {
        guard !s.overflow, s.mantissa < (1 << 53) else { return nil }
        let m = Double(s.mantissa)
        var v: Double
        if s.mantissa == 0 {
            v = 0
        } else if s.scale >= 0 {
            guard s.scale <= 22 else { return nil }
            v = m / powersOfTen[s.scale]
        } else {
            guard s.scale >= -22 else { return nil }
            v = m * powersOfTen[-s.scale]
        }
        return s.negative ? -v : v
    }

    /// Parses `[start, end)` to the correctly rounded double; nil when malformed.
    @inline(__always)
    public static func parseDouble(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double? {
        guard let s = scan(start, end) else { return nil }
        return double(s, start, end)
    }

    /// The double of an already scanned field `[start, end)`.
    @inline(__always)
    public static func double(_ s: Scanned, _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double {
        if let v = fastDouble(s) { return v }
        return slowPath(start, end) { strtod($0, $1) } ?? .nan
    }

    /// Parses `[start, end)` to the correctly rounded float; nil when malformed.
    @inline(__always)
    public static func parseFloat(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Float? {
        guard let s = scan(start, end) else { return nil }
        return float(s, start, end)
    }

    /// The float of an already scanned field `[start, end)`.
    @inline(__always)
    public static func float(_ s: Scanned, _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Float {
        if let d = fastDouble(s) {
            // A double exactly halfway between two floats: its lower 29 significand bits are 1000...0.
            let low = d.bitPattern & 0x1FFF_FFFF
            if low != 0x1000_0000 || d == 0 { return Float(d) }
        }
        return slowPath(start, end) { strtof($0, $1) } ?? .nan
    }

    /// The C library's conversion on a NUL-terminated copy of the field.
    static func slowPath<T>(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>,
                            _ convert: (UnsafePointer<CChar>, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> T) -> T? {
        let n = end - start
        guard n < 512 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf -> T? in
            let base = buf.baseAddress!
            UnsafeMutableRawPointer(base).copyMemory(from: start, byteCount: n)
            base[n] = 0
            var endPtr: UnsafeMutablePointer<CChar>?
            let v = convert(base, &endPtr)
            guard let endPtr, endPtr - base == n else { return nil }
            return v
        }
    }
}
