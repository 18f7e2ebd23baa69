/// What one archive held and what looked wrong in it.
public struct KlineReport: Codable, Sendable, Equatable {
    public var archive: String
    public var member: String
    public var symbol: String?
    public var interval: String
    /// `2024-01` or `2024-01-05` when the file name follows Binance's naming.
    public var period: String?
    public var periodStart: Int64?
    public var periodEnd: Int64?
    /// Distinct open times (what the target ends up holding).
    public var rows: Int = 0
    /// Data lines in the CSV, duplicates included.
    public var rowsInFile: Int = 0
    public var firstOpenTime: Int64?
    public var lastOpenTime: Int64?
    /// `ms` or `us`, detected from the digits of open_time.
    public var timeUnit: String?
    public var header = false
    public var csvBytes: UInt64 = 0
    /// Slots of the period (or of first..last when the period is unknown).
    public var expectedRows: Int?
    public var missingRows: Int = 0
    /// The first gaps, as inclusive [first, last] open times of the missing intervals.
    public var missingRanges: [[Int64]] = []
    /// For a month's archive (intervals of a day or less): the UTC days (`2024-07-08`) touched by
    /// a gap of a whole day or more, which the daily archives may hold (binance-public-data #359,
    /// #253, #186: monthlies truncated or missing a day that the dailies have).
    public var daysLacking: [String] = []
    /// Every gap (up to 10,000), as `missingRanges`: what the state records and `gaps: rest` asks
    /// REST about.
    public var gaps: [[Int64]] = []
    public var duplicates: Int = 0
    public var outOfOrder: Int = 0
    public var anomalies: [Anomaly] = []

    public var anomalyCount: Int { anomalies.reduce(0) { $0 + $1.count } }
}

/// One kind of anomaly, how often it occurred, and the first few occurrences.
public struct Anomaly: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case missingIntervals = "missing_intervals"
        case duplicateOpenTime = "duplicate_open_time"
        case outOfOrder = "out_of_order"
        case offGrid = "off_grid_open_time"
        case outsidePeriod = "outside_period"
        case closeTimeMismatch = "close_time_mismatch"
        case ohlcInconsistent = "ohlc_inconsistent"
        case nonPositivePrice = "non_positive_price"
        case negativeVolume = "negative_volume"
        case nonFinite = "non_finite"
    }

    public struct Example: Codable, Sendable, Equatable {
        /// 1-based line of the CSV member (0 for anomalies of the whole file, such as gaps).
        public var line: Int
        public var openTime: Int64?
        public var detail: String
    }

    public var kind: Kind
    public var count: Int
    public var examples: [Example]

    public static let maxExamples = 5
}

/// Validation policy of a job: `report` keeps the data and reports anomalies; `strict` fails the
/// archive on any anomaly. Errors (unparseable rows, mixed units, CRC) always fail the archive.
public enum ValidationPolicy: String, Codable, Sendable {
    case report, strict
}

/// Collects anomalies in a fixed order of kinds, keeping counts and the first examples.
struct AnomalyLog {
    private var counts = [Int](repeating: 0, count: Anomaly.Kind.allCases.count)
    private var examples = [[Anomaly.Example]](repeating: [], count: Anomaly.Kind.allCases.count)

    mutating func add(_ kind: Anomaly.Kind, line: Int, openTime: Int64?, _ detail: @autoclosure () -> String) {
        let k = Anomaly.Kind.allCases.firstIndex(of: kind)!
        counts[k] += 1
        if examples[k].count < Anomaly.maxExamples {
            examples[k].append(.init(line: line, openTime: openTime, detail: detail()))
        }
    }

    mutating func add(_ kind: Anomaly.Kind, count: Int, examples list: [Anomaly.Example]) {
        let k = Anomaly.Kind.allCases.firstIndex(of: kind)!
        counts[k] += count
        examples[k].append(contentsOf: list.prefix(Anomaly.maxExamples - examples[k].count))
    }

    var anomalies: [Anomaly] {
        Anomaly.Kind.allCases.enumerated().compactMap { k, kind in
            counts[k] > 0 ? Anomaly(kind: kind, count: counts[k], examples: examples[k]) : nil
        }
    }
}
