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
    /// Data lines read, and rows kept (one per slot).
    public var csvRows = 0
    public var rows = 0
    public var firstEpoch: Int64?
    public var lastEpoch: Int64?
    /// Rows moved from an end-of-period label to their period's start (metrics before 2026-06-25).
    public var shifted = 0
    /// Rows of another day or month (the neighbouring archive's, which writes them): dropped.
    public var outsidePeriod = 0
    /// Rows repeating a slot: the last is kept.
    public var duplicates = 0
    /// Times not on their slot's start (funding a few ms after the hour): floored to it.
    public var offSlot = 0
    /// Metrics fields left empty by Binance: stored as NaN.
    public var emptyValues = 0
    /// Slots with no row, and their spans (UTC, first..last slot start).
    public var missingSlots = 0
    public var gaps: [String] = []
    /// The same spans as [first, last] slot starts (UTC s): what the job's state records.
    public var gapRanges: [[Int64]] = []
    /// Funding interval changes within the archive ("2026-04-10T08:00:00Z 8h -> 4h").
    public var intervalChanges: [String] = []

    public init(archive: String, member: String, dataset: FuturesDataset, symbol: String, period: String) {
        (self.archive, self.member, self.dataset, self.symbol, self.period) = (archive, member, dataset, symbol, period)
    }

    /// Anomalies worth a line in a run's report: anything but the conventions handled by rule.
    public var anomalies: Int { duplicates + missingSlots + emptyValues }

    /// Slots of the period without a row. Metrics: every 5 minutes of the day. Funding: each
    /// funding is due `hours` after the one before (the interval may change within the month);
    /// before the first and after the last, by the first and last row's interval.
    mutating func findGaps(epochs: [Int64], hours: [Int64]?, period: ArchivePeriod, slot: Int64) {
        var spans: [(Int64, Int64)] = []
        func missing(from: Int64, to: Int64, step: Int64) {
            guard to >= from else { return }
            missingSlots += Int((to - from) / step) + 1
            spans.append((from, to))
        }
        if let hours {
            guard let first = epochs.first, let last = epochs.last else {
                missing(from: period.start, to: period.end - 3600, step: 3600)
                gaps = spans.map { "\(UTCCalendar.iso8601($0.0))..\(UTCCalendar.iso8601($0.1))" }
                gapRanges = spans.map { [$0.0, $0.1] }
                return
            }
            let firstStep = hours[0] * 3600
            missing(from: first - (first - period.start) / firstStep * firstStep, to: first - firstStep, step: firstStep)
            for i in 1..<max(1, epochs.count) {
                let step = hours[i - 1] * 3600
                if hours[i] != hours[i - 1] {
                    intervalChanges.append("\(UTCCalendar.iso8601(epochs[i])) \(hours[i - 1])h -> \(hours[i])h")
                }
                missing(from: epochs[i - 1] + step, to: epochs[i] - step, step: step)
            }
            let lastStep = hours[hours.count - 1] * 3600
            missing(from: last + lastStep, to: last + (period.end - 1 - last) / lastStep * lastStep, step: lastStep)
        } else {
            var expected = period.start
            for t in epochs {
                missing(from: expected, to: t - slot, step: slot)
                expected = t + slot
            }
            missing(from: expected, to: period.end - slot, step: slot)
        }
        gaps = spans.map { $0.0 == $0.1 ? UTCCalendar.iso8601($0.0) : "\(UTCCalendar.iso8601($0.0))..\(UTCCalendar.iso8601($0.1))" }
        gapRanges = spans.map { [$0.0, $0.1] }
    }
}
