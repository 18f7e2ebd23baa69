/// Why a msgpack body could not be decoded, and where.
public struct MsgPackDecodeError: Error, Equatable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        case truncated(needed: Int)
        case unsupportedType(UInt8)
        case tooDeep(limit: Int)
        case tooLarge(count: Int, limit: Int)
        case invalidUTF8
        case trailingBytes(count: Int)
        case empty
    }

    public let reason: Reason
    /// Byte offset in the body where the problem starts.
    public let offset: Int

    public var description: String {
        switch reason {
        case let .truncated(n): return "msgpack: truncated at byte \(offset) (\(n) more bytes needed)"
        case let .unsupportedType(b): return "msgpack: unsupported type byte 0x\(String(b, radix: 16)) at byte \(offset)"
        case let .tooDeep(limit): return "msgpack: nesting deeper than \(limit) at byte \(offset)"
        case let .tooLarge(count, limit): return "msgpack: \(count) elements or bytes at byte \(offset), over the limit of \(limit)"
        case .invalidUTF8: return "msgpack: string at byte \(offset) is not UTF-8"
        case let .trailingBytes(n): return "msgpack: \(n) bytes after the value, at byte \(offset)"
        case .empty: return "msgpack: empty body"
        }
    }
}

/// Decodes msgpack with bounds checks everywhere and limits on nesting and sizes: malformed
/// input throws a `MsgPackDecodeError` with the offset; it never traps and never allocates more
/// than the input can justify (a container count is checked against the bytes left).
public struct MsgPackReader {
    public struct Limits: Sendable {
        public var maxDepth = 64
        /// Elements of one array or map, and bytes of one string or bin.
        public var maxCount = 1 << 30
        public init(maxDepth: Int = 64, maxCount: Int = 1 << 30) {
            self.maxDepth = maxDepth
            self.maxCount = maxCount
        }
    }

    private let bytes: UnsafeRawBufferPointer
    private let limits: Limits
    private(set) var offset = 0

    private init(_ bytes: UnsafeRawBufferPointer, limits: Limits) {
        self.bytes = bytes
        self.limits = limits
    }

    /// Decodes exactly one value filling all of `data`.
    public static func decode(_ data: [UInt8], limits: Limits = .init()) throws -> MsgPackValue {
        try data.withUnsafeBytes { try decode($0, limits: limits) }
    }

    public static func decode(_ raw: UnsafeRawBufferPointer, limits: Limits = .init()) throws -> MsgPackValue {
        guard raw.count > 0 else { throw MsgPackDecodeError(reason: .empty, offset: 0) }
        var reader = MsgPackReader(raw, limits: limits)
        let value = try reader.readValue(depth: 0)
        if reader.offset != raw.count {
            throw MsgPackDecodeError(reason: .trailingBytes(count: raw.count - reader.offset), offset: reader.offset)
        }
        return value
    }

    private mutating func need(_ n: Int) throws {
        if bytes.count - offset < n { throw MsgPackDecodeError(reason: .truncated(needed: n - (bytes.count - offset)), offset: offset) }
    }

    private mutating func byte() throws -> UInt8 {
        try need(1)
        defer { offset += 1 }
        return bytes[offset]
    }

