import Columnar
import Foundation
import KlineArchive
import MarketStore
import MarketStoreDirectory
import MarketStoreModel
import TestSupport
import XCTest

@testable import FuturesArchive

/// Funding rates and metrics: the real funding archive read exactly, the metrics label change of
/// 2026-06-25 on both sides, gaps, a header that is not the expected one.
final class FuturesArchiveTests: TemporaryDirectoryTestCase {
    func archive(_ name: String, _ csv: String) throws -> String { try writeArchive(dir, name, csv) }

    static let shared = ProcessInfo.processInfo.environment["BINANCE_IMPORT_SHARED"].map { URL(fileURLWithPath: $0) }
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared")

    /// The real archive: 90 fundings of April 2026, every 8 hours from the 1st 00:00, each rate
    /// the correctly rounded double of its text (read by Python's zipfile, parsed by Swift's
    /// Double(String)), times a few ms after the hour floored to it and counted.
    func testTheRealFundingArchiveDecodesExactly() throws {
        let path = Self.shared.appendingPathComponent("binance/non-kline/BTCUSDT-fundingRate-2026-04.zip").path
        guard FileManager.default.fileExists(atPath: path) else { throw missing("../shared/binance/non-kline is absent (\(path))") }
        let (batch, report) = try FuturesArchiveDecoder.decode(path: path)
        let csv = try runCommand("/usr/bin/env", ["python3", "-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.read(z.namelist()[0]).decode(), end='')", path])
        XCTAssertEqual(csv.status, 0, csv.output)
        let rows = csv.output.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        XCTAssertEqual(rows.count, 90)
        XCTAssertEqual(batch.count, 90)
        XCTAssertEqual(batch.epochs, rows.map { Int64($0[0])! / 1000 / 3600 * 3600 })
        XCTAssertEqual(batch.epochs.first, UTCCalendar.epoch(year: 2026, month: 4, day: 1))
        XCTAssertEqual(Set(zip(batch.epochs, batch.epochs.dropFirst()).map { $1 - $0 }), [8 * 3600])
        guard case let .float64(rates) = batch.columns[0], case let .int64(hours) = batch.columns[1] else { return XCTFail("column types") }
        XCTAssertEqual(rates.map(\.bitPattern), rows.map { Double($0[2])!.bitPattern })
        XCTAssertEqual(hours, rows.map { Int64($0[1])! })
        XCTAssertEqual(report.offSlot, rows.filter { Int64($0[0])! % 1000 != 0 }.count)
        XCTAssertGreaterThan(report.offSlot, 0, "the real file has calc times a few ms after the hour")
        XCTAssertEqual(report.missingSlots, 0, report.gaps.description)
        XCTAssertEqual(report.duplicates, 0)
    }

    func metricsDay(_ symbol: String, day: Int64, labels: [Int64]) -> String { metricsCSV(symbol, day: day, labels: labels) }

