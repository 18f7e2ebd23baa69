import Columnar
import KlineArchive

/// What a funding-rate or metrics archive held, and what the decoder did to it.
public struct FuturesReport: Codable, Sendable, Equatable {
    public var archive: String
    public var member: String
    public var dataset: FuturesDataset
    public var symbol: String
    public var period: String
    public var header: [String] = []
    /// How the archive labels its rows (metrics): `period_end` rows were shifted to the start.
    public var labels: MetricsLabel = .periodStart
    /// Whether `labels` was read from the rows or, where they cannot tell, taken from the date.
    public var labelsFrom: LabelSource = .date
    /// The rows show the other convention than the file's date leads to expect (2026-06-25).
    public var labelsContradictDate = false
    /// Data lines read, and rows kept (one per slot).
    public var csvRows = 0
    public var rows = 0
    public var firstEpoch: Int64?
    public var lastEpoch: Int64?
    /// Rows moved from an end-of-period label to their period's start (metrics before 2026-06-25).
    public var shifted = 0
    /// Rows of another day or month than the archive's, not explained by its labels: dropped
    /// (an anomaly).
    public var outsidePeriod = 0
    /// An end-labelled day's 00:00 row, the last period of the day before: kept apart
    /// (`FuturesBatch.before`).
    public var neighbourRows = 0
    /// Of those, kept: the day before has no archive of its own to write them.
    public var neighbourKept = 0
    /// Rows repeating a slot: the last is kept.
    public var duplicates = 0
    /// Times within a second of their slot's start (funding a few ms after the hour): taken to it.
    public var offSlot = 0
    /// Times further from any slot's start (a calc_time 30 minutes after the hour): floored to
    /// the slot, an anomaly; the first 20 of them.
    public var offHour = 0
    public var offHourTimes: [String] = []
    /// Metrics fields left empty by Binance: stored as NaN.
    public var emptyValues = 0
    /// Metrics fields written `nan` or `inf`: stored as NaN (a ratio has no infinite value).
    public var notANumber = 0
    /// Slots with no row, and their spans (UTC, first..last slot start).
    public var missingSlots = 0
    public var gaps: [String] = []
    /// The same spans as [first, last] slot starts (UTC s): what the job's state records.
    public var gapRanges: [[Int64]] = []
    /// Funding interval changes within the archive ("2026-04-10T08:00:00Z 8h -> 4h").
    public var intervalChanges: [String] = []
    /// How the funding interval column reads at those changes (nil without a change).
    public var intervalColumn: IntervalColumn?

    public init(archive: String, member: String, dataset: FuturesDataset, symbol: String, period: String) {
        (self.archive, self.member, self.dataset, self.symbol, self.period) = (archive, member, dataset, symbol, period)
    }

    /// Anomalies worth a line in a run's report: anything but the conventions handled by rule.
    public var anomalies: Int { duplicates + missingSlots + emptyValues + notANumber + offHour + outsidePeriod }

    /// Slots of the period without a row (metrics: every 5 minutes of the day).
    mutating func findGaps(epochs: [Int64], period: ArchivePeriod, slot: Int64) {
        var expected = period.start
        var spans: [(Int64, Int64)] = []
        for t in epochs {
            if t - slot >= expected { spans.append((expected, t - slot)) }
            expected = t + slot
        }
        if period.end - slot >= expected { spans.append((expected, period.end - slot)) }
        record(spans.map { ($0.0, $0.1, Int(($0.1 - $0.0) / slot) + 1) })
    }

    /// Fundings missing from the month. The column is the interval of the schedule each funding
    /// was settled under: in steady state the hours since the funding before (and to the next).
    /// At a change the archives give the new interval from the first funding after it, whose
    /// step may be shorter (a schedule back on its grid) but never longer: a funding is missing
    /// when the step to a row is longer than that row's interval. A file whose column changes a
    /// row early at every change (the hours to the next funding, at two changes or more) is
    /// read that way: a funding is missing when a step is longer than the interval of the row
    /// before it. Before the first row and after the last, by their intervals.
    mutating func findFundingGaps(epochs: [Int64], hours: [Int64], period: ArchivePeriod) {
        guard let first = epochs.first, let last = epochs.last else {
            return record([(period.start, period.end - 3600, Int((period.end - period.start) / 3600))])
        }
        var sincePrevious = 0, untilNext = 0
        for i in epochs.indices.dropFirst() where hours[i] != hours[i - 1] {
            intervalChanges.append("\(UTCCalendar.iso8601(epochs[i])) \(hours[i - 1])h -> \(hours[i])h")
            let step = (epochs[i] - epochs[i - 1]) / 3600
            if step == hours[i] { sincePrevious += 1 } else if step == hours[i - 1] { untilNext += 1 }
        }
        if !intervalChanges.isEmpty { intervalColumn = untilNext >= 2 && sincePrevious == 0 ? .hoursUntilNext : .hoursSincePrevious }
        let byNext = intervalColumn == .hoursUntilNext
        var spans: [(Int64, Int64, Int)] = []
        let firstStep = hours[0] * 3600, lastStep = hours[hours.count - 1] * 3600
        let before = (first - period.start) / firstStep
        if before > 0 { spans.append((first - before * firstStep, first - firstStep, Int(before))) }
        for i in epochs.indices.dropFirst() {
            let (a, b) = (epochs[i - 1], epochs[i])
            let allowed = (byNext ? hours[i - 1] : hours[i]) * 3600
            guard b - a > allowed else { continue }
            // The missing fundings: on the schedule the column gives for this step, and none
            // sooner than the other schedule allows (at least one).
            var slots: [Int64]
            if byNext {
                slots = Array(stride(from: a + allowed, to: b, by: Int(allowed))).filter { $0 <= b - hours[i] * 3600 }
                if slots.isEmpty { slots = [a + allowed] }
            } else {
                slots = Array(stride(from: b - allowed, to: a, by: -Int(allowed))).filter { $0 >= a + hours[i - 1] * 3600 }.reversed()
                if slots.isEmpty { slots = [b - allowed] }
            }
            spans.append((slots[0], slots[slots.count - 1], slots.count))
        }
        let after = (period.end - 1 - last) / lastStep
        if after > 0 { spans.append((last + lastStep, last + after * lastStep, Int(after))) }
        record(spans)
    }

    private mutating func record(_ spans: [(first: Int64, last: Int64, slots: Int)]) {
        missingSlots = spans.map(\.slots).reduce(0, +)
        gaps = spans.map { $0.first == $0.last ? UTCCalendar.iso8601($0.first) : "\(UTCCalendar.iso8601($0.first))..\(UTCCalendar.iso8601($0.last))" }
        gapRanges = spans.map { [$0.first, $0.last] }
    }
}

/// What a funding archive's interval column says at a change of schedule.
public enum IntervalColumn: String, Sendable, Codable {
    /// The new interval from the first funding after the change (the archives').
    case hoursSincePrevious = "hours_since_previous"
    /// The new interval from the last funding before the change.
    case hoursUntilNext = "hours_until_next"
}
