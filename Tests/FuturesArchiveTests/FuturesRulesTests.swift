import Columnar
import Foundation
import KlineArchive
import TestSupport
import XCTest

@testable import FuturesArchive

/// The funding gap rule at interval changes, the metrics label read from content, rows outside
/// the archive's period, values that are not numbers and calc times off the hour (issue 32).
final class FuturesRulesTests: TemporaryDirectoryTestCase {

    static let feb = UTCCalendar.epoch(year: 2026, month: 2, day: 1)

    /// A month of funding from (time, hours) rows; `ms` is added to each calc time.
    func funding(_ rows: [(Int64, Int64)], ms: Int64 = 7, name: String = "XYZUSDT-fundingRate-2026-02.zip") throws -> (FuturesBatch, FuturesReport) {
        var csv = FuturesDataset.fundingRate.header.joined(separator: ",") + "\n"
        for (t, h) in rows { csv += "\(t * 1000 + ms),\(h),0.0001\n" }
        return try FuturesArchiveDecoder.decode(path: try writeArchive(dir, name, csv))
    }

    /// Fundings every `first` hours through `lastOld`, then every `then` hours to the month's
    /// end, the column the hours since the funding before (the archives' reading).
    func schedule(first: Int64, then: Int64, lastOld: Int64) -> [(Int64, Int64)] {
        let end = UTCCalendar.epoch(year: 2026, month: 3, day: 1)
        let old: [(Int64, Int64)] = stride(from: Self.feb, through: lastOld, by: Int(first * 3600)).map { ($0, first) }
        let new: [(Int64, Int64)] = stride(from: lastOld + then * 3600, to: end, by: Int(then * 3600)).map { ($0, then) }
        return old + new
    }

    func testAFourToEightHourChangeIsNoGap() throws {
        // 00:00 with 4, 08:00 with 8: eight hours since the funding before, as the column says.
        let (_, report) = try funding(schedule(first: 4, then: 8, lastOld: Self.feb + 10 * 86400))
        XCTAssertEqual(report.gaps, [], "no funding is missing")
        XCTAssertEqual(report.intervalChanges, ["2026-02-11T08:00:00Z 4h -> 8h"])
        XCTAssertEqual(report.intervalColumn, .hoursSincePrevious)
    }

    func testAFundingRemovedAtAnEightToFourHourChangeIsReported() throws {
        let lastOld = Self.feb + 10 * 86400
        var rows = schedule(first: 8, then: 4, lastOld: lastOld)
        let (_, whole) = try funding(rows)
        XCTAssertEqual(whole.gaps, [])
        XCTAssertEqual(whole.intervalChanges, ["2026-02-11T04:00:00Z 8h -> 4h"])
        // The last 8 h funding (00:00) removed: 16:00 (8) then 04:00 (4).
        rows.removeAll { $0.0 == lastOld }
        let (_, report) = try funding(rows)
        XCTAssertEqual(report.gaps, ["2026-02-11T00:00:00Z"])
        XCTAssertEqual(report.missingSlots, 1)
    }

    func testAFundingRemovedJustAfterTheChangeIsReported() throws {
        let lastOld = Self.feb + 10 * 86400
        var rows = schedule(first: 8, then: 4, lastOld: lastOld)
        rows.removeAll { $0.0 == lastOld + 4 * 3600 }  // the first funding 4 h after the one before
        let (_, report) = try funding(rows)
        XCTAssertEqual(report.gaps, ["2026-02-11T04:00:00Z"])
        XCTAssertEqual(report.missingSlots, 1)
    }

    func testACapHitAndAOneHourRegimeBackToTheGridAreNoGaps() throws {
        // 4 h fundings; a capped rate at 08:00 brings the next one an hour later, then hourly
        // until 14:00, and the 4 h grid resumes at 16:00 (a 2 h step that says 4).
        let day = Self.feb + 5 * 86400
        var rows = stride(from: Self.feb, through: day + 8 * 3600, by: 4 * 3600).map { ($0, Int64(4)) }
        rows += stride(from: day + 9 * 3600, through: day + 14 * 3600, by: 3600).map { ($0, Int64(1)) }
        rows += stride(from: day + 16 * 3600, to: UTCCalendar.epoch(year: 2026, month: 3, day: 1), by: 4 * 3600).map { ($0, Int64(4)) }
        let (_, report) = try funding(rows)
        XCTAssertEqual(report.gaps, [])
        XCTAssertEqual(report.intervalColumn, .hoursSincePrevious)
    }

