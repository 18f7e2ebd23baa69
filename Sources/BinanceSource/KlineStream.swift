import Foundation
import KlineArchive

/// Binance's combined kline streams (docs/binance-rest.md, "Streams"): names, connections and
/// the events, parsed into the same CSV line as an archive row or a REST kline.
public struct KlineStreams: Sendable {
    public let market: Market

    public init(_ market: Market) { self.market = market }

    /// wss://stream.binance.com:9443, wss://fstream.binance.com, wss://dstream.binance.com.
    public var defaultBaseURL: String {
        switch market {
        case .spot: return "wss://stream.binance.com:9443"
        case .futuresUM: return "wss://fstream.binance.com"
        case .futuresCM: return "wss://dstream.binance.com"
        }
    }

    /// Streams one connection may carry: 1024 on spot, 200 on futures.
    public var maxStreamsPerConnection: Int { market == .spot ? 1024 : 200 }

    /// A connection lives at most 24 hours; the client reconnects a little before.
    public static let maxConnectionAge: Duration = .seconds(23 * 3600 + 50 * 60)

    /// `btcusdt@kline_1m`: lower-case symbol, Binance's interval name.
    public static func name(symbol: String, interval: KlineInterval) -> String {
        "\(symbol.lowercased())@kline_\(interval.name == "1mo" ? "1M" : interval.name)"
    }

    /// The combined-stream URLs for `names`, at most `maxStreamsPerConnection` a connection.
    public func urls(base: String, names: [String]) -> [String] {
        let root = base.hasSuffix("/") ? String(base.dropLast()) : base
        return stride(from: 0, to: names.count, by: maxStreamsPerConnection).map {
            root + "/stream?streams=" + names[$0..<min(names.count, $0 + maxStreamsPerConnection)].joined(separator: "/")
        }
    }
}

/// One kline event of a combined stream.
public struct KlineEvent: Sendable, Equatable {
    public var stream: String
    public var symbol: String
    public var interval: String
    /// Open and close time, ms.
    public var openTime: Int64
    public var closeTime: Int64
    /// `k.x`: the kline is closed (final); only those are written.
    public var closed: Bool
    /// The 12 fields in the archive's order, as Binance sent them.
    public var csvLine: String

    /// `{"stream": "btcusdt@kline_1m", "data": {"e": "kline", "s": ..., "k": {...}}}`; nil for
    /// any other message (a subscription answer).
    public static func parse(_ text: String) throws -> KlineEvent? {
        guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
              let stream = object["stream"] as? String, let data = object["data"] as? [String: Any],
              data["e"] as? String == "kline", let k = data["k"] as? [String: Any] else { return nil }
        func string(_ key: String) throws -> String {
            guard let s = k[key] as? String else { throw RestError.malformed(url: stream, reason: "k.\(key) is \(k[key] ?? "missing")") }
            return s
        }
        func integer(_ key: String) throws -> Int64 {
            guard let n = k[key] as? NSNumber, n.stringValue.allSatisfy(\.isNumber) else {
                throw RestError.malformed(url: stream, reason: "k.\(key) is \(k[key] ?? "missing")")
            }
            return n.int64Value
        }
        let open = try integer("t"), close = try integer("T")
        let fields = [String(open), try string("o"), try string("h"), try string("l"), try string("c"), try string("v"),
                      String(close), try string("q"), String(try integer("n")), try string("V"), try string("Q"), (k["B"] as? String) ?? "0"]
        guard let closed = k["x"] as? Bool else { throw RestError.malformed(url: stream, reason: "k.x is missing") }
        return KlineEvent(stream: stream, symbol: try string("s"), interval: try string("i"), openTime: open, closeTime: close,
                          closed: closed, csvLine: fields.joined(separator: ","))
    }
}
