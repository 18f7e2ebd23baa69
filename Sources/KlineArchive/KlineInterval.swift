import Columnar
/// A Binance kline interval (`1s` ... `1mo`) and its length in seconds.
public struct KlineInterval: Hashable, Sendable, CustomStringConvertible {
    public let name: String
    /// Length in seconds; `1mo` has none (calendar months differ in length).
    public let seconds: Int64?

    public static let all: [KlineInterval] = [
        .init("1s", 1), .init("1m", 60), .init("3m", 180), .init("5m", 300), .init("15m", 900),
        .init("30m", 1800), .init("1h", 3600), .init("2h", 7200), .init("4h", 14400),
        .init("6h", 21600), .init("8h", 28800), .init("12h", 43200), .init("1d", 86400),
        .init("3d", 259_200), .init("1w", 604_800), .init("1mo", nil),
    ]

    private init(_ name: String, _ seconds: Int64?) {
        self.name = name
        self.seconds = seconds
    }

    /// The interval a misspelt name most likely means: another case (`1H`), or the same length
    /// in other units (`60m`, `24h`, `7d`); nil when nothing fits.
    public static func suggestion(for name: String) -> KlineInterval? {
        if let same = all.first(where: { $0.name.lowercased() == name.lowercased() }) { return same }
        let digits = name.prefix(while: \.isNumber), unit = name.dropFirst(digits.count).lowercased()
        let scale: [String: Int64] = ["s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604_800]
        guard let count = Int64(digits), let factor = scale[unit] else { return nil }
        return all.first { $0.seconds == count * factor }
    }

    /// The interval named `name` (Binance spelling), or nil.
    public init?(_ name: String) {
        guard let found = KlineInterval.all.first(where: { $0.name == name }) else { return nil }
        self = found
    }

    public var description: String { name }
}

/// The period an archive covers: one UTC calendar month or one UTC day.
public struct ArchivePeriod: Hashable, Sendable, Comparable, CustomStringConvertible {
    public static func < (a: ArchivePeriod, b: ArchivePeriod) -> Bool { (a.start, a.kind == .month ? 1 : 0) < (b.start, b.kind == .month ? 1 : 0) }

    public enum Kind: String, Sendable { case month, day }
    public let kind: Kind
    public let year: Int
    public let month: Int
    public let day: Int  // 1 for monthly periods

    /// 1970-01-01, the first day a period can name.
    public static let epochDay = ArchivePeriod(checked: .day, 1970, 1, 1)

    /// A period whose fields the caller has checked.
    private init(checked kind: Kind, _ year: Int, _ month: Int, _ day: Int) {
        (self.kind, self.year, self.month, self.day) = (kind, year, month, day)
    }

    public init?(year: Int, month: Int, day: Int? = nil) {
        guard (1970...9999).contains(year), (1...12).contains(month) else { return nil }
        if let day {
            guard (1...UTCCalendar.daysInMonth(year: year, month: month)).contains(day) else { return nil }
            self.kind = .day
            self.day = day
        } else {
            self.kind = .month
            self.day = 1
        }
        self.year = year
        self.month = month
    }

    /// A day written `YYYY-MM-DD`; nil for anything else.
    public init?(day text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) }),
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]) else { return nil }
        self.init(year: y, month: m, day: d)
    }

    /// First second of the period, UTC.
    public var start: Int64 { UTCCalendar.epoch(year: year, month: month, day: day) }
    /// First second after the period, UTC.
    public var end: Int64 {
        switch kind {
        case .day: return start + 86400
        case .month: return start + Int64(UTCCalendar.daysInMonth(year: year, month: month)) * 86400
        }
    }

    public var description: String {
        kind == .month ? UTCCalendar.format4(year) + "-" + UTCCalendar.pad2(month)
            : UTCCalendar.format4(year) + "-" + UTCCalendar.pad2(month) + "-" + UTCCalendar.pad2(day)
    }
}

/// The `-`-separated parts of an archive's file name (the last path component, without its
/// `.zip` or `.csv`), or nil for another extension: what every dataset's name parser starts from.
public func archiveNameParts(_ fileName: String) -> [String]? {
    let base = fileName.split(separator: "/").last.map(String.init) ?? fileName
    guard base.hasSuffix(".zip") || base.hasSuffix(".csv") else { return nil }
    return base.dropLast(4).split(separator: "-", omittingEmptySubsequences: false).map(String.init)
}

/// What a Binance kline archive's file name says: `SYMBOL-INTERVAL-YYYY-MM[-DD].zip`.
public struct KlineArchiveName: Hashable, Sendable {
    public let symbol: String
    public let interval: KlineInterval
    public let period: ArchivePeriod

    /// Parses a file name (a path is fine: only the last component is read).
    public init?(fileName: String) {
        let base = fileName.split(separator: "/").last.map(String.init) ?? fileName
        var stem = Substring(base)
        for suffix in [".zip", ".csv"] where stem.hasSuffix(suffix) { stem = stem.dropLast(suffix.count) }
        let parts = stem.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4 || parts.count == 5,
              let interval = KlineInterval(parts[1]),
              parts[2].count == 4, let year = Int(parts[2]),
              parts[3].count == 2, let month = Int(parts[3]) else { return nil }
        var day: Int?
        if parts.count == 5 {
            guard parts[4].count == 2, let d = Int(parts[4]) else { return nil }
            day = d
        }
        guard let period = ArchivePeriod(year: year, month: month, day: day) else { return nil }
        self.symbol = parts[0]
        self.interval = interval
        self.period = period
    }
}

extension KlineArchiveName {
    /// The data type of a Binance archive name that is not a kline one (`BTCUSDT-fundingRate-2026-04.zip`
    /// gives `fundingRate`); nil for kline names and names of another shape.
    public static func nonKlineDataType(fileName: String) -> String? {
        let base = fileName.split(separator: "/").last.map(String.init) ?? fileName
        let parts = base.split(separator: ".").first?.split(separator: "-").map(String.init) ?? []
        guard parts.count == 4 || parts.count == 5, parts[2].count == 4, Int(parts[2]) != nil,
              KlineInterval(parts[1]) == nil, parts[1].first?.isLetter == true else { return nil }
        return parts[1]
    }
}