    /// USDⓈ-M on both sides of 2026-06-25: before it a file labels the end of each period and
    /// carries 00:00 of its day and of the next (289 rows); from it, the start. Read together:
    /// one row per 5 minutes, no duplicate, no hole at the boundary, each value the row of its
    /// period (labelled period end + 5 min before the change).
    func testMetricsLabelsOnBothSidesOfTheChangeGiveOneRowPer5Minutes() throws {
        let days = [UTCCalendar.epoch(year: 2026, month: 6, day: 23), UTCCalendar.epoch(year: 2026, month: 6, day: 24), MetricsLabel.umChange]
        var epochs: [Int64] = []
        var firstColumn: [Double] = []
        for day in days {
            let old = day < MetricsLabel.umChange
            let labels = old ? Array(stride(from: day, through: day + 86400, by: 300)) : Array(stride(from: day, to: day + 86400, by: 300))
            let name = "BTCUSDT-metrics-\(UTCCalendar.iso8601(day).prefix(10)).zip"
            let (batch, report) = try FuturesArchiveDecoder.decode(path: try archive(name, metricsDay("BTCUSDT", day: day, labels: labels)), market: .um)
            XCTAssertEqual(report.labels, old ? .periodEnd : .periodStart, name)
            XCTAssertEqual(report.csvRows, old ? 289 : 288, name)
            XCTAssertEqual(report.shifted, old ? 289 : 0, name)
            XCTAssertEqual(report.neighbourRows, old ? 1 : 0, "the 00:00 row of the day before: \(name)")
            XCTAssertEqual(report.outsidePeriod, 0, name)
            XCTAssertEqual(report.rows, 288, name)
            XCTAssertEqual(report.missingSlots, 0, "\(name): \(report.gaps)")
            epochs += batch.epochs
            guard case let .float64(v) = batch.columns[0] else { return XCTFail("float64") }
            firstColumn += v
        }
        XCTAssertEqual(epochs, Array(stride(from: days[0], to: days[2] + 86400, by: 300)), "one row per 5 minutes, in order")
        XCTAssertEqual(Set(epochs).count, epochs.count, "no duplicate")
        // The row of period p: before the change it was labelled p + 5 min.
        let want = epochs.map { t -> Double in
            let label = t < MetricsLabel.umChange ? t + 300 : t
            let day = t < MetricsLabel.umChange ? floorDiv(t, 86400) * 86400 : floorDiv(label, 86400) * 86400
            return Double("\(1000 + (label - day) / 300).12345678")!
        }
        XCTAssertEqual(firstColumn.map(\.bitPattern), want.map(\.bitPattern))
    }

    /// COIN-M labels the start all along: no shift before 2026-06-25.
    func testCoinMarginedMetricsAreNotShifted() throws {
        let day = UTCCalendar.epoch(year: 2026, month: 6, day: 20)
        let path = try archive("BTCUSD_PERP-metrics-2026-06-20.zip", metricsDay("BTCUSD_PERP", day: day, labels: Array(stride(from: day, to: day + 86400, by: 300))))
        let (batch, report) = try FuturesArchiveDecoder.decode(path: path, market: .cm)
        XCTAssertEqual(report.labels, .periodStart)
        XCTAssertEqual([report.shifted, report.outsidePeriod, report.rows], [0, 0, 288])
        XCTAssertEqual(batch.epochs.first, day)
    }

    /// A day that stops at 12:00 and a day missing an hour: the slots and spans reported, as kline
    /// gaps are.
    func testTruncatedAndHoledMetricsDaysReportTheirGaps() throws {
        let day = MetricsLabel.umChange + 86400
        let truncated = try archive("ETHUSDT-metrics-2026-06-26.zip", metricsDay("ETHUSDT", day: day, labels: Array(stride(from: day, to: day + 43200, by: 300))))
        let (_, t) = try FuturesArchiveDecoder.decode(path: truncated)
        XCTAssertEqual(t.missingSlots, 144)
        XCTAssertEqual(t.gaps, ["2026-06-26T12:00:00Z..2026-06-26T23:55:00Z"])
        let holed = try archive("ETHUSDT-metrics-2026-06-27.zip", metricsDay("ETHUSDT", day: day + 86400,
            labels: Array(stride(from: day + 86400, to: day + 2 * 86400, by: 300)).filter { !($0 >= day + 86400 + 3600 && $0 < day + 86400 + 7200) }))
        let (_, h) = try FuturesArchiveDecoder.decode(path: holed)
        XCTAssertEqual(h.missingSlots, 12)
        XCTAssertEqual(h.gaps, ["2026-06-27T01:00:00Z..2026-06-27T01:55:00Z"])
    }

