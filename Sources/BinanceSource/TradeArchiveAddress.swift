import KlineArchive
import TradeArchive

/// One trades or aggTrades archive:
/// `data/<market>/<monthly|daily>/<trades|aggTrades>/<SYMBOL>/<SYMBOL>-trades-YYYY-MM[-DD].zip`
/// (no interval folder: a tick archive holds every trade of its period).
public struct TradeArchiveAddress: PublishedArchive, Hashable, Sendable, CustomStringConvertible {
    public let market: Market
    public let symbol: String
    public let dataset: TradeDataset
    public let period: ArchivePeriod

    public init(market: Market, symbol: String, dataset: TradeDataset, period: ArchivePeriod) throws {
        try validateSymbol(symbol)
        (self.market, self.symbol, self.dataset, self.period) = (market, symbol, dataset, period)
    }

    public var fileName: String { "\(symbol)-\(dataset.rawValue)-\(period).zip" }
    public var directory: String { Self.folder(market, dataset, daily: period.kind == .day) + "\(symbol)/" }
    public var remotePath: String { directory + fileName }
    public var description: String { remotePath }
    static func folder(_ market: Market, _ dataset: TradeDataset, daily: Bool) -> String {
        "data/\(market.rawValue)/\(daily ? "daily" : "monthly")/\(dataset.rawValue)/"
    }
}

extension ArchiveLister {
    /// The published monthly (or daily) tick archives of a symbol, by period; `month` narrows a
    /// daily listing to that month's files.
    public func published(market: Market, dataset: TradeDataset, symbol: String, daily: Bool, month: ArchivePeriod? = nil) async throws -> [ArchivePeriod: ListedFile] {
        try validateSymbol(symbol)
        var prefix = TradeArchiveAddress.folder(market, dataset, daily: daily) + "\(symbol)/"
        if let month { prefix += "\(symbol)-\(dataset.rawValue)-\(month)-" }
        return try await published(prefix: prefix) { key in
            guard let name = TradeArchiveName(fileName: key), name.symbol == symbol, name.dataset == dataset,
                  (name.period.kind == .day) == daily else { return nil }
            return name.period
        }
    }

    /// The symbols with monthly tick archives in a market.
    public func symbols(market: Market, dataset: TradeDataset, quote: String? = nil, match: String? = nil) async throws -> [String] {
        try await symbols(folder: TradeArchiveAddress.folder(market, dataset, daily: false), quote: quote, match: match)
    }
}
