import BinanceSource
import FuturesArchive
import KlineArchive
import MarketStoreModel
import TradeArchive

/// A kind of data a job loads, and everything about it that differs from the others on the job's
/// side: its name in the job file, the markets that publish it, what the job file may choose of
/// it, its keys and schema, which ends and features it has, how its archives are named and where
/// its symbols are listed. The pipeline's side (plan, decode) is `PipelineDataset` in
/// ImportPipeline. Conformances: `KlineDataset` (klines, mark, index and premium index price
/// klines), `FundingRates` and `FuturesMetrics`. Code outside these types asks the protocol; it
/// never asks which dataset a job has.
public protocol Dataset: Sendable, CustomStringConvertible {
    /// The job file's `dataset:` value.
    var name: String { get }
    /// Whether `market` publishes it.
    func exists(on market: Market) -> Bool
    /// The attribute group of its keys unless the job names one.
    var defaultAttributeGroup: String { get }
    /// nil when the job chooses `intervals`, `columns` and `dtype`; otherwise what the dataset
    /// fixes instead (the reason a job file giving one is refused).
    var fixedSchema: String? { get }
    /// The `dtype` when the job gives none, for a dataset whose job may choose it (even with a
    /// fixed schema); nil when it may not.
    var defaultFloatType: FloatType? { get }
    /// The keys of a symbol in a job.
    func keys(symbol: String, in spec: JobSpec) throws -> [String]
    /// What the state binds its done units to besides the target.
    func schema(of spec: JobSpec) -> String
    /// Why `to` cannot end a job of it, or nil.
    func refusal(of end: JobEnd, on market: Market) -> String?
    /// Why `gaps: rest` (and `--confirm-gaps`) cannot serve it ("asks ...; ..."), or nil.
    var restGapsRefusal: String? { get }
    /// Why `follow` cannot serve it, or nil.
    var followRefusal: String? { get }
    /// The published archive a unit's remote path names, or nil when it names none of this
    /// dataset's (`status --check-remote`).
    func publishedArchive(ofRemotePath path: String, market: Market) -> (any PublishedArchive)?
    /// The symbols of `market` listed in its archive folder (`discover:`).
    func listSymbols(_ lister: ArchiveLister, market: Market, quote: String?, match: String?) async throws -> [String]
}

extension Dataset {
    public var description: String { name }
}

/// Every dataset a job file can name, in the order the error for an unknown one lists them.
public enum Datasets {
    public static let all: [any Dataset] = KlineDataset.allCases.map { $0 } + [FundingRates(), FuturesMetrics()]
        + TradeDataset.allCases.map { TradesDataset(archives: $0) }

    public static func named(_ name: String) -> (any Dataset)? { all.first { $0.name == name } }
}

extension KlineDataset: Dataset {
    public var name: String { rawValue }
    public var fixedSchema: String? { nil }
    public var defaultFloatType: FloatType? { .float32 }

    public func keys(symbol: String, in spec: JobSpec) throws -> [String] {
        try spec.intervals.map { try spec.key(symbol: symbol, interval: $0) }
    }

    public func schema(of spec: JobSpec) -> String {
        "columns \(spec.columns.map(\.rawValue).joined(separator: ",")), \(spec.floatType.rawValue), attribute group \(spec.attributeGroup)"
    }

    public func refusal(of end: JobEnd, on market: Market) -> String? { nil }
    public var restGapsRefusal: String? { nil }
    public var followRefusal: String? { self == .klines ? nil : "follow reads the kline streams; \(rawValue) is imported with run (to: now)" }

    public func publishedArchive(ofRemotePath path: String, market: Market) -> (any PublishedArchive)? {
        guard let name = KlineArchiveName(fileName: path) else { return nil }
        return try? ArchiveAddress(market: market, symbol: name.symbol, interval: name.interval, period: name.period, dataset: self)
    }

    public func listSymbols(_ lister: ArchiveLister, market: Market, quote: String?, match: String?) async throws -> [String] {
        try await lister.symbols(market: market, dataset: self, quote: quote, match: match)
    }
}

/// The futures datasets that are not klines: archives of one cadence and schema each
/// (`FuturesDataset`), on `futures/um` and `futures/cm`.
public protocol FuturesArchiveDataset: Dataset {
    var archives: FuturesDataset { get }
}

extension FuturesArchiveDataset {
    public var name: String { archives.rawValue }
    public var defaultFloatType: FloatType? { nil }
    public func exists(on market: Market) -> Bool { market != .spot }
    public var defaultAttributeGroup: String { archives.defaultAttributeGroup }

    public func keys(symbol: String, in spec: JobSpec) throws -> [String] {
        [archives.key(symbol: symbol, attributeGroup: spec.attributeGroup).description]
    }

    public func schema(of spec: JobSpec) -> String {
        "\(name): columns \(archives.columns.map { "\($0.name) \($0.type)" }.joined(separator: ",")), attribute group \(spec.attributeGroup)"
    }

    public var restGapsRefusal: String? { "asks REST klines; \(name) gaps are reported, not asked" }
    public var followRefusal: String? { "follow reads the kline streams; \(name) is imported with run or nightly" }

