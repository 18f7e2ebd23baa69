/// Why a dataset or a timeframe cannot go to MarketStore, found before anything is sent.
public enum MarketStoreModelError: Error, CustomStringConvertible, Equatable {
    /// The dataset is inconsistent (checked before sending: the real server crashes on some).
    case invalidDataSet(String)
    /// A timeframe the server accepts on write but cannot serve back.
    case unservableTimeframe(key: String, timeframe: String)

    public var description: String {
        switch self {
        case let .invalidDataSet(reason): return "invalid dataset: \(reason)"
        case let .unservableTimeframe(key, tf):
            return "\(key): MarketStore accepts writes to timeframe \(tf) but cannot serve them back; use one of \(Timeframe.servable.joined(separator: ", "))"
        }
    }
}

/// A column's name and MarketStore type string (`f4`, `f8`, `i8`, `i4`, ...).
public struct ColumnSchema: Equatable, Sendable, CustomStringConvertible {
    public var name: String
    public var type: String
    public init(_ name: String, _ type: String) {
        self.name = name
        self.type = type
    }
    public var description: String { "\(name):\(type)" }
    public static func describe(_ columns: [ColumnSchema]) -> String { "[" + columns.map(\.description).joined(separator: " ") + "]" }

    /// GetInfo's type numbers (utils/io/datatypes.go), as type strings.
    public static let typeByCode: [Int64: String] = [0: "f4", 1: "i4", 2: "f8", 3: "i8", 4: "i8", 5: "i1", 9: "i2", 10: "u1", 11: "u2", 12: "u4", 13: "u8"]
}