    /// A file whose column is the hours to the next funding at every change (the other reading):
    /// recognised from its content and said so, not turned into false gaps; a funding missing
    /// inside it is still found.
    func testAColumnOfHoursUntilTheNextFundingIsRecognised() throws {
        let a = Self.feb + 8 * 86400, b = Self.feb + 18 * 86400
        let end = UTCCalendar.epoch(year: 2026, month: 3, day: 1)
        var times = Array(stride(from: Self.feb, to: a, by: 8 * 3600)) + Array(stride(from: a, to: b, by: 4 * 3600))
        times += Array(stride(from: b, to: end, by: 8 * 3600))
        var rows = times.enumerated().map { i, t in (t, ((i + 1 < times.count ? times[i + 1] : t + 8 * 3600) - t) / 3600) }
        XCTAssertEqual(rows.first { $0.0 == a - 8 * 3600 }?.1, 8)
        let (_, clean) = try funding(rows)
        XCTAssertEqual(clean.intervalColumn, .hoursUntilNext)
        XCTAssertEqual(clean.gaps, [], "no false gap at either change")
        rows.removeAll { $0.0 == a + 8 * 3600 }
        let (_, holed) = try funding(rows)
        XCTAssertEqual(holed.gaps, ["2026-02-09T08:00:00Z"])
    }

    /// A calc time a few ms off the hour is the hour (counted as a convention); 30 minutes or
    /// 5 seconds off is an anomaly, counted apart and named.
    func testCalcTimesFarFromTheHourAreAnomalies() throws {
        let rows = stride(from: Self.feb, to: Self.feb + 3 * 86400, by: 8 * 3600).map { ($0, Int64(8)) }
        let (_, jitter) = try funding(rows, ms: 13)
        XCTAssertEqual([jitter.offSlot, jitter.offHour], [9, 0])
        XCTAssertEqual(jitter.anomalies, jitter.missingSlots, "the jitter is no anomaly")
        var csv = FuturesDataset.fundingRate.header.joined(separator: ",") + "\n"
        for (i, (t, h)) in rows.enumerated() { csv += "\(t * 1000 + (i == 2 ? 1_800_000 : i == 4 ? 5_000 : 3)),\(h),0.0001\n" }
        let (batch, report) = try FuturesArchiveDecoder.decode(path: try writeArchive(dir, "XYZUSDT-fundingRate-2026-02.zip", csv))
        XCTAssertEqual(report.offHour, 2)
        XCTAssertEqual(report.offSlot, 7)
        XCTAssertEqual(report.offHourTimes, ["2026-02-01T16:30:00Z", "2026-02-02T08:00:05Z"])
        XCTAssertGreaterThanOrEqual(report.anomalies, 2)
        XCTAssertEqual(batch.epochs[2], Self.feb + 16 * 3600, "the hour it was due")
    }

    /// April rows in a file named 2026-05 hold no row of its month: the archive fails, naming what
    /// it holds, rather than "0 rows, 744 missing slots".
    func testAFileOfAnotherMonthFails() throws {
        let april = UTCCalendar.epoch(year: 2026, month: 4, day: 1)
        var csv = FuturesDataset.fundingRate.header.joined(separator: ",") + "\n"
        for t in stride(from: april, to: april + 30 * 86400, by: 8 * 3600) { csv += "\(t * 1000),8,0.0001\n" }
        let path = try writeArchive(dir, "BTCUSDT-fundingRate-2026-05.zip", csv)
        XCTAssertThrowsError(try FuturesArchiveDecoder.decode(path: path)) { error in
            XCTAssertEqual("\(error)", "\(path): no row of 2026-05: its 90 rows run 2026-04-01T00:00:00Z..2026-04-30T16:00:00Z")
        }
        // One stray row of another month among the month's own is an anomaly, not a convention.
        csv += "\(UTCCalendar.epoch(year: 2026, month: 5, day: 1) * 1000),8,0.0002\n"
        let (_, report) = try FuturesArchiveDecoder.decode(path: try writeArchive(dir, "BTCUSDT-fundingRate-2026-04.zip", csv))
        XCTAssertEqual(report.outsidePeriod, 1)
        XCTAssertEqual(report.anomalies, 1)
    }

    func metricsFile(_ day: Int64, labels: [Int64], market: FuturesMarket = .um) throws -> (FuturesBatch, FuturesReport) {
        let name = "BTCUSDT-metrics-\(UTCCalendar.iso8601(day).prefix(10)).zip"
        return try FuturesArchiveDecoder.decode(path: try writeArchive(dir, name, metricsCSV("BTCUSDT", day: day, labels: labels)), market: market)
    }

