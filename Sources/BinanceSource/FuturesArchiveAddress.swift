import FuturesArchive
import KlineArchive

/// One funding-rate or metrics archive of a futures market:
/// `data/futures/<um|cm>/monthly/fundingRate/<SYMBOL>/<SYMBOL>-fundingRate-YYYY-MM.zip` and
/// `data/futures/<um|cm>/daily/metrics/<SYMBOL>/<SYMBOL>-metrics-YYYY-MM-DD.zip` (no interval
/// folder: these datasets have one cadence each).
public struct FuturesArchiveAddress: PublishedArchive, Hashable, Sendable, CustomStringConvertible {
    public let market: Market
    public let symbol: String
    public let dataset: FuturesDataset
    public let period: ArchivePeriod

    public init(market: Market, symbol: String, dataset: FuturesDataset, period: ArchivePeriod) throws {
        try validateSymbol(symbol)
        guard market != .spot else { throw SourceError.unsupported("\(dataset.rawValue) archives exist for futures/um and futures/cm only, not spot") }
        guard (period.kind == .month) == dataset.isMonthly else {
            throw SourceError.unsupported("\(dataset.rawValue) archives are \(dataset.isMonthly ? "monthly" : "daily"), not \(period)")
        }
        (self.market, self.symbol, self.dataset, self.period) = (market, symbol, dataset, period)
    }

    public var fileName: String { "\(symbol)-\(dataset.rawValue)-\(period).zip" }
    public var directory: String { "data/\(market.rawValue)/\(dataset.isMonthly ? "monthly" : "daily")/\(dataset.rawValue)/\(symbol)/" }
    public var remotePath: String { directory + fileName }
    public var description: String { remotePath }
    /// Which label convention the decoder applies (COIN-M, or USDⓈ-M's change of 2026-06-25).
    public var futuresMarket: FuturesMarket { market == .futuresCM ? .cm : .um }
}

extension ArchiveLister {
    /// The published funding-rate (monthly) or metrics (daily) archives of a symbol, by period;
    /// `month` or `year` narrows the listing to that month's or year's files (metrics: a year's
    /// folder is 730 files with their CHECKSUMs, a day's name prefix lists only what is asked).
    public func published(market: Market, dataset: FuturesDataset, symbol: String, month: ArchivePeriod? = nil,
                          year: Int? = nil) async throws -> [ArchivePeriod: ListedFile] {
        try validateSymbol(symbol)
        var prefix = "data/\(market.rawValue)/\(dataset.isMonthly ? "monthly" : "daily")/\(dataset.rawValue)/\(symbol)/"
        if let month {
            prefix += "\(symbol)-\(dataset.rawValue)-\(month)-"
        } else if let year {
            prefix += "\(symbol)-\(dataset.rawValue)-\(String(format: "%04d", year))-"
        }
        return try await published(prefix: prefix) { key in
            guard let name = FuturesArchiveName(fileName: key), name.symbol == symbol, name.dataset == dataset else { return nil }
            return name.period
        }
    }

    /// The symbols with funding-rate or metrics archives in a futures market.
    public func symbols(market: Market, dataset: FuturesDataset, quote: String? = nil, match: String? = nil) async throws -> [String] {
        try await symbols(folder: "data/\(market.rawValue)/\(dataset.isMonthly ? "monthly" : "daily")/\(dataset.rawValue)/", quote: quote, match: match)
    }
}
