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

        public init() {}
    }

    /// 10^k for k in 0...22, all exact doubles (a switch, not a global table: no lazy-init check).
    @inline(__always)
    static func powerOfTen(_ k: Int) -> Double {
        switch k {
        case 0: return 1e0
        case 1: return 1e1
        case 2: return 1e2
        case 3: return 1e3
        case 4: return 1e4
        case 5: return 1e5
        case 6: return 1e6
        case 7: return 1e7
        case 8: return 1e8
        case 9: return 1e9
        case 10: return 1e10
        case 11: return 1e11
        case 12: return 1e12
        case 13: return 1e13
        case 14: return 1e14
        case 15: return 1e15
        case 16: return 1e16
        case 17: return 1e17
        case 18: return 1e18
        case 19: return 1e19
        case 20: return 1e20
        case 21: return 1e21
        default: return 1e22
        }
    }

    /// The value of 8 ASCII digits at `p` (SWAR, as in simdjson), or nil when they are not all digits.
    @inline(__always)
    public static func eightDigits(_ p: UnsafePointer<UInt8>) -> UInt64? {
        let v = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
        guard (v & 0xF0F0_F0F0_F0F0_F0F0) | (((v &+ 0x0606_0606_0606_0606) & 0xF0F0_F0F0_F0F0_F0F0) >> 4) == 0x3333_3333_3333_3333 else {
            return nil
        }
        var x = v &- 0x3030_3030_3030_3030
        x = (x &* 10) &+ (x >> 8)
        x = (((x & 0x0000_00FF_0000_00FF) &* (100 &+ (1_000_000 << 32)))
            &+ (((x >> 16) & 0x0000_00FF_0000_00FF) &* (1 &+ (10000 << 32)))) >> 32
        return x
    }

    /// The run of ASCII digits at the start of the 8 bytes at `p`: its value and length (0...8).
    /// Bytes after the first non-digit are ignored (they may lie past the field).
    @inline(__always)
    public static func leadingDigits(_ p: UnsafePointer<UInt8>) -> (value: UInt64, count: Int) {
        let v = UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
        let x = v &- 0x3030_3030_3030_3030
        // High bit set in each byte that is not a digit (exact up to the first one).
        let nonDigit = (x | (x &+ 0x7676_7676_7676_7676)) & 0x8080_8080_8080_8080
        let n = nonDigit.trailingZeroBitCount >> 3
        if n == 0 { return (0, 0) }
        // Right-align the n digits (zero bytes before them are leading zeros), then combine.
        var y = n == 8 ? x : x << UInt64(8 * (8 - n))
        y = (y &* 10) &+ (y >> 8)
        y = (((y & 0x0000_00FF_0000_00FF) &* (100 &+ (1_000_000 << 32)))
            &+ (((y >> 16) & 0x0000_00FF_0000_00FF) &* (1 &+ (10000 << 32)))) >> 32
        return (y, n)
    }

    /// The value of the decimal digits from `start` (wrapping past 19 digits) and where they stop.
    @inline(__always)
    public static func digitRun(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> (value: UInt64, stop: UnsafePointer<UInt8>) {
        var p = start
        var m: UInt64 = 0
        while p < end {
            let d = p.pointee &- 48
            if d > 9 { break }
            m = m &* 10 &+ UInt64(d)
            p += 1
        }
        return (m, p)
    }

    /// The common Binance shape, `digits[.digits]` with at most 19 digits, scanned quickly (eight
    /// fraction digits at a time); returns where it stopped, or nil for any other shape (the caller
    /// then uses `scanPrefix`).
    @inline(__always)
    public static func scanPlain(_ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>, into s: inout Scanned) -> UnsafePointer<UInt8>? {
        var (m, p) = digitRun(start, end)
        let intDigits = p - start
        guard intDigits > 0, intDigits <= 11 else { return nil }
        var scale = 0
        if p < end, p.pointee == UInt8(ascii: ".") {
            p += 1
            if end - p >= 8, let eight = eightDigits(p) {
                m = m &* 100_000_000 &+ eight
                p += 8
                scale = 8
            }
            while p < end {
                let d = p.pointee &- 48
                if d > 9 { break }
                m = m &* 10 &+ UInt64(d)
                p += 1
                scale += 1
            }
            guard intDigits + scale <= 19 else { return nil }
        }
        s.mantissa = m
        s.scale = scale
        return p
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
            v = m / powerOfTen(s.scale)
        } else {
            guard s.scale >= -22 else { return nil }
            v = m * powerOfTen(-s.scale)
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
