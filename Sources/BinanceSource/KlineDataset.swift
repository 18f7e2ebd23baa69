import Foundation
import TradeArchive

/// The kline-shaped datasets: the same 12-column CSV in the archives, the same array of arrays
/// from REST (docs/binance-rest.md has the facts and their sources).
public enum KlineDataset: String, CaseIterable, Sendable, Codable {
    case klines, markPriceKlines, indexPriceKlines, premiumIndexKlines

    /// The attribute group a job uses unless it names one: each dataset its own, so a mark-price
    /// job never writes into the trades' OHLCV bucket of the same symbol.
    public var defaultAttributeGroup: String {
        switch self {
        case .klines: return "OHLCV"
        case .markPriceKlines: return "MARK"
        case .indexPriceKlines: return "INDEX"
        case .premiumIndexKlines: return "PREMIUM"
        }
    }

    /// Published for `market`: spot has klines only.
    public func exists(on market: Market) -> Bool { self == .klines || market != .spot }

    /// The REST query parameter naming the instrument: index price klines are per pair.
    public var instrumentParameter: String { self == .indexPriceKlines ? "pair" : "symbol" }
}

/// Binance's REST API of a market, as documented: where klines and the server time are, how many
/// klines a request may ask for, and what a request weighs.
public struct RestMarket: Sendable {
    public let market: Market

    public init(_ market: Market) { self.market = market }

    /// api.binance.com, fapi.binance.com, dapi.binance.com.
    public var defaultBaseURL: String {
        switch market {
        case .spot: return "https://api.binance.com"
        case .futuresUM: return "https://fapi.binance.com"
        case .futuresCM: return "https://dapi.binance.com"
        }
    }

    private var prefix: String {
        switch market {
        case .spot: return "/api/v3"
        case .futuresUM: return "/fapi/v1"
        case .futuresCM: return "/dapi/v1"
        }
    }

    /// `/api/v3/klines`, `/fapi/v1/markPriceKlines`, ...
    public func klinesPath(_ dataset: KlineDataset) -> String { prefix + "/" + dataset.rawValue }

    /// `/api/v3/time`, `/fapi/v1/time`, `/dapi/v1/time`: `{"serverTime": ms}`.
    public var timePath: String { prefix + "/time" }

    /// The largest `limit` of a klines request: 1000 on spot, 1500 on futures.
    public var maxLimit: Int { market == .spot ? 1000 : 1500 }

    /// The request weight limit per minute (exchangeInfo's REQUEST_WEIGHT): 6000 on spot, 2400
    /// on futures.
    public var defaultWeightLimit: Int { market == .spot ? 6000 : 2400 }

    /// The documented weight of a klines request: 2 on spot; on futures by `limit`: [1,100) 1,
    /// [100,500) 2, [500,1000] 5, above 10.
    public func klinesWeight(limit: Int) -> Int {
        guard market != .spot else { return 2 }
        switch limit {
        case ..<100: return 1
        case ..<500: return 2
        case ...1000: return 5
        default: return 10
        }
    }

    /// The weight of a server time request.
    public let timeWeight = 1

    /// `/fapi/v1/fundingRate`, `/dapi/v1/fundingRate`: the funding history, oldest first from
    /// startTime, at most `fundingLimit` a request. Its weight (USDⓈ-M: a limit of its own, 500
    /// per 5 minutes shared with fundingInfo; COIN-M: 1) is counted as 1.
    public var fundingRatePath: String { prefix + "/fundingRate" }

    /// The market's symbols and their trading status (`exchangeInfo`): weight 20 on spot, 1 on futures.
    public var exchangeInfoPath: String { prefix + "/exchangeInfo" }
    public var exchangeInfoWeight: Int { market == .spot ? 20 : 1 }

    /// Where trades are served by ID (`fromId`) without a key: aggregates on every market, raw
    /// trades on spot only (futures' historicalTrades asks for an API key); nil where not.
    public func tradesPath(_ dataset: TradeDataset) -> String? {
        dataset == .aggTrades ? prefix + "/aggTrades" : market == .spot ? prefix + "/historicalTrades" : nil
    }

    /// The weight of a page of trades (limit 1000): spot aggTrades 4, historicalTrades 25;
    /// futures aggTrades 20.
    public func tradesWeight(_ dataset: TradeDataset) -> Int { market == .spot ? (dataset == .aggTrades ? 4 : 25) : 20 }
    public let fundingLimit = 1000
    public let fundingWeight = 1
}
