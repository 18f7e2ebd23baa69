import Foundation

/// A symbol as `exchangeInfo` describes it: its status (`TRADING`, `BREAK`, `SETTLING`,
/// `DELIVERING`, ...) and, on futures, when it was listed and when it is (or was) delivered.
public struct SymbolStatus: Sendable, Equatable, Codable {
    public var status: String
    /// ms since the epoch, where Binance gives them.
    public var onboardMs: Int64?
    public var deliveryMs: Int64?

    public init(status: String, onboardMs: Int64? = nil, deliveryMs: Int64? = nil) {
        (self.status, self.onboardMs, self.deliveryMs) = (status, onboardMs, deliveryMs)
    }
}

extension RestClient {
    /// Every symbol of the market by name (`/api/v3/exchangeInfo`, `/fapi/v1/exchangeInfo`,
    /// `/dapi/v1/exchangeInfo`; COIN-M says `contractStatus`).
    public func exchangeInfo() async throws -> [String: SymbolStatus] {
        let url = baseURL + rest.exchangeInfoPath
        let body = try await get(url, weight: rest.exchangeInfoWeight).body
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let symbols = object["symbols"] as? [[String: Any]] else {
            throw RestError.malformed(url: url, reason: "no symbols in \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        func ms(_ v: Any?) -> Int64? {
            guard let n = (v as? NSNumber).flatMap({ Int64($0.stringValue) }), n > 0, n < 4_000_000_000_000 else { return nil }  // far-future placeholders are no date
            return n
        }
        var out: [String: SymbolStatus] = [:]
        for s in symbols {
            guard let name = s["symbol"] as? String, let status = (s["status"] as? String) ?? (s["contractStatus"] as? String) else { continue }
            out[name] = SymbolStatus(status: status, onboardMs: ms(s["onboardDate"]), deliveryMs: ms(s["deliveryDate"]))
        }
        return out
    }
}
