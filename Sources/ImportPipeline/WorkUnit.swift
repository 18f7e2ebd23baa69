import BinanceSource
import Columnar
import FuturesArchive
import JobModel
import JobState
import KlineArchive
import TradeArchive

/// What the writer, the state and the downloads need of a unit, whatever its dataset: a kline
/// archive or REST day (`PlannedUnit`), a funding-rate or metrics archive (`FuturesUnit`).
package protocol WorkUnit: Sendable {
    /// The state's id: the archive's remote path (`rest/...` for REST units).
    var id: String { get }
    /// The MarketStore key its rows go to.
    var key: String { get }
    /// The listing's fingerprint of its archive when planned.
    var listing: String? { get }
    /// The archive to download (for a REST unit, the archive it stands in for).
    var archive: any PublishedArchive { get }
    /// The slot length of the gaps its archive's report gives; nil: it records no gaps (REST).
    var gapStep: Int64? { get }
    /// How its rows are written when the target appends them (trades); nil: to fixed slots,
    /// where a row written again replaces itself.
    var appending: Appending? { get }
}

extension WorkUnit {
    package var appending: Appending? { nil }
}

/// How the writer appends a unit's rows so that each is in the target once: the unit is
/// recorded `writing` before its first request, and a unit that may already be partly there
/// (found `writing`, forced, re-published, or replacing dailies) is reconciled: each piece's
/// rows are read back from the target by their seconds and only the IDs not there are sent.
package struct Appending: Sendable, Equatable {
    /// The column whose value identifies a row (`TradeID`, `AggTradeID`).
    package var idColumn: String
    package var reconcile: Bool

    package init(idColumn: String, reconcile: Bool) { (self.idColumn, self.reconcile) = (idColumn, reconcile) }
}

extension PlannedUnit: WorkUnit {
    package var archive: any PublishedArchive { address }
    package var gapStep: Int64? { fromREST ? nil : address.interval.seconds }
}

/// Rows on their way to the writer: epochs and named columns, whatever the dataset.
package struct RowBatch: Sendable {
    package var epochs: [Int64]
    package var columns: [(name: String, values: ColumnValues)]
    package var count: Int { epochs.count }

    package init(epochs: [Int64], columns: [(name: String, values: ColumnValues)]) {
        (self.epochs, self.columns) = (epochs, columns)
    }

    package init(_ batch: KlineBatch) {
        self.init(epochs: batch.epochs, columns: batch.columns.map { ($0.column.rawValue, $0.values) })
    }

    package init(_ batch: FuturesBatch, _ dataset: FuturesDataset) {
        self.init(epochs: batch.epochs, columns: zip(dataset.columns, batch.columns).map { ($0.name, $1) })
    }
}

extension ColumnDigest {
    /// The digest of a kline batch's rows, by column name.
    package mutating func add(_ batch: KlineBatch) {
        add(epochs: batch.epochs, columns: batch.columns.map { ($0.column.rawValue, $0.values) })
    }
}

/// What the state records of a decoded unit, from its dataset's report.
package struct UnitFacts: Sendable {
    package var rows: Int
    package var firstEpoch: Int64?
    package var lastEpoch: Int64?
    /// A monthly kline archive's days lacking (repaired from dailies).
    package var daysLacking: [String] = []
    /// Counts by kind, as the state records them (anomalies, and the conventions applied).
    package var anomalies: [String: Int]
    /// Anomalies for the run's count (a convention applied by rule is not one).
    package var anomalyCount: Int
    /// Slots no row covers, as [first, last] slot starts.
    package var gaps: [[Int64]]
    package var bytes: UInt64
    /// Conventions applied by rule, for the run's summary (metrics labels shifted, rows of the
    /// neighbouring file dropped, funding times floored to the hour).
    package var adjustments: [String: Int] = [:]
    /// Trades: the first and last ID, and the IDs missing between them ([first, last, second
    /// before, second after]).
    package var firstID: Int64?
    package var lastID: Int64?
    package var idHoles: [[Int64]] = []

    package init(rows: Int, firstEpoch: Int64?, lastEpoch: Int64?, anomalies: [String: Int], anomalyCount: Int, gaps: [[Int64]], bytes: UInt64) {
        (self.rows, self.firstEpoch, self.lastEpoch, self.anomalies, self.anomalyCount, self.gaps, self.bytes) =
            (rows, firstEpoch, lastEpoch, anomalies, anomalyCount, gaps, bytes)
    }

    package init(_ report: KlineReport) {
        rows = report.rows
        (firstEpoch, lastEpoch) = (report.firstOpenTime, report.lastOpenTime)
        daysLacking = report.daysLacking
        anomalies = Dictionary(uniqueKeysWithValues: report.anomalies.map { ($0.kind.rawValue, $0.count) })
        anomalyCount = report.anomalyCount
        gaps = report.gaps
        bytes = report.csvBytes
    }

    /// `countingMissingSlots` false: the rows of a period still under way (REST), whose slots
    /// after now are not missing.
    package init(_ report: FuturesReport, bytes: UInt64, countingMissingSlots: Bool = true) {
        rows = report.rows
        (firstEpoch, lastEpoch) = (report.firstEpoch, report.lastEpoch)
        adjustments = ["shifted_to_period_start": report.shifted, "outside_period_dropped": report.neighbourRows - report.neighbourKept,
                       "neighbour_row_kept": report.neighbourKept, "off_slot_floored": report.offSlot,
                       "labels_read_from_content": report.labelsContradictDate ? 1 : 0].filter { $0.value > 0 }
        let missing = countingMissingSlots ? report.missingSlots : 0
        let counted = ["duplicates": report.duplicates, "missing_slots": missing, "empty_values": report.emptyValues,
                       "not_a_number": report.notANumber, "off_hour": report.offHour, "outside_period": report.outsidePeriod]
        anomalies = counted.merging(adjustments) { a, _ in a }.filter { $0.value > 0 }
        anomalyCount = report.anomalies - report.missingSlots + missing
        gaps = countingMissingSlots ? report.gapRanges : []
        self.bytes = bytes
    }
}

/// The period of a unit's archive, from its id or remote path, for kline, futures and trade names
/// alike; nil for a gap filled from REST (no calendar period).
package func archivePeriod(ofRemotePath path: String) -> ArchivePeriod? {
    KlineArchiveName(fileName: path)?.period ?? FuturesArchiveName(fileName: path)?.period ?? TradeArchiveName(fileName: path)?.period
}

extension JobSpec {
    /// The published archive behind a unit's remote path in this job's market and dataset (for
    /// `status --check-remote`); nil for a path that names none.
    package func publishedArchive(ofRemotePath path: String) -> (any PublishedArchive)? {
        dataset.publishedArchive(ofRemotePath: path, market: market)
    }
}
