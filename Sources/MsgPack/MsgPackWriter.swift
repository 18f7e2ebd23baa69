/// Encodes msgpack into a growing byte buffer. Column data goes in as `bin` straight from the
/// arrays' bytes (one copy into the request body, no per-element work).
public struct MsgPackWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    public mutating func writeNil() { bytes.append(0xC0) }

    public mutating func writeBool(_ v: Bool) { bytes.append(v ? 0xC3 : 0xC2) }

    /// The shortest form, as msgpack's reference encoders do: non-negative values as uint.
    public mutating func writeInt(_ v: Int64) {
        if v >= 0 { return writeUInt(UInt64(v)) }
        switch v {
        case -32 ..< 0: bytes.append(UInt8(bitPattern: Int8(v)))
        case Int64(Int8.min)...: bytes.append(0xD0); bigEndian(Int8(v))
        case Int64(Int16.min)...: bytes.append(0xD1); bigEndian(Int16(v))
        case Int64(Int32.min)...: bytes.append(0xD2); bigEndian(Int32(v))
        default: bytes.append(0xD3); bigEndian(v)
        }
    }

    public mutating func writeUInt(_ v: UInt64) {
        switch v {
        case 0 ..< 128: bytes.append(UInt8(v))
        case ...UInt64(UInt8.max): bytes.append(0xCC); bytes.append(UInt8(v))
        case ...UInt64(UInt16.max): bytes.append(0xCD); bigEndian(UInt16(v))
        case ...UInt64(UInt32.max): bytes.append(0xCE); bigEndian(UInt32(v))
        default: bytes.append(0xCF); bigEndian(v)
        }
    }

    public mutating func writeFloat32(_ v: Float) { bytes.append(0xCA); bigEndian(v.bitPattern) }

    public mutating func writeFloat64(_ v: Double) { bytes.append(0xCB); bigEndian(v.bitPattern) }

    public mutating func writeString(_ s: String) {
        let utf8 = s.utf8
        let n = utf8.count
        switch n {
        case 0 ..< 32: bytes.append(0xA0 | UInt8(n))
        case ...Int(UInt8.max): bytes.append(0xD9); bytes.append(UInt8(n))
        case ...Int(UInt16.max): bytes.append(0xDA); bigEndian(UInt16(n))
        default: bytes.append(0xDB); bigEndian(UInt32(n))
        }
        bytes.append(contentsOf: utf8)
    }

    public mutating func writeBinary(_ raw: UnsafeRawBufferPointer) {
        writeBinaryHeader(raw.count)
        bytes.append(contentsOf: raw)
    }

    /// The little-endian bytes of a column, as one `bin`.
    public mutating func writeBinary<T>(column: [T]) {
        column.withUnsafeBytes { writeBinary($0) }
    }

    public mutating func writeBinaryHeader(_ n: Int) {
        switch n {
        case 0 ... Int(UInt8.max): bytes.append(0xC4); bytes.append(UInt8(n))
        case ...Int(UInt16.max): bytes.append(0xC5); bigEndian(UInt16(n))
        default: bytes.append(0xC6); bigEndian(UInt32(n))
        }
    }

    public mutating func writeArrayHeader(_ n: Int) {
        switch n {
        case 0 ..< 16: bytes.append(0x90 | UInt8(n))
        case ...Int(UInt16.max): bytes.append(0xDC); bigEndian(UInt16(n))
        default: bytes.append(0xDD); bigEndian(UInt32(n))
        }
    }

    public mutating func writeMapHeader(_ n: Int) {
        switch n {
        case 0 ..< 16: bytes.append(0x80 | UInt8(n))
        case ...Int(UInt16.max): bytes.append(0xDE); bigEndian(UInt16(n))
        default: bytes.append(0xDF); bigEndian(UInt32(n))
        }
    }

    public mutating func write(_ value: MsgPackValue) {
        switch value {
        case .null: writeNil()
        case let .bool(b): writeBool(b)
        case let .int(v): writeInt(v)
        case let .uint(v): writeUInt(v)
        case let .float32(v): writeFloat32(v)
        case let .float64(v): writeFloat64(v)
        case let .string(s): writeString(s)
        case let .binary(b): b.withUnsafeBytes { writeBinary($0) }
        case let .array(a):
            writeArrayHeader(a.count)
            for v in a { write(v) }
        case let .map(m):
            writeMapHeader(m.count)
            for p in m { write(p.key); write(p.value) }
        }
    }

    private mutating func bigEndian<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// The encoding of one value.
    public static func encode(_ value: MsgPackValue) -> [UInt8] {
        var w = MsgPackWriter()
        w.write(value)
        return w.bytes
    }
}
