/// A msgpack value: the subset MarketStore speaks (no extension types).
public enum MsgPackValue: Equatable, Sendable, CustomStringConvertible {
    /// Equality of structure: an integer equals another of the same value whatever its wire form
    /// (Go's encoder writes small counts as int64, Python's as positive fixint).
    public static func == (a: MsgPackValue, b: MsgPackValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.int(x), .int(y)): return x == y
        case let (.uint(x), .uint(y)): return x == y
        case let (.int(x), .uint(y)), let (.uint(y), .int(x)): return x >= 0 && UInt64(x) == y
        case let (.float32(x), .float32(y)): return x.bitPattern == y.bitPattern
        case let (.float64(x), .float64(y)): return x.bitPattern == y.bitPattern
        case let (.string(x), .string(y)): return x == y
        case let (.binary(x), .binary(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.map(x), .map(y)): return x == y
        default: return false
        }
    }

    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case float32(Float)
    case float64(Double)
    case string(String)
    case binary([UInt8])
    case array([MsgPackValue])
    /// Keys and values in wire order (msgpack maps are ordered; keys may repeat).
    case map([Pair])

    public struct Pair: Equatable, Sendable {
        public var key: MsgPackValue
        public var value: MsgPackValue
        public init(_ key: MsgPackValue, _ value: MsgPackValue) {
            self.key = key
            self.value = value
        }
    }

    /// A map with string keys, in the given order.
    public static func object(_ pairs: KeyValuePairs<String, MsgPackValue>) -> MsgPackValue {
        .map(pairs.map { Pair(.string($0.key), $0.value) })
    }

    /// The value of string key `key` of a map (the last one, if repeated).
    public subscript(key: String) -> MsgPackValue? {
        guard case let .map(pairs) = self else { return nil }
        return pairs.last(where: { $0.key == .string(key) })?.value
    }

    public var isNull: Bool { self == .null }

    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    /// Any integer that fits an Int64.
    public var int64Value: Int64? {
        switch self {
        case let .int(v): return v
        case let .uint(v): return v <= UInt64(Int64.max) ? Int64(v) : nil
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }

    public var arrayValue: [MsgPackValue]? {
        if case let .array(a) = self { return a }
        return nil
    }

    public var mapValue: [Pair]? {
        if case let .map(m) = self { return m }
        return nil
    }

    public var binaryValue: [UInt8]? {
        if case let .binary(b) = self { return b }
        return nil
    }

    public var description: String {
        switch self {
        case .null: return "nil"
        case let .bool(b): return b ? "true" : "false"
        case let .int(v): return "\(v)"
        case let .uint(v): return "\(v)"
        case let .float32(v): return "\(v)f"
        case let .float64(v): return "\(v)"
        case let .string(s): return "\"\(s)\""
        case let .binary(b): return "bin[\(b.count)]"
        case let .array(a): return "[" + a.map(\.description).joined(separator: ", ") + "]"
        case let .map(m): return "{" + m.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}

extension MsgPackValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = value < 0 ? .int(value) : .uint(UInt64(value)) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: MsgPackValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
}
