/// The two float widths a kline column can be decoded to.
public protocol KlineFloat: BinaryFloatingPoint {
    static func convert(_ s: DecimalParser.Scanned, _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Self
    static func column(_ values: [Self]) -> ColumnValues
}

extension Float: KlineFloat {
    @inline(__always)
    public static func convert(_ s: DecimalParser.Scanned, _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Float {
        DecimalParser.float(s, start, end)
    }
    public static func column(_ values: [Float]) -> ColumnValues { .float32(values) }
}

extension Double: KlineFloat {
    @inline(__always)
    public static func convert(_ s: DecimalParser.Scanned, _ start: UnsafePointer<UInt8>, _ end: UnsafePointer<UInt8>) -> Double {
        DecimalParser.double(s, start, end)
    }
    public static func column(_ values: [Double]) -> ColumnValues { .float64(values) }
}
