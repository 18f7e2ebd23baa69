/// MarketStore timeframes: how Binance intervals map to them, and which ones the server serves
/// back (its query side only serves the ones below; others are written but never returned).
public enum Timeframe {
    public static let servable = ["1Sec", "10Sec", "30Sec", "1Min", "5Min", "15Min", "30Min", "1H", "2H", "1D"]

    /// Binance interval -> MarketStore timeframe, for the intervals MarketStore can serve back.
    public static let byBinanceInterval: [String: String] = [
        "1s": "1Sec", "1m": "1Min", "5m": "5Min", "15m": "15Min", "30m": "30Min", "1h": "1H", "2h": "2H", "1d": "1D",
    ]

    /// Other Binance intervals, spelled as MarketStore would parse them on write (never served back).
    static let unservableBinance: [String: String] = [
        "3m": "3Min", "4h": "4H", "6h": "6H", "8h": "8H", "12h": "12H", "3d": "3D", "1w": "1W",
    ]

    /// The timeframe for a Binance interval; throws for intervals MarketStore cannot serve back
    /// unless `allowUnservable` (then the write-side spelling is returned).
    public static func forBinanceInterval(_ interval: String, allowUnservable: Bool = false) throws -> String {
        if let tf = byBinanceInterval[interval] { return tf }
        if allowUnservable, let tf = unservableBinance[interval] { return tf }
        throw MarketStoreModelError.unservableTimeframe(key: "interval \(interval)", timeframe: unservableBinance[interval] ?? interval)
    }

    public static func isServable(_ timeframe: String) -> Bool { servable.contains(timeframe) }

    /// Seconds of a timeframe as the server's write side parses it (`1Min` = 60), or nil.
    public static func seconds(_ timeframe: String) -> Int64? {
        let digits = timeframe.prefix(while: \.isNumber)
        guard let n = Int64(digits), n > 0 else { return nil }
        switch timeframe.dropFirst(digits.count) {
        case "Sec", "S": return n
        case "Min", "T": return n * 60
        case "H": return n * 3600
        case "D": return n * 86400
        case "W": return n * 604_800
        default: return nil
        }
    }
}