    public func publishedArchive(ofRemotePath path: String, market: Market) -> (any PublishedArchive)? {
        guard let file = FuturesArchiveName(fileName: path), file.dataset == archives else { return nil }
        return try? FuturesArchiveAddress(market: market, symbol: file.symbol, dataset: archives, period: file.period)
    }

    public func listSymbols(_ lister: ArchiveLister, market: Market, quote: String?, match: String?) async throws -> [String] {
        try await lister.symbols(market: market, dataset: archives, quote: quote, match: match)
    }
}

/// Funding rates: monthly archives, one row per funding; `to: now` continues from REST.
public struct FundingRates: FuturesArchiveDataset {
    public init() {}
    public var archives: FuturesDataset { .fundingRate }
    public var fixedSchema: String? { "one row per funding, columns Rate, IntervalHours (float64, the interval an integer)" }
    public func refusal(of end: JobEnd, on market: Market) -> String? { nil }
}

/// Futures metrics: daily archives, a row every 5 minutes; archives only (`to: latest`).
public struct FuturesMetrics: FuturesArchiveDataset {
    public init() {}
    public var archives: FuturesDataset { .metrics }
    public var fixedSchema: String? { "one row per 5 minutes, columns \(FuturesDataset.metrics.columns.map(\.name).joined(separator: ", ")) (float64)" }

    public func refusal(of end: JobEnd, on market: Market) -> String? {
        end == .now ? "metrics come from their daily archives only (Binance's REST keeps 30 days of them, spread over five endpoints): use latest" : nil
    }
}

/// Every trade or every aggregate trade, from the tick archives of spot, USDⓈ-M and COIN-M:
/// one variable-length bucket per symbol (`BTCUSDT/1Sec/TRADES`), each trade a record at its
/// second with the rest of its time in `Nanoseconds`. The bucket appends: the pipeline writes
/// each trade once (see docs/trades.md).
public struct TradesDataset: Dataset {
    public let archives: TradeDataset

    public init(archives: TradeDataset) { self.archives = archives }

    public var name: String { archives.rawValue }
    public func exists(on market: Market) -> Bool { true }
    public var defaultAttributeGroup: String { archives == .trades ? "TRADES" : "AGGTRADES" }
    public var fixedSchema: String? { "one record per \(archives == .trades ? "trade" : "aggregate trade") in a 1Sec variable-length bucket; dtype chooses the prices' width" }
    public var defaultFloatType: FloatType? { .float64 }
    /// MarketStore keeps a record's sub-second time exactly in 1Sec buckets (ticks of 2^-32 s).
    public static let timeframe = "1Sec"

    public func keys(symbol: String, in spec: JobSpec) throws -> [String] {
        ["\(symbol)/\(Self.timeframe)/\(spec.attributeGroup)"]
    }

    /// The columns of a market's records after Epoch, Nanoseconds last (MarketStore's names).
    public func columns(_ market: Market, _ floatType: FloatType) -> [(name: String, type: String)] {
        let layout = TradeLayout(dataset: archives, market: TradeMarket(market))
        let f = floatType == .float32 ? "f4" : "f8"
        var columns = [("Price", f), ("Qty", f)]
        if let amount = layout.amountName { columns.append((amount, f)) }
        columns += archives == .trades ? [("TradeID", "i8")] : [("AggTradeID", "i8"), ("FirstTradeID", "i8"), ("LastTradeID", "i8")]
        columns.append(("IsBuyerMaker", "i1"))
        if layout.hasBestMatch { columns.append(("IsBestMatch", "i1")) }
        return columns + [("Nanoseconds", "i4")]
    }

    /// The column holding each record's ID (what proves a trade is in the target once).
    public var idColumn: String { archives == .trades ? "TradeID" : "AggTradeID" }

    public func schema(of spec: JobSpec) -> String {
        "\(name): columns \(columns(spec.market, spec.floatType).map { "\($0.name) \($0.type)" }.joined(separator: ",")), variable-length, attribute group \(spec.attributeGroup)"
    }

    /// `to: now`: after the archives, REST by ID from each key's last ID to the present (not
    /// for futures raw trades: their REST by ID asks for an API key).
    public func refusal(of end: JobEnd, on market: Market) -> String? {
        end == .now && archives == .trades && market != .spot
            ? "futures trades by ID need an API key on Binance's REST: use latest (or dataset: aggTrades, served without one)" : nil
    }


    /// `gaps: rest` asks REST for the missing IDs (aggTrades everywhere, trades on spot).
    public var restGapsRefusal: String? { nil }
    public var followRefusal: String? { "follow reads the kline streams; \(name) are imported with run or nightly" }

    public func publishedArchive(ofRemotePath path: String, market: Market) -> (any PublishedArchive)? {
        guard let file = TradeArchiveName(fileName: path), file.dataset == archives else { return nil }
        return try? TradeArchiveAddress(market: market, symbol: file.symbol, dataset: archives, period: file.period)
    }

    public func listSymbols(_ lister: ArchiveLister, market: Market, quote: String?, match: String?) async throws -> [String] {
        try await lister.symbols(market: market, dataset: archives, quote: quote, match: match)
    }
}

extension TradeMarket {
    public init(_ market: Market) {
        switch market {
        case .spot: self = .spot
        case .futuresUM: self = .um
        case .futuresCM: self = .cm
        }
    }
}
