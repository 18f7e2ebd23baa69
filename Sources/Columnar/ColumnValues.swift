/// Typed, contiguous columns whose bytes go on the wire as they are (little-endian).
/// One column's values, contiguous, ready to go on the wire as raw little-endian bytes.
public enum ColumnValues: Equatable, Sendable {
    case float32([Float])
    case float64([Double])
    case int64([Int64])
    /// Variable-length records' `Nanoseconds`.
    case int32([Int32])
    /// Flags (a trade's side), one byte a record.
    case int8([Int8])
    /// One-byte columns as a query answers them: MarketStore stores an i1 column as bytes and
    /// types it u1 on the way back (Go's []byte is []uint8); the bytes are the ones written.
    case uint8([UInt8])

    public var count: Int {
        switch self {
        case let .float32(v): return v.count
        case let .float64(v): return v.count
        case let .int64(v): return v.count
        case let .int32(v): return v.count
        case let .int8(v): return v.count
        case let .uint8(v): return v.count
        }
    }

    /// MarketStore's type string (`f4`, `f8`, `i8`, `i4`, `i1`, `u1`).
    public var wireType: String {
        switch self {
        case .float32: return "f4"
        case .float64: return "f8"
        case .int64: return "i8"
        case .int32: return "i4"
        case .int8: return "i1"
        case .uint8: return "u1"
        }
    }

    /// The little-endian bytes of the column (no copy).
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch self {
        case let .float32(v): return try v.withUnsafeBytes(body)
        case let .float64(v): return try v.withUnsafeBytes(body)
        case let .int64(v): return try v.withUnsafeBytes(body)
        case let .int32(v): return try v.withUnsafeBytes(body)
        case let .int8(v): return try v.withUnsafeBytes(body)
        case let .uint8(v): return try v.withUnsafeBytes(body)
        }
    }

    /// A column from its wire type and little-endian bytes; nil for other types or a byte count
    /// that is not a whole number of values.
    public init?(wireType: String, bytes: [UInt8]) {
        func values<T>(_: T.Type) -> [T]? {
            let size = MemoryLayout<T>.size
            guard bytes.count % size == 0 else { return nil }
            return [T](unsafeUninitializedCapacity: bytes.count / size) { buffer, count in
                bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: $0) }
                count = bytes.count / size
            }
        }
        switch wireType {
        case "f4": guard let v = values(Float.self) else { return nil }; self = .float32(v)
        case "f8": guard let v = values(Double.self) else { return nil }; self = .float64(v)
        case "i8": guard let v = values(Int64.self) else { return nil }; self = .int64(v)
        case "i4": guard let v = values(Int32.self) else { return nil }; self = .int32(v)
        case "i1": guard let v = values(Int8.self) else { return nil }; self = .int8(v)
        case "u1": self = .uint8(bytes)
        default: return nil
        }
    }

    /// Rows `range` of the column.
    public func slice(_ range: Range<Int>) -> ColumnValues {
        switch self {
        case let .float32(v): return .float32(Array(v[range]))
        case let .float64(v): return .float64(Array(v[range]))
        case let .int64(v): return .int64(Array(v[range]))
        case let .int32(v): return .int32(Array(v[range]))
        case let .int8(v): return .int8(Array(v[range]))
        case let .uint8(v): return .uint8(Array(v[range]))
        }
    }

    /// The value at `i` as a double (for display and checks, not for the wire).
    public func double(at i: Int) -> Double {
        switch self {
        case let .float32(v): return Double(v[i])
        case let .float64(v): return v[i]
        case let .int64(v): return Double(v[i])
        case let .int32(v): return Double(v[i])
        case let .int8(v): return Double(v[i])
        case let .uint8(v): return Double(v[i])
        }
    }

    /// The value at `i` as Swift prints it (for tables).
    public func text(at i: Int) -> String {
        switch self {
        case let .float32(v): return "\(v[i])"
        case let .float64(v): return "\(v[i])"
        case let .int64(v): return "\(v[i])"
        case let .int32(v): return "\(v[i])"
        case let .int8(v): return "\(v[i])"
        case let .uint8(v): return "\(v[i])"
        }
    }

    /// The column with rows taken in `order`.
    public func gathered(_ order: [Int]) -> ColumnValues {
        switch self {
        case let .float32(v): return .float32(order.map { v[$0] })
        case let .float64(v): return .float64(order.map { v[$0] })
        case let .int64(v): return .int64(order.map { v[$0] })
        case let .int32(v): return .int32(order.map { v[$0] })
        case let .int8(v): return .int8(order.map { v[$0] })
        case let .uint8(v): return .uint8(order.map { v[$0] })
        }
    }

    /// Appends in place: the array is taken out of `self` before it grows, so it is uniquely
    /// referenced and not copied (growing it while `self` still holds it would copy the whole
    /// column on every append: quadratic over a request built from many batches).
    public mutating func append(contentsOf other: ColumnValues) {
        switch other {
        case let .float32(b):
            if case var .float32(a) = self { self = .int64([]); a.append(contentsOf: b); self = .float32(a); return }
        case let .float64(b):
            if case var .float64(a) = self { self = .int64([]); a.append(contentsOf: b); self = .float64(a); return }
        case let .int64(b):
            if case var .int64(a) = self { self = .int64([]); a.append(contentsOf: b); self = .int64(a); return }
        case let .int32(b):
            if case var .int32(a) = self { self = .int64([]); a.append(contentsOf: b); self = .int32(a); return }
        case let .int8(b):
            if case var .int8(a) = self { self = .int64([]); a.append(contentsOf: b); self = .int8(a); return }
        case let .uint8(b):
            if case var .uint8(a) = self { self = .int64([]); a.append(contentsOf: b); self = .uint8(a); return }
        }
        preconditionFailure("appending a \(other.wireType) column to a \(wireType) column")
    }
}

