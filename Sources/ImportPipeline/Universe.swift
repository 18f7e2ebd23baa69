import BinanceSource
import Columnar
import Foundation
import JobState
import KlineArchive
import MarketStoreModel

/// The symbols of a job by date, for backtests free of survivorship bias: each symbol's life span
/// from the rows its archives gave (first and last day) and, where Binance's `exchangeInfo` was
/// asked, its status and its onboard and delivery dates. A symbol whose rows stop before the
/// job's newest day and that `exchangeInfo` does not call TRADING (or does not list) was delisted
/// the day after its last row (or on its delivery date); without `exchangeInfo`, one whose rows
/// stop more than `quietDays` before the newest is taken as delisted and said to be inferred.
package struct Universe: Sendable {
    package struct Life: Codable, Equatable, Sendable {
        package var symbol: String
        package var firstDay: String?
        package var lastDay: String?
        package var status: String?
        package var onboard: String?
        package var delivery: String?
        package var delistedOn: String?
        /// How `delistedOn` is known: `exchange_info`, `delivery_date` or `inferred` (rows stopped).
        package var delistedBy: String?

        /// Whether it traded on `day`: from its first day (or onboard date) to its last row while
        /// delisted; to today otherwise.
        package func trading(on day: String) -> Bool {
            guard let first = onboard.map({ min($0, firstDay ?? $0) }) ?? firstDay, day >= first else { return false }
            if let delistedOn { return day < delistedOn }
            return true
        }
    }

    package static let quietDays: Int64 = 3

    package var lives: [Life]

    /// `info`: `exchangeInfo`'s symbols, or nil when it was not asked.
    package init(manifest: Manifest, info: [String: SymbolStatus]?) {
        var first: [String: Int64] = [:], last: [String: Int64] = [:]
        for record in manifest.units.values where record.status == .done {
            guard let symbol = BucketKey(record.key)?.symbol else { continue }
            if let f = record.firstEpoch { first[symbol] = min(first[symbol] ?? f, f) }
            if let l = record.lastEpoch { last[symbol] = max(last[symbol] ?? l, l) }
        }
        let newest = last.values.max().map { floorDiv($0, 86400) }
        func day(_ epoch: Int64) -> String { String(UTCCalendar.iso8601(epoch).prefix(10)) }
        let symbols = Set(first.keys).union(last.keys).union(Set(manifest.units.values.compactMap { BucketKey($0.key)?.symbol }))
        lives = symbols.sorted().map { symbol in
            var life = Life(symbol: symbol, firstDay: first[symbol].map(day), lastDay: last[symbol].map(day))
            let status = info?[symbol]
            life.status = status?.status ?? (info == nil ? nil : "not listed")
            life.onboard = status?.onboardMs.map { day($0 / 1000) }
            life.delivery = status?.deliveryMs.map { day($0 / 1000) }
            guard let lastEpoch = last[symbol], let newest else { return life }
            let stopped = floorDiv(lastEpoch, 86400) < newest
            let dayAfter = day((floorDiv(lastEpoch, 86400) + 1) * 86400)
            if let delivery = life.delivery, status?.status != "TRADING", delivery <= day(newest * 86400 + 86400) {
                (life.delistedOn, life.delistedBy) = (delivery, "delivery_date")
            } else if let info, stopped, info[symbol]?.status != "TRADING" {
                (life.delistedOn, life.delistedBy) = (dayAfter, "exchange_info")
            } else if info == nil, floorDiv(lastEpoch, 86400) < newest - Self.quietDays {
                (life.delistedOn, life.delistedBy) = (dayAfter, "inferred")
            }
            return life
        }
    }

    /// The symbols trading on `day` (YYYY-MM-DD), delisted ones included while they traded.
    package func trading(on day: String) -> [Life] { lives.filter { $0.trading(on: day) } }
}
