import Columnar
@_exported import Columnar

/// A kline column that can be imported, with its MarketStore column name.
public enum KlineColumn: String, CaseIterable, Codable, Sendable {
    case open = "Open", high = "High", low = "Low", close = "Close", volume = "Volume"
    case quoteVolume = "QuoteVolume", trades = "Trades"
    case takerBuyBaseVolume = "TakerBuyBaseVolume", takerBuyQuoteVolume = "TakerBuyQuoteVolume"

    /// Zero-based field of the Binance CSV that feeds this column.
    public var csvField: Int {
        switch self {
        case .open: return 1
        case .high: return 2
        case .low: return 3
        case .close: return 4
        case .volume: return 5
        case .quoteVolume: return 7
        case .trades: return 8
        case .takerBuyBaseVolume: return 9
        case .takerBuyQuoteVolume: return 10
        }
    }

    public static let ohlcv: [KlineColumn] = [.open, .high, .low, .close, .volume]

    /// Parses a MarketStore-style name (`Open`), case-insensitively.
    public init?(name: String) {
        guard let c = KlineColumn.allCases.first(where: { $0.rawValue.lowercased() == name.lowercased() }) else { return nil }
        self = c
    }
}

/// Width of the price/volume columns.
public enum FloatType: String, Codable, Sendable, CaseIterable {
    case float32, float64
    /// MarketStore's type string.
    public var wireType: String { self == .float32 ? "f4" : "f8" }
}

/// Decoded klines as columns: Epoch (UTC seconds) plus the chosen columns, in the chosen order.
public struct KlineBatch: Equatable, Sendable {
    public var epochs: [Int64]
    public var columns: [(column: KlineColumn, values: ColumnValues)]

    public init(epochs: [Int64], columns: [(column: KlineColumn, values: ColumnValues)]) {
        self.epochs = epochs
        self.columns = columns
    }

    public var count: Int { epochs.count }

    public func values(_ column: KlineColumn) -> ColumnValues? {
        columns.first(where: { $0.column == column })?.values
    }

    public static func == (a: KlineBatch, b: KlineBatch) -> Bool {
        a.epochs == b.epochs && a.columns.count == b.columns.count
            && zip(a.columns, b.columns).allSatisfy { $0.column == $1.column && $0.values == $1.values }
    }

    /// Appends the rows of a batch with the same columns.
    public mutating func append(_ other: KlineBatch) {
        epochs.append(contentsOf: other.epochs)
        for i in columns.indices { columns[i].values.append(contentsOf: other.columns[i].values) }
    }

    /// Rows sorted by epoch; of rows sharing an epoch, the last in file order is kept.
    func sortedKeepingLast() -> KlineBatch {
        let order = epochs.indices.sorted { epochs[$0] != epochs[$1] ? epochs[$0] < epochs[$1] : $0 < $1 }
        var keep: [Int] = []
        keep.reserveCapacity(order.count)
        for (k, i) in order.enumerated() where k + 1 == order.count || epochs[order[k + 1]] != epochs[i] {
            keep.append(i)
        }
        return KlineBatch(epochs: keep.map { epochs[$0] },
                          columns: columns.map { ($0.column, $0.values.gathered(keep)) })
    }
}
