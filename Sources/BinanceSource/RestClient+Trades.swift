import Foundation
import TradeArchive

extension RestClient {
    /// Every trade (or aggregate) of `symbol` with an ID in [fromID, toID], oldest first, as CSV
    /// lines of the market's archive layout (no header), so the archive's parser reads them
    /// exactly: pages of 1000 by `fromId`, until toID or a short page (the present).
    public func tradeLines(dataset: TradeDataset, symbol: String, fromID: Int64, toID: Int64) async throws -> [String] {
        guard let path = rest.tradesPath(dataset) else {
            throw RestError.malformed(url: baseURL, reason: "\(rest.market.rawValue) serves \(dataset.rawValue) by ID only with an API key")
        }
        var lines: [String] = []
        var next = fromID
        while next <= toID {
            let url = baseURL + path + "?symbol=\(symbol)&fromId=\(next)&limit=\(Self.tradesPageSize)"
            let page = try Self.parseTrades(try await get(url, weight: rest.tradesWeight(dataset)).body, dataset: dataset, spot: rest.market == .spot, url: url)
            for row in page where row.id >= next && row.id <= toID { lines.append(row.line) }
            guard let last = page.last?.id, last >= next, page.count >= Self.tradesPageSize else { break }
            next = last + 1
        }
        return lines
    }

    static let tradesPageSize = 1000

    /// aggTrades `[{"a", "p", "q", "f", "l", "T", "m", "M"}]` (M on spot only) or historicalTrades
    /// `[{"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}]` -> archive
    /// lines. Prices and amounts stay the strings sent.
    static func parseTrades(_ body: [UInt8], dataset: TradeDataset, spot: Bool, url: String) throws -> [(id: Int64, line: String)] {
        guard let rows = try? JSONSerialization.jsonObject(with: Data(body)) as? [Any] else {
            throw RestError.malformed(url: url, reason: "not a JSON array: \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        func int(_ v: Any?) -> Int64? { (v as? NSNumber).flatMap { Int64($0.stringValue) } }
        func decimal(_ v: Any?) -> String? {
            guard let s = v as? String, !s.isEmpty, s.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D }) else { return nil }
            return s
        }
        func flag(_ v: Any?) -> String? { (v as? Bool).map { spot ? ($0 ? "True" : "False") : ($0 ? "true" : "false") } }
        return try rows.enumerated().map { n, row in
            let o = row as? [String: Any] ?? [:]
            let fields: [String?]
            if dataset == .aggTrades {
                fields = [int(o["a"]).map(String.init), decimal(o["p"]), decimal(o["q"]), int(o["f"]).map(String.init), int(o["l"]).map(String.init),
                          int(o["T"]).map(String.init), flag(o["m"])] + (spot ? [flag(o["M"])] : [])
            } else {
                fields = [int(o["id"]).map(String.init), decimal(o["price"]), decimal(o["qty"]), decimal(o["quoteQty"]), int(o["time"]).map(String.init),
                          flag(o["isBuyerMaker"]), flag(o["isBestMatch"])]
            }
            guard let id = int(o[dataset == .aggTrades ? "a" : "id"]), fields.allSatisfy({ $0 != nil }) else {
                throw RestError.malformed(url: url, reason: "\(dataset.rawValue) row \(n) lacks a field: \(row)")
            }
            return (id, fields.map { $0! }.joined(separator: ","))
        }
    }
}
