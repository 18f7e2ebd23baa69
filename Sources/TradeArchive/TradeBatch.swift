import Columnar
import KlineArchive

/// A chunk of decoded trades, column by column, in file order. Times are split as MarketStore's
/// variable-length buckets keep them: whole UTC seconds in `epochs`, the rest in `nanoseconds`.
public struct TradeBatch<F: KlineFloat> {
    public var epochs: [Int64] = []
    public var nanoseconds: [Int32] = []
    public var prices: [F] = []
    public var quantities: [F] = []
    /// Raw trades' third amount (quote, or base on COIN-M); empty for aggregates.
    public var amounts: [F] = []
    /// The trade ID, or the aggregate trade ID.
    public var ids: [Int64] = []
    /// Aggregates only: the first and last raw trade they hold.
    public var firstTradeIDs: [Int64] = []
    public var lastTradeIDs: [Int64] = []
    public var buyerMaker: [Bool] = []
    /// Spot only.
    public var bestMatch: [Bool] = []

    public init() {}

    /// An empty batch with room for `rows` rows of `layout` (a chunk grows without copying).
    init(reserving rows: Int, _ layout: TradeLayout) {
        prices.reserveCapacity(rows)
        quantities.reserveCapacity(rows)
        epochs.reserveCapacity(rows)
        nanoseconds.reserveCapacity(rows)
        ids.reserveCapacity(rows)
        buyerMaker.reserveCapacity(rows)
        if layout.dataset == .trades { amounts.reserveCapacity(rows) } else {
            firstTradeIDs.reserveCapacity(rows)
            lastTradeIDs.reserveCapacity(rows)
        }
        if layout.hasBestMatch { bestMatch.reserveCapacity(rows) }
    }

    public var count: Int { ids.count }
}

extension TradeBatch: Sendable where F: Sendable {}

/// IDs missing between two consecutive rows of a file: the first and last missing, and the times
/// (µs since the epoch, UTC) of the rows on either side.
public struct IDHole: Sendable, Codable, Equatable {
    /// `trade_id` (raw trades, or the trades an aggregate chain skips) or `agg_trade_id`.
    public var kind: String
    public var first: Int64
    public var last: Int64
    public var afterMicros: Int64
    public var beforeMicros: Int64

    public init(kind: String, first: Int64, last: Int64, afterMicros: Int64, beforeMicros: Int64) {
        (self.kind, self.first, self.last, self.afterMicros, self.beforeMicros) = (kind, first, last, afterMicros, beforeMicros)
    }

    public var count: Int64 { last - first + 1 }
}

/// Times in a tick file: milliseconds (futures, spot before 2025) or microseconds (spot from 2025).
public enum TradeTimeUnit: String, Sendable, Codable {
    case milliseconds, microseconds
}

/// What a tick archive held, beside its rows: the completeness proof (IDs without a hole) and
/// what does not fit it.
public struct TradeReport: Sendable, Codable, Equatable {
    public var archive: String
    public var member: String
    public var dataset: TradeDataset
    public var market: TradeMarket
    public var symbol: String
    public var period: String
    public var hasHeader = false
    public var timeUnit: TradeTimeUnit?
    public var rows = 0
    public var firstID: Int64?
    public var lastID: Int64?
    /// Aggregates: the first and last raw trade they hold.
    public var firstTradeID: Int64?
    public var lastTradeID: Int64?
    public var firstMicros: Int64?
    public var lastMicros: Int64?
    /// The first `TradeReport.maxListedHoles` holes; `holeCount` and `idsMissing` count them all.
    public var holes: [IDHole] = []
    public var holeCount = 0
    public var idsMissing: Int64 = 0
    /// Rows whose ID is not above the row before's (a repeat or a step back).
    public var outOfOrder = 0
    /// Rows whose time is before the row before's.
    public var timeBackwards = 0
    /// Rows whose time is outside the archive's day or month (kept, counted).
    public var outsidePeriod = 0

    public static let maxListedHoles = 1000

    public init(archive: String, member: String, layout: TradeLayout, symbol: String, period: String) {
        (self.archive, self.member, dataset, market, self.symbol, self.period) = (archive, member, layout.dataset, layout.market, symbol, period)
    }

    mutating func hole(_ kind: String, _ first: Int64, _ last: Int64, after: Int64, before: Int64) {
        holeCount += 1
        idsMissing += last - first + 1
        if holes.count < Self.maxListedHoles { holes.append(IDHole(kind: kind, first: first, last: last, afterMicros: after, beforeMicros: before)) }
    }
}
