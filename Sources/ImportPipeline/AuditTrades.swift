import BinanceSource
import Columnar
import Foundation
import JobModel
import JobState
import KlineArchive
import TradeArchive

/// Klines against bars rebuilt from the trades of the same period, from the archives alone:
/// per interval, open (first trade's price), high, low, close (last trade's), volume and taker
/// buy volume (sums of quantities) and the number of trades. Sums are exact: quantities have at
/// most 8 decimals, so each is summed as an integer of 1e-8 units (exact while a single trade's
/// quantity is under 90 million).
extension Auditor {
    /// One interval's bar from trades.
    struct Bar {
        var open: Double, high: Double, low: Double, close: Double
        var volume: Int64 = 0, takerBuy: Int64 = 0, count = 0
    }

    static func units(_ value: Double) -> Int64 { Int64((value * 1e8).rounded()) }

    /// `days` done kline units (spread over the job) against the raw trades archive of the same
    /// period. A unit whose trades archive is not published is skipped and said.
    package func compareWithTrades(days: Int, manifest: Manifest) async throws -> (disagreements: [Disagreement], skipped: [String]) {
        guard days > 0, spec.dataset as? KlineDataset == .klines else { return ([], []) }
        let units = Self.sampledArchives(manifest, days) { KlineArchiveName(fileName: $0.id) != nil }
        let fetcher = planner.makeFetcher()
        var out: [Disagreement] = [], skipped: [String] = []
        for record in units {
            guard let name = KlineArchiveName(fileName: record.id), let step = name.interval.seconds,
                  let klineAddress = try? ArchiveAddress(market: spec.market, symbol: name.symbol, interval: name.interval, period: name.period),
                  case let .ready(klineArchive) = try await fetcher.fetch(klineAddress) else { continue }
            let tradesAddress = try TradeArchiveAddress(market: spec.market, symbol: name.symbol, dataset: .trades, period: name.period)
            guard case let .ready(tradesArchive) = try await fetcher.fetch(tradesAddress) else {
                skipped.append(tradesAddress.remotePath)
                continue
            }
            var bars: [Int64: Bar] = [:]
            _ = try TradeArchiveDecoder.decode(path: tradesArchive.path, market: TradeMarket(spec.market), as: Double.self) { batch in
                for i in 0..<batch.count {
                    let slot = floorDiv(batch.epochs[i], step) * step, price = batch.prices[i], qty = Self.units(batch.quantities[i])
                    var bar = bars[slot] ?? Bar(open: price, high: price, low: price, close: price)
                    (bar.high, bar.low, bar.close) = (max(bar.high, price), min(bar.low, price), price)
                    bar.volume += qty
                    if !batch.buyerMaker[i] { bar.takerBuy += qty }  // the buyer took: a taker buy
                    bar.count += 1
                    bars[slot] = bar
                }
            }
            let klines = try KlineArchiveDecoder.decode(path: klineArchive.path, options: KlineDecodeOptions(interval: name.interval, columns: KlineColumn.allCases,
                                                                                                          floatType: .float64)).batch
            func column(_ c: KlineColumn) -> ColumnValues? { klines.columns.first { $0.column == c }?.values }
            guard let o = column(.open), let h = column(.high), let l = column(.low), let c = column(.close), let v = column(.volume),
                  let t = column(.trades), let tb = column(.takerBuyBaseVolume) else { continue }
            for (i, epoch) in klines.epochs.enumerated() {
                let time = UTCCalendar.iso8601(epoch)
                guard let bar = bars.removeValue(forKey: epoch) else {
                    if t.double(at: i) != 0 {
                        out.append(Disagreement(kind: "kline_without_trades", unit: record.id, openTime: time, detail: "\(Int(t.double(at: i))) trades in the kline, none in \(tradesAddress.fileName)"))
                    }
                    continue
                }
                let pairs: [(String, String, String, Bool)] = [
                    ("Open", o.text(at: i), "\(bar.open)", o.double(at: i) == bar.open), ("High", h.text(at: i), "\(bar.high)", h.double(at: i) == bar.high),
                    ("Low", l.text(at: i), "\(bar.low)", l.double(at: i) == bar.low), ("Close", c.text(at: i), "\(bar.close)", c.double(at: i) == bar.close),
                    ("Volume", v.text(at: i), Self.decimal(bar.volume), Self.units(v.double(at: i)) == bar.volume),
                    ("TakerBuyBaseVolume", tb.text(at: i), Self.decimal(bar.takerBuy), Self.units(tb.double(at: i)) == bar.takerBuy),
                    ("Trades", t.text(at: i), "\(bar.count)", Int(t.double(at: i)) == bar.count),
                ]
                for (columnName, kline, trades, same) in pairs where !same {
                    var d = Disagreement(kind: "trades_vs_kline", unit: record.id, openTime: time, column: columnName, detail: "rebuilt from \(tradesAddress.fileName)")
                    (d.monthly, d.daily) = (kline, trades)
                    out.append(d)
                }
            }
            for slot in bars.keys.sorted() {
                out.append(Disagreement(kind: "trades_without_kline", unit: record.id, openTime: UTCCalendar.iso8601(slot), detail: "\(bars[slot]!.count) trades in \(tradesAddress.fileName)"))
            }
        }
        return (out, skipped)
    }

    /// 1e-8 units as a decimal string.
    static func decimal(_ units: Int64) -> String {
        let sign = units < 0 ? "-" : "", magnitude = units.magnitude
        let fraction = String(magnitude % 100_000_000)
        return "\(sign)\(magnitude / 100_000_000).\(String(repeating: "0", count: 8 - fraction.count))\(fraction)"
    }
}