    private mutating func bigEndian<T: FixedWidthInteger>(_: T.Type) throws -> T {
        try need(MemoryLayout<T>.size)
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v = v << 8 | T(truncatingIfNeeded: bytes[offset + i]) }
        offset += MemoryLayout<T>.size
        return v
    }

    private mutating func take(_ n: Int, at start: Int) throws -> UnsafeRawBufferPointer {
        if n > limits.maxCount { throw MsgPackDecodeError(reason: .tooLarge(count: n, limit: limits.maxCount), offset: start) }
        try need(n)
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }

    /// A container's element count, refused when the bytes left cannot hold that many elements.
    private func checkCount(_ n: Int, perElement: Int, at start: Int) throws {
        if n > limits.maxCount { throw MsgPackDecodeError(reason: .tooLarge(count: n, limit: limits.maxCount), offset: start) }
        if n > (bytes.count - offset) / perElement {
            throw MsgPackDecodeError(reason: .truncated(needed: n * perElement - (bytes.count - offset)), offset: start)
        }
    }

    private mutating func readValue(depth: Int) throws -> MsgPackValue {
        let start = offset
        if depth > limits.maxDepth { throw MsgPackDecodeError(reason: .tooDeep(limit: limits.maxDepth), offset: start) }
        let b = try byte()
        switch b {
        case 0x00...0x7F: return .uint(UInt64(b))
        case 0x80...0x8F: return try readMap(Int(b & 0x0F), depth: depth, start: start)
        case 0x90...0x9F: return try readArray(Int(b & 0x0F), depth: depth, start: start)
        case 0xA0...0xBF: return try readString(Int(b & 0x1F), start: start)
        case 0xC0: return .null
        case 0xC2: return .bool(false)
        case 0xC3: return .bool(true)
        case 0xC4: return .binary(Array(try take(Int(try bigEndian(UInt8.self)), at: start)))
        case 0xC5: return .binary(Array(try take(Int(try bigEndian(UInt16.self)), at: start)))
        case 0xC6: return .binary(Array(try take(Int(try bigEndian(UInt32.self)), at: start)))
        case 0xCA: return .float32(Float(bitPattern: try bigEndian(UInt32.self)))
        case 0xCB: return .float64(Double(bitPattern: try bigEndian(UInt64.self)))
        case 0xCC: return .uint(UInt64(try bigEndian(UInt8.self)))
        case 0xCD: return .uint(UInt64(try bigEndian(UInt16.self)))
        case 0xCE: return .uint(UInt64(try bigEndian(UInt32.self)))
        case 0xCF: return .uint(try bigEndian(UInt64.self))
        case 0xD0: return .int(Int64(try bigEndian(Int8.self)))
        case 0xD1: return .int(Int64(try bigEndian(Int16.self)))
        case 0xD2: return .int(Int64(try bigEndian(Int32.self)))
        case 0xD3: return .int(try bigEndian(Int64.self))
        case 0xD9: return try readString(Int(try bigEndian(UInt8.self)), start: start)
        case 0xDA: return try readString(Int(try bigEndian(UInt16.self)), start: start)
        case 0xDB: return try readString(Int(try bigEndian(UInt32.self)), start: start)
        case 0xDC: return try readArray(Int(try bigEndian(UInt16.self)), depth: depth, start: start)
        case 0xDD: return try readArray(Int(try bigEndian(UInt32.self)), depth: depth, start: start)
        case 0xDE: return try readMap(Int(try bigEndian(UInt16.self)), depth: depth, start: start)
        case 0xDF: return try readMap(Int(try bigEndian(UInt32.self)), depth: depth, start: start)
        case 0xE0...0xFF: return .int(Int64(Int8(bitPattern: b)))
        default: throw MsgPackDecodeError(reason: .unsupportedType(b), offset: start)  // 0xC1, ext types
        }
    }

    private mutating func readString(_ n: Int, start: Int) throws -> MsgPackValue {
        let raw = try take(n, at: start)
        guard let s = String(validating: raw, as: UTF8.self) else {
            throw MsgPackDecodeError(reason: .invalidUTF8, offset: start)
        }
        return .string(s)
    }

    private mutating func readArray(_ n: Int, depth: Int, start: Int) throws -> MsgPackValue {
        try checkCount(n, perElement: 1, at: start)
        var out: [MsgPackValue] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try readValue(depth: depth + 1)) }
        return .array(out)
    }

    private mutating func readMap(_ n: Int, depth: Int, start: Int) throws -> MsgPackValue {
        try checkCount(n, perElement: 2, at: start)
        var out: [MsgPackValue.Pair] = []
        out.reserveCapacity(n)
        for _ in 0..<n {
            let k = try readValue(depth: depth + 1)
            let v = try readValue(depth: depth + 1)
            out.append(.init(k, v))
        }
        return .map(out)
    }
}