    /// A funding interval that changes from 8 h to 4 h (the first funding 4 h after the one
    /// before says 4), and a funding missing: both reported.
    func testFundingIntervalChangesAndMissingFundings() throws {
        let start = UTCCalendar.epoch(year: 2026, month: 2, day: 1)
        var times = Array(stride(from: start, to: start + 10 * 86400, by: 8 * 3600))
        times += Array(stride(from: start + 10 * 86400, to: UTCCalendar.epoch(year: 2026, month: 3, day: 1), by: 4 * 3600))
        times.removeAll { $0 == start + 2 * 86400 + 8 * 3600 }  // one 8 h funding missing
        var csv = FuturesDataset.fundingRate.header.joined(separator: ",") + "\n"
        for t in times { csv += "\(t * 1000 + 7),\(t <= start + 10 * 86400 ? 8 : 4),0.000\(t % 97)1\n" }
        let (batch, report) = try FuturesArchiveDecoder.decode(path: try archive("XYZUSDT-fundingRate-2026-02.zip", csv))
        XCTAssertEqual(batch.count, times.count)
        XCTAssertEqual(report.offSlot, times.count)
        XCTAssertEqual(report.intervalChanges, ["2026-02-11T04:00:00Z 8h -> 4h"])
        XCTAssertEqual(report.missingSlots, 1)
        XCTAssertEqual(report.gaps, ["2026-02-03T08:00:00Z"])
    }

    /// A header other than the dataset's (a column renamed, or a kline file under a funding name)
    /// fails with the file and both headers; a malformed value names its line and field.
    func testUnexpectedHeaderAndMalformedRowsAreNamed() throws {
        let renamed = try archive("BTCUSDT-fundingRate-2026-01.zip", "calc_time,interval_hours,last_funding_rate\n1767225600000,8,0.0001\n")
        XCTAssertThrowsError(try FuturesArchiveDecoder.decode(path: renamed)) { error in
            XCTAssertEqual("\(error)", "\(renamed): the header is \"calc_time,interval_hours,last_funding_rate\", not the expected \"calc_time,funding_interval_hours,last_funding_rate\"")
        }
        let bad = try archive("BTCUSDT-fundingRate-2026-01.zip", FuturesDataset.fundingRate.header.joined(separator: ",") + "\n1767225600000,8,0.0001\n1767254400000,8,1e\n")
        XCTAssertThrowsError(try FuturesArchiveDecoder.decode(path: bad)) { error in
            XCTAssertEqual("\(error)", "\(bad): line 3: last_funding_rate 1e is not a number")
        }
        let wrongSymbol = try archive("BTCUSDT-metrics-2026-07-01.zip", metricsDay("ETHUSDT", day: UTCCalendar.epoch(year: 2026, month: 7, day: 1), labels: [UTCCalendar.epoch(year: 2026, month: 7, day: 1)]))
        XCTAssertThrowsError(try FuturesArchiveDecoder.decode(path: wrongSymbol)) { error in
            XCTAssertTrue("\(error)".contains("line 2: symbol ETHUSDT in the archive of BTCUSDT"), "\(error)")
        }
    }
}

