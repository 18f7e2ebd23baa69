import KlineArchive

/// A Binance market of the public data tree.
public enum Market: String, CaseIterable, Sendable, Codable {
    case spot
    case futuresUM = "futures/um"
    case futuresCM = "futures/cm"
}

/// Why an address, a listing or a download failed.
public enum SourceError: Error, CustomStringConvertible, Equatable {
    case invalidSymbol(String)
    case unsupported(String)
    case http(url: String, status: Int, attempts: Int)
    case transport(url: String, message: String, attempts: Int)
    case checksumMissing(url: String)
    case checksumMalformed(url: String, text: String)
    case checksumNamesOtherFile(url: String, named: String, expected: String)
    case checksumMismatch(url: String, expected: String, actual: String)
    case listing(url: String, reason: String)
    case io(path: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidSymbol(s): return "invalid symbol \"\(s)\": symbols match ^[A-Z0-9_]{2,40}$"
        case let .unsupported(r): return r
        case let .http(url, status, attempts): return "\(url): HTTP \(status) after \(attempts) attempt(s)"
        case let .transport(url, message, attempts): return "\(url): \(message) after \(attempts) attempt(s)"
        case let .checksumMissing(url): return "\(url): no CHECKSUM file (set checksum: optional to import unverified archives)"
        case let .checksumMalformed(url, text): return "\(url): CHECKSUM is not \"<sha256>  <file>\": \(text.prefix(120))"
        case let .checksumNamesOtherFile(url, named, expected): return "\(url): CHECKSUM names \(named), not \(expected)"
        case let .checksumMismatch(url, expected, actual):
            return "\(url): SHA-256 mismatch after a fresh retry: CHECKSUM says \(expected), the download hashes to \(actual)"
        case let .listing(url, reason): return "\(url): listing failed: \(reason)"
        case let .io(path, reason): return "\(path): \(reason)"
        }
    }
}

/// Symbols reach URLs and paths only after this check.
public func validateSymbol(_ symbol: String) throws {
    let ok = (2...40).contains(symbol.utf8.count)
        && symbol.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
    if !ok { throw SourceError.invalidSymbol(symbol) }
}

/// One kline archive of the public data tree:
/// `data/<market>/<monthly|daily>/<dataset>/<SYMBOL>/<INTERVAL>/<file>` (dataset: klines,
/// markPriceKlines, indexPriceKlines, premiumIndexKlines).
public struct ArchiveAddress: PublishedArchive, Hashable, Sendable, CustomStringConvertible {
    public let market: Market
    public let symbol: String
    public let interval: KlineInterval
    public let period: ArchivePeriod
    public let dataset: KlineDataset

    public init(market: Market, symbol: String, interval: KlineInterval, period: ArchivePeriod, dataset: KlineDataset = .klines) throws {
        try validateSymbol(symbol)
        guard dataset.exists(on: market) else {
            throw SourceError.unsupported("\(dataset.rawValue) exist for futures/um and futures/cm only, not \(market.rawValue)")
        }
        if interval.name == "1s" && market != .spot {
            throw SourceError.unsupported("1s klines exist for spot only, not \(market.rawValue)")
        }
        if period.kind == .day, ["3d", "1w", "1mo"].contains(interval.name) {
            throw SourceError.unsupported("daily archives exist for intervals up to 1d, not \(interval.name)")
        }
        self.market = market
        self.symbol = symbol
        self.interval = interval
        self.period = period
        self.dataset = dataset
    }

    public var fileName: String { "\(symbol)-\(interval.name)-\(period).zip" }
    public var directory: String {
        "data/\(market.rawValue)/\(period.kind == .month ? "monthly" : "daily")/\(dataset.rawValue)/\(symbol)/\(interval.name)/"
    }
    /// The path below the base URL (and below the cache directory).
    public var remotePath: String { directory + fileName }
    public var description: String { remotePath }
}
