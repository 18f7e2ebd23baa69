/// The two float widths a kline column can be decoded to.
public protocol KlineFloat: BinaryFloatingPoint {
    static func convert(_ s: DecimalParser.Scanned, _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Self
    static func column(_ values: [Self]) -> ColumnValues
    /// `m / 10^scale` for m < 2^53 and scale in 0...22, or nil when the fast path cannot round it.
    static func exact(_ m: UInt64, _ scale: Int) -> Self?
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
}

extension Double: KlineFloat {
    @inline(__always)
    public static func convert(_ s: DecimalParser.Scanned, _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double {
        DecimalParser.double(s, start, end)
    }
    public static func column(_ values: [Double]) -> ColumnValues { .float64(values) }
    @inline(__always)
    public static func exact(_ m: UInt64, _ scale: Int) -> Double? { Double(m) / DecimalParser.powerOfTen(scale) }
}