    /// The label convention is read from the file's content; the 2026-06-25 date is only the
    /// expectation, used where the content cannot tell.
    func testMetricsLabelsAreReadFromTheContent() throws {
        let before = UTCCalendar.epoch(year: 2026, month: 6, day: 20), after = MetricsLabel.umChange + 2 * 86400
        // Before the change, yet start-labelled (00:00 ... 23:55): stored as it is.
        let (b1, r1) = try metricsFile(before, labels: Array(stride(from: before, to: before + 86400, by: 300)))
        XCTAssertEqual(r1.labels, .periodStart)
        XCTAssertEqual(r1.labelsFrom, .content)
        XCTAssertEqual([r1.shifted, r1.outsidePeriod, r1.rows, r1.missingSlots], [0, 0, 288, 0])
        XCTAssertEqual(r1.labelsContradictDate, true)
        XCTAssertEqual(b1.epochs.first, before)
        // After it, yet end-labelled (00:05 ... 24:00): shifted to the period start.
        let (b2, r2) = try metricsFile(after, labels: Array(stride(from: after + 300, through: after + 86400, by: 300)))
        XCTAssertEqual(r2.labels, .periodEnd)
        XCTAssertEqual(r2.labelsContradictDate, true)
        XCTAssertEqual([r2.shifted, r2.rows, r2.missingSlots], [288, 288, 0])
        XCTAssertEqual(b2.epochs.first, after)
        // A truncated file says nothing either way: the date decides.
        let (_, r3) = try metricsFile(before, labels: Array(stride(from: before + 300, through: before + 43200, by: 300)))
        XCTAssertEqual(r3.labels, .periodEnd)
        XCTAssertEqual(r3.labelsFrom, .date)
        XCTAssertEqual(r3.labelsContradictDate, false)
    }

    /// An end-labelled file's 00:00 row is the last period of the day before: kept apart as the
    /// neighbour's row (the import decides whether the neighbour's own file holds it).
    func testTheSharedRowOfAnEndLabelledFileIsKeptApart() throws {
        let day = UTCCalendar.epoch(year: 2026, month: 6, day: 20)
        let (batch, report) = try metricsFile(day, labels: Array(stride(from: day, through: day + 86400, by: 300)))
        XCTAssertEqual([report.csvRows, report.rows, report.outsidePeriod], [289, 288, 0])
        XCTAssertEqual(report.neighbourRows, 1)
        XCTAssertEqual(batch.before?.epochs, [day - 300])
        XCTAssertEqual(batch.epochs.first, day)
        guard case let .float64(v) = batch.before?.columns[0] else { return XCTFail("the neighbour's row") }
        XCTAssertEqual(v, [1000.12345678], "the 00:00 row's own values")
    }

    /// `nan` and `inf` in a metrics value are stored as NaN and counted with the empty values;
    /// a word is still an error naming its line.
    func testNotANumberInAMetricsValueIsStoredAsNaNAndCounted() throws {
        let day = MetricsLabel.umChange + 86400
        var csv = metricsCSV("BTCUSDT", day: day, labels: Array(stride(from: day, to: day + 86400, by: 300)))
        var lines = csv.split(separator: "\n").map(String.init)
        lines[2] = lines[2].replacingOccurrences(of: ",2.5,", with: ",nan,")
        lines[3] = lines[3].replacingOccurrences(of: ",2.5,", with: ",inf,")
        lines[4] = lines[4].replacingOccurrences(of: ",2.5,", with: ",,")
        csv = lines.joined(separator: "\n") + "\n"
        let (batch, report) = try FuturesArchiveDecoder.decode(path: try writeArchive(dir, "BTCUSDT-metrics-2026-06-26.zip", csv))
        XCTAssertEqual(report.emptyValues, 1)
        XCTAssertEqual(report.notANumber, 2)
        XCTAssertEqual(report.anomalies, 3)
        guard case let .float64(v) = batch.columns[4] else { return XCTFail("float64") }
        XCTAssertTrue(v[1].isNaN && v[2].isNaN && v[3].isNaN && v[0] == 2.5)
        lines[5] = lines[5].replacingOccurrences(of: ",2.5,", with: ",n/a,")
        XCTAssertThrowsError(try FuturesArchiveDecoder.decode(path: try writeArchive(dir, "BTCUSDT-metrics-2026-06-26.zip", lines.joined(separator: "\n") + "\n"))) { error in
            XCTAssertTrue("\(error)".hasSuffix("line 6: count_long_short_ratio n/a is not a number"), "\(error)")
        }
    }
}
