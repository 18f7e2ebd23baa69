/// A MarketStore bucket's key, `SYMBOL/Timeframe/AttributeGroup` (`BTCUSDT/1Min/OHLCV`): parsed
/// once, so no caller splits strings or indexes their parts.
public struct BucketKey: Hashable, Sendable, CustomStringConvertible {
    public let symbol: String
    public let timeframe: String
    public let attributeGroup: String

    public init(symbol: String, timeframe: String, attributeGroup: String) {
        (self.symbol, self.timeframe, self.attributeGroup) = (symbol, timeframe, attributeGroup)
    }

    /// Three non-empty parts separated by `/`; nil for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        self.init(symbol: String(parts[0]), timeframe: String(parts[1]), attributeGroup: String(parts[2]))
    }

    public var description: String { "\(symbol)/\(timeframe)/\(attributeGroup)" }

    /// A daily bucket: MarketStore's 1D buckets lose the 1 January row.
    public var isDaily: Bool { timeframe == "1D" }
}
