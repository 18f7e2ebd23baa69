import KlineArchive

/// Binance's tick archives: every trade, or every aggregate trade (trades at one price and
/// time from one taker order).
public enum TradeDataset: String, CaseIterable, Sendable, Codable {
    case trades, aggTrades
}

/// The market of a tick archive: spot files have an `isBestMatch` column and, from 2025 on,
/// microsecond times; futures files (USDⓈ-M, COIN-M) have a header line from about 2022 and
/// millisecond times; COIN-M's third trade amount is in the base asset.
public enum TradeMarket: String, CaseIterable, Sendable, Codable {
    case spot, um, cm
}

/// The columns of a tick archive, in file order, by market (binance-public-data's README).
public struct TradeLayout: Sendable, Equatable {
    public let dataset: TradeDataset
    public let market: TradeMarket
    /// The header line's names, as futures files spell them (spot files carry none, so theirs are
    /// the README's). Kept, not computed: the parser reads them on every row.
    public let header: [String]

    public init(dataset: TradeDataset, market: TradeMarket) {
        (self.dataset, self.market) = (dataset, market)
        switch (dataset, market) {
        case (.trades, .spot): header = ["id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"]
        case (.trades, .um): header = ["id", "price", "qty", "quote_qty", "time", "is_buyer_maker"]
        case (.trades, .cm): header = ["id", "price", "qty", "base_qty", "time", "is_buyer_maker"]
        case (.aggTrades, .spot): header = ["aggTradeId", "price", "quantity", "firstTradeId", "lastTradeId", "timestamp", "isBuyerMaker", "isBestMatch"]
        case (.aggTrades, _): header = ["agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker"]
        }
    }

    public var fieldCount: Int { header.count }
    /// Spot files say whether the trade was the best price match.
    public var hasBestMatch: Bool { market == .spot }
    /// Raw trades have a third amount: the quote amount (spot, USDⓈ-M) or the base amount (COIN-M).
    public var amountName: String? {
        guard dataset == .trades else { return nil }
        return market == .cm ? "BaseQty" : "QuoteQty"
    }
    /// The position of the time field.
    var timeField: Int { dataset == .trades ? 4 : 5 }
}

/// `SYMBOL-trades-YYYY-MM[-DD].zip` or `SYMBOL-aggTrades-YYYY-MM[-DD].zip`: monthly or daily.
public struct TradeArchiveName: Sendable, Equatable {
    public var symbol: String
    public var dataset: TradeDataset
    public var period: ArchivePeriod

    public init?(fileName: String) {
        guard let parts = archiveNameParts(fileName), parts.count == 4 || parts.count == 5, !parts[0].isEmpty, let dataset = TradeDataset(rawValue: parts[1]),
              let year = Int(parts[2]), let month = Int(parts[3]) else { return nil }
        let period = parts.count == 4 ? ArchivePeriod(year: year, month: month) : Int(parts[4]).flatMap { ArchivePeriod(year: year, month: month, day: $0) }
        guard let period else { return nil }
        (self.symbol, self.dataset, self.period) = (parts[0], dataset, period)
    }
}
