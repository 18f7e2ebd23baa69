/// Why an archive could not be decoded. Every case names the archive; row errors give the line
/// (1-based, counting a header line) and the column (1-based, with its Binance name).
public enum KlineDecodeError: Error, CustomStringConvertible {
    case zip(ZipError)
    case notKline(archive: String, reason: String)
    case unknownInterval(archive: String)
    case malformedField(archive: String, line: Int, column: Int, name: String, text: String)
    case columnCount(archive: String, line: Int, found: Int)
    case timeUnit(archive: String, line: Int, column: Int, name: String, digits: Int)
    case mixedTimeUnits(archive: String, line: Int, column: Int, name: String, expected: String, found: String)
    case lineTooLong(archive: String, line: Int, limit: Int)
    case blankLine(archive: String, line: Int)
    case strict(archive: String, report: KlineReport)

    public static let csvColumnNames = [
        "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
        "taker_buy_volume", "taker_buy_quote_volume", "ignore",
    ]

    public var description: String {
        switch self {
        case let .zip(e): return e.description
        case let .notKline(a, r): return "\(a): not a kline archive: \(r)"
        case let .unknownInterval(a):
            return "\(a): cannot tell the kline interval from the file name; pass it (e.g. --interval 1m)"
        case let .malformedField(a, l, c, n, t): return "\(a): line \(l), column \(c) (\(n)): malformed value \"\(t)\""
        case let .columnCount(a, l, f): return "\(a): line \(l): expected 12 columns, found \(f)"
        case let .timeUnit(a, l, c, n, d):
            return "\(a): line \(l), column \(c) (\(n)): \(d) digits is neither milliseconds (13) nor microseconds (16)"
        case let .mixedTimeUnits(a, l, c, n, e, f):
            return "\(a): line \(l), column \(c) (\(n)): time unit \(f) where the file uses \(e) (mixed units)"
        case let .lineTooLong(a, l, n): return "\(a): line \(l) is longer than \(n) bytes"
        case let .blankLine(a, l): return "\(a): line \(l) is blank, inside the data"
        case let .strict(a, r):
            let kinds = r.anomalies.map { "\($0.kind.rawValue) x\($0.count)" }.joined(separator: ", ")
            return "\(a): strict validation failed: \(kinds)"
        }
    }
}
