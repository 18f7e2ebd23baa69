import Columnar
/// The two float widths a kline column can be decoded to.
public protocol KlineFloat: BinaryFloatingPoint {
    static func convert(_ s: DecimalParser.Scanned, _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Self
    static func column(_ values: [Self]) -> ColumnValues
    /// `m / 10^scale` for m < 2^53 and scale in 0...22, or nil when the fast path cannot round it.
    static func exact(_ m: UInt64, _ scale: Int) -> Self?
    /// `m / 10^8` (Binance's 8 decimals) for m < 2^53, or nil when the fast path cannot round it.
    static func exactEightDecimals(_ m: UInt64) -> Self?
}

extension Float: KlineFloat {
    @inline(__always)
    public static func convert(_ s: DecimalParser.Scanned, _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Float {
        DecimalParser.float(s, start, end)
    }
    public static func column(_ values: [Float]) -> ColumnValues { .float32(values) }
    @inline(__always)
    public static func exact(_ m: UInt64, _ scale: Int) -> Float? {
        let d = Double(m) / DecimalParser.powerOfTen(scale)
        // Exactly halfway between two floats: rounding again could go the wrong way.
        return d.bitPattern & 0x1FFF_FFFF != 0x1000_0000 || d == 0 ? Float(d) : nil
    }

    /// A multiplication instead of the division (the divisions measured as a third of the parse
    /// time): `Double(m) * 1e-8` is within 2 double ulps of m / 10^8 (two roundings of at most
    /// 2^-53 each), so when it is more than 4 ulps away from a float32 halfway point (where the
    /// double's low 29 bits are 0x1000_0000), the exact quotient rounds to the same float32.
    /// Otherwise the division decides.
    @inline(__always)
    public static func exactEightDecimals(_ m: UInt64) -> Float? {
        let d = Double(m) * 1e-8
        if (d.bitPattern & 0x1FFF_FFFF) &- (0x1000_0000 - 4) > 8 { return Float(d) }
        return exact(m, 8)
    }
}

extension Double: KlineFloat {
    @inline(__always)
    public static func convert(_ s: DecimalParser.Scanned, _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double {
        DecimalParser.double(s, start, end)
    }
    public static func column(_ values: [Double]) -> ColumnValues { .float64(values) }
    @inline(__always)
    public static func exact(_ m: UInt64, _ scale: Int) -> Double? { Double(m) / DecimalParser.powerOfTen(scale) }
    @inline(__always)
    public static func exactEightDecimals(_ m: UInt64) -> Double? { Double(m) / 1e8 }
}