/// The decoded rows in their buckets, read back exactly from both targets, and by pymarketstore.
final class FuturesTargetTests: XCTestCase {
    func testFundingAndMetricsReadBackExactlyFromBothTargets() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("futures-targets-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let funding = FuturesArchiveTests.shared.appendingPathComponent("binance/non-kline/BTCUSDT-fundingRate-2026-04.zip").path
        guard FileManager.default.fileExists(atPath: funding) else { throw missing("../shared/binance/non-kline is absent (\(funding))") }
        var parts: [(FuturesDataset, String, FuturesBatch)] = [(.fundingRate, "BTCUSDT", try FuturesArchiveDecoder.decode(path: funding).batch)]
        // Metrics across the label change: three days, one batch each.
        for day in [UTCCalendar.epoch(year: 2026, month: 6, day: 24), MetricsLabel.umChange] {
            let old = day < MetricsLabel.umChange
            let labels = old ? Array(stride(from: day, through: day + 86400, by: 300)) : Array(stride(from: day, to: day + 86400, by: 300))
            let path = try writeArchive(dir, "BTCUSDT-metrics-\(UTCCalendar.iso8601(day).prefix(10)).zip", metricsCSV("BTCUSDT", day: day, labels: labels))
            parts.append((.metrics, "BTCUSDT", try FuturesArchiveDecoder.decode(path: path).batch))
        }
        let server = try ServerProcess.required(script: "Tests/servers/marketstore_server.py")
        defer { server.stop() }
        let client = MarketStoreClient(url: server.url)
        let directory = try DirectoryWriter(root: dir.appendingPathComponent("mktsdb").path)
        for (dataset, symbol, batch) in parts {
            let set = try batch.dataSet(dataset, symbol: symbol)
            try await client.write(set)
            try directory.write(set)
        }
        for dataset in FuturesDataset.allCases {
            let batches = parts.filter { $0.0 == dataset }.map(\.2)
            let epochs = batches.flatMap(\.epochs)
            let key = dataset.key(symbol: "BTCUSDT")
            let served = try await client.query(symbols: ["BTCUSDT"], timeframe: key.timeframe, attributeGroup: key.attributeGroup)
            XCTAssertEqual(served.first?.epochs, epochs, "\(key) from the server")
            let read = try XCTUnwrap(try DirectoryReader(root: dir.appendingPathComponent("mktsdb").path).read(key: key.description), "\(key)")
            XCTAssertEqual(read.names, ["Epoch"] + dataset.columns.map(\.name))
            XCTAssertEqual(read.columns.first, .int64(epochs), "\(key) from the directory")
            for k in dataset.columns.indices {
                let want = batches.map { $0.columns[k] }
                let all: ColumnValues = want.dropFirst().reduce(into: want[0]) { $0.append(contentsOf: $1) }
                XCTAssertEqual(served.first?.columns[k + 1], all, "\(key) \(dataset.columns[k].name), server")
                XCTAssertEqual(read.columns[k + 1], all, "\(key) \(dataset.columns[k].name), directory")
            }
        }
        // The real Python client reads both buckets: names, row counts, the first funding exactly.
        let py = try runCommand("/usr/bin/env", ["python3", "-c", """
            import sys, pymarketstore as pymkts
            c = pymkts.Client(sys.argv[1])
            f = c.query(pymkts.Params('BTCUSDT', '1H', 'FUNDING')).first().df()
            m = c.query(pymkts.Params('BTCUSDT', '5Min', 'METRICS')).first().df()
            print(list(f.columns), len(f), repr(float(f['Rate'].iloc[0])), int(f['IntervalHours'].iloc[0]))
            print(list(m.columns), len(m))
            """, server.url])
        XCTAssertEqual(py.status, 0, py.output)
        XCTAssertEqual(py.output.split(separator: "\n").map(String.init), [
            "['Rate', 'IntervalHours'] 90 -3.449e-05 8",
            "['SumOpenInterest', 'SumOpenInterestValue', 'CountTopTraderLongShortRatio', 'SumTopTraderLongShortRatio', 'CountLongShortRatio', 'SumTakerLongShortVolRatio'] 576",
        ])
    }
}

/// A zip of one CSV member named after the archive.
func writeArchive(_ dir: URL, _ name: String, _ csv: String) throws -> String {
    let path = dir.appendingPathComponent(name).path
    try Data(ZipBuilder.single(String(name.dropLast(4)) + ".csv", csv)).write(to: URL(fileURLWithPath: path))
    return path
}

/// A metrics day, one row per label, values that say which label (and file day) they came from.
func metricsCSV(_ symbol: String, day: Int64, labels: [Int64]) -> String {
    var csv = FuturesDataset.metrics.header.joined(separator: ",") + "\n"
    for t in labels {
        let c = UTCCalendar.civil(t)
        let stamp = "\(c.year)-\(UTCCalendar.pad2(c.month))-\(UTCCalendar.pad2(c.day)) \(UTCCalendar.pad2(c.second / 3600)):\(UTCCalendar.pad2(c.second / 60 % 60)):00"
        let n = (t - day) / 300
        csv += "\(stamp),\(symbol),\(1000 + n).12345678,\(t).5,0.1\(n),1.2345,2.5,0.9999\n"
    }
    return csv
}
