import Columnar
import Foundation
import KlineArchive
import MarketStore
import TestSupport
import XCTest
@testable import ImportPipeline
@testable import JobModel
@testable import JobState

/// Funding rates and metrics through `run`/`nightly`, `status` and `verify` (issue 26), from the
/// fixture archive server with its S3 listing into both targets: the real funding archive, and
/// synthetic metrics across USDⓈ-M's 2026-06-25 label change with a truncated and a missing day.
extension ImportJobTests {
    /// A funding-rate or metrics job file (no intervals, columns or dtype: the dataset fixes them).
    func futuresJob(_ name: String, dataset: String, symbols: [String], from: String, to: String, market: String = "futures/um",
                    target: ImportTarget? = nil, rest: ServerProcess? = nil, extra: String = "") throws -> String {
        let targetLine: String
        switch target ?? .marketstore(url: marketstore.url) {
        case let .marketstore(url): targetLine = "marketstore: \(url)"
        case let .directory(path): targetLine = "directory: \(path)"
        }
        let yaml = """
        name: \(name)
        source:
          base_url: \(archives.base)/
          listing_url: \(archives.base)/listing
          cache_dir: \(work.appendingPathComponent("cache").path)
          rest_url: \(rest?.base ?? "http://127.0.0.1:9")
        market: \(market)
        dataset: \(dataset)
        symbols: [\(symbols.joined(separator: ", "))]
        from: \(from)
        to: \(to)
        target:
          \(targetLine)
        manifest: \(work.appendingPathComponent("state/\(name).manifest.db").path)
        \(extra)
        """
        let path = work.appendingPathComponent("\(name).yml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A zip of one CSV member in the tree, with its CHECKSUM (`checksum` overrides the hash).
    func publish(_ remoteDirectory: String, _ name: String, csv: String, checksum: String? = nil) throws {
        let dir = tree.appendingPathComponent(remoteDirectory)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let zip = ZipBuilder.single(String(name.dropLast(4)) + ".csv", csv)
        try Data(zip).write(to: dir.appendingPathComponent(name))
        try "\(checksum ?? sha256Hex(zip))  \(name)\n".write(to: dir.appendingPathComponent(name + ".CHECKSUM"), atomically: true, encoding: .utf8)
    }

    /// A metrics day of BTCUSDT with one row per label; each row's sum_open_interest_value is
    /// `<label>.5`, so a stored row says which label (and so which file row) it came from.
    func metricsDay(_ day: String, labels: [Int64]) -> String {
        var csv = "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n"
        for t in labels {
            let c = UTCCalendar.civil(t)
            let stamp = "\(c.year)-\(UTCCalendar.pad2(c.month))-\(UTCCalendar.pad2(c.day)) \(UTCCalendar.pad2(c.second / 3600)):\(UTCCalendar.pad2(c.second / 60 % 60)):00"
            csv += "\(stamp),BTCUSDT,\(97_000 + t % 86400 / 300).123456789,\(t).5,0.1\(t % 7),1.2345,,0.9999\n"
        }
        return csv
    }

    /// The real funding archive of ../shared/binance/non-kline (BTCUSDT, USDⓈ-M, 2026-04) in the
    /// tree, as the archive server publishes it; returns its path in ../shared.
    @discardableResult
    func publishRealFundingArchive() throws -> URL {
        let shared = ServerProcess.shared.appendingPathComponent("binance/non-kline")
        let name = "BTCUSDT-fundingRate-2026-04.zip"
        guard FileManager.default.fileExists(atPath: shared.appendingPathComponent(name).path) else { throw missing("../shared/binance/non-kline is absent") }
        let folder = "data/futures/um/monthly/fundingRate/BTCUSDT"
        try FileManager.default.createDirectory(at: tree.appendingPathComponent(folder), withIntermediateDirectories: true)
        for file in [name, name + ".CHECKSUM"] {
            try FileManager.default.copyItem(at: shared.appendingPathComponent(file), to: tree.appendingPathComponent("\(folder)/\(file)"))
        }
        return shared.appendingPathComponent(name)
    }

    func testTheRealFundingArchiveLandsExactlyOnBothTargetsVerifiesAndIsNotDownloadedTwice() async throws {
        let archive = try publishRealFundingArchive()
        // The expected rows, read independently: Python's zipfile for the text, Swift's own
        // Double(String) for each rate, the hour floored by hand.
        let text = try run("/usr/bin/env", ["python3", "-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.read(z.namelist()[0]).decode(), end='')",
                                            archive.path])
        XCTAssertEqual(text.status, 0, text.output)
        let lines = text.output.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        let epochs = lines.map { Int64($0[0])! / 1000 / 3600 * 3600 }
        let rates = lines.map { Double($0[2])! }
        let hours = lines.map { Int64($0[1])! }
        XCTAssertEqual(epochs.count, 90)

        let today = "2026-11-29"
        for (t, targetName) in ["server", "directory"].enumerated() {
            let target: ImportTarget = t == 0 ? .marketstore(url: marketstore.url) : .directory(path: work.appendingPathComponent("mktsdb").path)
            let path = try futuresJob("funding-\(targetName)", dataset: "fundingRate", symbols: ["BTCUSDT"], from: "2026-03", to: "2026-05", target: target)
            try await archives.control(["reset": true])
            let first = try importer(["run", path, "--log-format", "json"], today: today)
            XCTAssertEqual(first.status, 0, "\(targetName): \(first.output)")
            let summary = nightlySummary(first.output)
            XCTAssertEqual(summary["done"] as? Int, 1, first.output)
            XCTAssertEqual(summary["rows"] as? Int, 90, first.output)
            XCTAssertEqual((summary["not_published_ranges"] as? [String: String])?["BTCUSDT/1H/FUNDING"],
                           "2026-03 (before its first archive); 2026-05 (after its last archive)", first.output)
            XCTAssertEqual((summary["adjusted"] as? [String: Int])?["off_slot_floored"], lines.filter { Int64($0[0])! % 3_600_000 != 0 }.count)

            let read = try await TargetReader(target: target).read(key: "BTCUSDT/1H/FUNDING", from: nil, to: nil)
            let result = try XCTUnwrap(read.first, targetName)
            XCTAssertEqual(result.names, ["Epoch", "Rate", "IntervalHours"], targetName)
            XCTAssertEqual(result.columns, [.int64(epochs), .float64(rates), .int64(hours)], "\(targetName): every funding exact")

            let verify = try importer(["verify", path], today: today)
            XCTAssertEqual(verify.status, 0, verify.output)
            XCTAssertTrue(verify.output.contains("verified 1 units: all match"), verify.output)
            XCTAssertEqual(try grid(path, today: today)["BTCUSDT/1H/FUNDING"], ["not_published", "monthly", "not_published"])

            try await archives.control(["reset": true])
            let second = try importer(["run", path, "--log-format", "json"], today: today)
            XCTAssertEqual(second.status, 0, second.output)
            XCTAssertEqual(nightlySummary(second.output)["skipped"] as? Int, 1, second.output)
            let requests = [try await zipRequests(), try await checksumRequests()]
            XCTAssertEqual(requests, [0, 0], "\(targetName): a second nightly downloads nothing")
        }
        // The real Python client reads the bucket the importer wrote.
        let py = try run("/usr/bin/env", ["python3", "-c", """
            import sys, pymarketstore as pymkts
            f = pymkts.Client(sys.argv[1]).query(pymkts.Params('BTCUSDT', '1H', 'FUNDING')).first().df()
            print(list(f.columns), len(f), repr(float(f['Rate'].iloc[0])), int(f['IntervalHours'].iloc[0]), str(f.index[0]))
            """, marketstore.url])
        XCTAssertEqual(py.status, 0, py.output)
        XCTAssertEqual(py.output.trimmingCharacters(in: .whitespacesAndNewlines), "['Rate', 'IntervalHours'] 90 \(rates[0]) 8 \(try pandasTime(epochs[0]))")
    }

    /// "2026-04-01 00:00:00+00:00", as pandas prints a UTC index.
    func pandasTime(_ epoch: Int64) throws -> String {
        let iso = UTCCalendar.iso8601(epoch)  // 2026-04-01T00:00:00Z
        return iso.replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: "+00:00")
    }

    /// An end-labelled day after a day with no archive: its 00:00 row is the only copy of that
    /// day's last period, so it is kept, and the missing day's gap stops before it (issue 32:
    /// the row was dropped as "the neighbour's" and the day reported wholly missing).
    func testAnEndLabelledDayAfterAMissingDayKeepsItsFirstRow() async throws {
        let folder = "data/futures/um/daily/metrics/BTCUSDT"
        func start(_ day: String) -> Int64 { ArchivePeriod(day: day)!.start }
        for day in ["2026-06-20", "2026-06-22"] {
            try publish(folder, "BTCUSDT-metrics-\(day).zip", csv: metricsDay(day, labels: Array(stride(from: start(day), through: start(day) + 86400, by: 300))))
        }
        let path = try futuresJob("metrics-hole", dataset: "metrics", symbols: ["BTCUSDT"], from: "2026-06", to: "2026-06")
        for today in ["2026-11-29", "2026-11-30"] {  // the second run imports nothing and must say the same
            let run = try importer(["run", path, "--log-format", "json"], today: today)
            XCTAssertEqual(run.status, 0, run.output)
            XCTAssertEqual((nightlySummary(run.output)["gaps"] as? [String: [String]])?["BTCUSDT/5Min/METRICS"],
                           ["2026-06-21T00:00:00Z..2026-06-21T23:50:00Z unexplained"], run.output)
        }
        let rows = try await TargetReader(target: .marketstore(url: marketstore.url)).read(key: "BTCUSDT/5Min/METRICS", from: nil, to: nil)
        let want = [start("2026-06-20") - 300] + Array(stride(from: start("2026-06-20"), to: start("2026-06-21"), by: 300))
            + Array(stride(from: start("2026-06-22") - 300, to: start("2026-06-23"), by: 300))
        XCTAssertEqual(rows.first?.columns[0], .int64(want))
        XCTAssertEqual(rows.first?.columns[2], .float64(want.map { Double("\($0 + 300).5")! }), "each period from the row labelled its end")
        XCTAssertEqual(try importer(["verify", path], today: "2026-11-30").status, 0)
    }

    /// A month with no funding archive between two that have one is a gap, and the summary's
    /// days_in_no_archive says which days (issue 32: the gap was there, the days list empty).
    func testAFundingMonthWithNoArchiveIsListedAsDaysInNoArchive() throws {
        let folder = "data/futures/um/monthly/fundingRate/XYZUSDT"
        for month in ["2026-01", "2026-03"] {
            let start = ArchivePeriod(year: 2026, month: Int(month.suffix(2))!)!
            var csv = "calc_time,funding_interval_hours,last_funding_rate\n"
            for t in stride(from: start.start, to: start.end, by: 8 * 3600) { csv += "\(t * 1000 + 3),8,0.0001\n" }
            try publish(folder, "XYZUSDT-fundingRate-\(month).zip", csv: csv)
        }
        let path = try futuresJob("funding-hole", dataset: "fundingRate", symbols: ["XYZUSDT"], from: "2026-01", to: "2026-03")
        let run = try importer(["run", path, "--log-format", "json"], today: "2026-11-29")
        XCTAssertEqual(run.status, 0, run.output)
        let summary = nightlySummary(run.output)
        XCTAssertEqual((summary["days_in_no_archive"] as? [String: String])?["XYZUSDT/1H/FUNDING"], "2026-02-01..2026-02-28", run.output)
        XCTAssertEqual((summary["gaps"] as? [String: [String]])?["XYZUSDT/1H/FUNDING"], ["2026-02-01T00:00:00Z..2026-02-28T23:00:00Z unexplained"], run.output)
    }

    /// A metrics day published late in a month more than two months back: the run does not list
    /// that year again before the deep check, and the dry run must say the same (issue 32: it
    /// promised "1 to import" and the run skipped it), with the deep check's date; at the deep
    /// check both find it.
    func testTheDryRunPlansWhatTheRunDoesForALateDayInAnOldMonth() async throws {
        let folder = "data/futures/um/daily/metrics/BTCUSDT"
        func start(_ day: String) -> Int64 { ArchivePeriod(day: day)!.start }
        for day in ["2026-06-25", "2026-06-27"] {
            try publish(folder, "BTCUSDT-metrics-\(day).zip", csv: metricsDay(day, labels: Array(stride(from: start(day), to: start(day) + 86400, by: 300))))
        }
        let path = try futuresJob("metrics-late", dataset: "metrics", symbols: ["BTCUSDT"], from: "2026-06", to: "2026-06", extra: "recheck_days: 7")
        XCTAssertEqual(try importer(["run", path], today: "2026-11-29").status, 0)
        try publish(folder, "BTCUSDT-metrics-2026-06-26.zip", csv: metricsDay("2026-06-26", labels: Array(stride(from: start("2026-06-26"), to: start("2026-06-27"), by: 300))))
        let dry = try importer(["run", path, "--dry-run"], today: "2026-11-30")
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains("2 already done; 0 to import"), dry.output)
        XCTAssertTrue(dry.output.contains("deep check: next on 2026-12-06 (recheck_days: 7)"), dry.output)
        let run = try importer(["run", path, "--log-format", "json"], today: "2026-11-30")
        XCTAssertEqual(nightlySummary(run.output)["done"] as? Int, 0, run.output)
        let status = try importer(["status", path], today: "2026-11-30")
        XCTAssertTrue(status.output.contains("note: deep check: next on 2026-12-06 (recheck_days: 7)"), status.output)
        let dueDry = try importer(["run", path, "--dry-run"], today: "2026-12-06")
        XCTAssertTrue(dueDry.output.contains("1 to import"), dueDry.output)
        XCTAssertTrue(dueDry.output.contains("deep check: due (every 7 days)"), dueDry.output)
        let due = try importer(["run", path, "--log-format", "json"], today: "2026-12-06")
        XCTAssertEqual(nightlySummary(due.output)["done"] as? Int, 1, due.output)
    }

    func testMetricsAcrossTheLabelChangeLandOncePerFiveMinutesWithTheirGapsOnBothTargets() async throws {
        let folder = "data/futures/um/daily/metrics/BTCUSDT"
        func start(_ day: String) -> Int64 { ArchivePeriod(day: day)!.start }
        // Before 2026-06-25 a file labels the end of each 5 minutes: 00:05 .. 00:00 of the next
        // day, and it carries its own 00:00 too (the day before's last period), so consecutive
        // files share a label (binance-public-data #491).
        for day in ["2026-06-23", "2026-06-24"] {
            try publish(folder, "BTCUSDT-metrics-\(day).zip", csv: metricsDay(day, labels: Array(stride(from: start(day), through: start(day) + 86400, by: 300))))
        }
        for day in ["2026-06-25", "2026-06-26", "2026-06-29"] {
            try publish(folder, "BTCUSDT-metrics-\(day).zip", csv: metricsDay(day, labels: Array(stride(from: start(day), to: start(day) + 86400, by: 300))))
        }
        // A truncated day (its second half is missing), and 2026-06-28 not published at all.
        try publish(folder, "BTCUSDT-metrics-2026-06-27.zip", csv: metricsDay("2026-06-27", labels: Array(stride(from: start("2026-06-27"), to: start("2026-06-27") + 43200, by: 300))))
        // The slots every file should land in, and the label (of its own file) each comes from.
        // 2026-06-23's 00:00 row is 2026-06-22's last period, which has no archive: kept.
        var expected: [(epoch: Int64, label: Int64)] = [(start("2026-06-23") - 300, start("2026-06-23"))]
        for day in ["2026-06-23", "2026-06-24", "2026-06-25", "2026-06-26", "2026-06-27", "2026-06-29"] {
            let end = day == "2026-06-27" ? start(day) + 43200 : start(day) + 86400
            for slot in stride(from: start(day), to: end, by: 300) { expected.append((slot, start(day) < start("2026-06-25") ? slot + 300 : slot)) }
        }
        let today = "2026-11-29"
        for (t, targetName) in ["server", "directory"].enumerated() {
            let target: ImportTarget = t == 0 ? .marketstore(url: marketstore.url) : .directory(path: work.appendingPathComponent("mktsdb").path)
            let path = try futuresJob("metrics-\(targetName)", dataset: "metrics", symbols: ["BTCUSDT"], from: "2026-06", to: "2026-06", target: target)
            let first = try importer(["run", path, "--log-format", "json"], today: today)
            XCTAssertEqual(first.status, 0, "\(targetName): \(first.output)")
            let summary = nightlySummary(first.output)
            XCTAssertEqual(summary["done"] as? Int, 6, first.output)
            XCTAssertEqual(summary["rows"] as? Int, expected.count, first.output)
            XCTAssertEqual(summary["adjusted"] as? [String: Int], ["shifted_to_period_start": 2 * 289, "outside_period_dropped": 1,
                                                                  "neighbour_row_kept": 1], first.output)
            XCTAssertEqual((summary["days_in_no_archive"] as? [String: String])?["BTCUSDT/5Min/METRICS"], "2026-06-28", first.output)
            XCTAssertEqual((summary["not_published_ranges"] as? [String: String])?["BTCUSDT/5Min/METRICS"],
                           "2026-06-01..2026-06-22 (before its first archive); 2026-06-30 (after its last archive)", first.output)
            XCTAssertEqual((summary["gaps"] as? [String: [String]])?["BTCUSDT/5Min/METRICS"], [
                "2026-06-27T12:00:00Z..2026-06-27T23:55:00Z unexplained", "2026-06-28T00:00:00Z..2026-06-28T23:55:00Z unexplained",
            ], first.output)

            let read = try await TargetReader(target: target).read(key: "BTCUSDT/5Min/METRICS", from: nil, to: nil)
            let result = try XCTUnwrap(read.first, targetName)
            XCTAssertEqual(result.names, ["Epoch", "SumOpenInterest", "SumOpenInterestValue", "CountTopTraderLongShortRatio",
                                          "SumTopTraderLongShortRatio", "CountLongShortRatio", "SumTakerLongShortVolRatio"])
            XCTAssertEqual(result.columns[0], .int64(expected.map(\.epoch)), "\(targetName): one row per 5 minutes, no duplicate, no hole at the change")
            XCTAssertEqual(result.columns[2], .float64(expected.map { Double("\($0.label).5")! }), "\(targetName): each slot from its own row")
            XCTAssertEqual(result.columns[1], .float64(expected.map { Double("\(97_000 + $0.label % 86400 / 300).123456789")! }), targetName)
            XCTAssertEqual(result.columns[3], .float64(expected.map { Double("0.1\($0.label % 7)")! }), targetName)
            guard case let .float64(empty) = result.columns[5] else { return XCTFail("CountLongShortRatio is not float64") }
            XCTAssertTrue(empty.allSatisfy(\.isNaN), "\(targetName): an empty ratio is NaN")

            let verify = try importer(["verify", path], today: today)
            XCTAssertEqual(verify.status, 0, verify.output)
            XCTAssertTrue(verify.output.contains("verified 6 units: all match"), verify.output)
            let status = try importer(["status", path, "--json"], today: today)
            XCTAssertEqual(status.status, 0, status.output)
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any])
            XCTAssertEqual((object["counts"] as? [String: Int])?["done"], 6)
            XCTAssertEqual(((object["gaps"] as? [String: [[String: Any]]])?["BTCUSDT/5Min/METRICS"])?.map { $0["first"] as? String },
                           ["2026-06-27T12:00:00Z", "2026-06-28T00:00:00Z"])
            XCTAssertEqual((object["grid"] as? [String: [String]])?["BTCUSDT/5Min/METRICS"], ["daily"])
        }

        // The next night: nothing is downloaded and the old year is not listed again; a week on,
        // the deep check finds 2026-06-28 published late (#287) and lands it, and its gap closes.
        let path = work.appendingPathComponent("metrics-server.yml").path
        try await archives.control(["reset": true])
        let quiet = try importer(["run", path, "--log-format", "json"], today: "2026-11-30")
        XCTAssertEqual(quiet.status, 0, quiet.output)
        let requests = [try await zipRequests(), try await checksumRequests()]
        XCTAssertEqual(requests, [0, 0], quiet.output)
        let listed = try await archives.stats()["listings"] as? [String] ?? []
        XCTAssertFalse(listed.contains { $0.hasSuffix("BTCUSDT-metrics-2026-") }, "\(listed)")
        try publish(folder, "BTCUSDT-metrics-2026-06-28.zip", csv: metricsDay("2026-06-28", labels: Array(stride(from: start("2026-06-28"), to: start("2026-06-29"), by: 300))))
        let deep = try importer(["run", path, "--log-format", "json"], today: "2026-12-07")
        XCTAssertEqual(deep.status, 0, deep.output)
        XCTAssertEqual(nightlySummary(deep.output)["done"] as? Int, 1, deep.output)
        XCTAssertEqual((nightlySummary(deep.output)["gaps"] as? [String: [String]])?["BTCUSDT/5Min/METRICS"],
                       ["2026-06-27T12:00:00Z..2026-06-27T23:55:00Z unexplained"], deep.output)
        let rows = try await TargetReader(target: .marketstore(url: marketstore.url)).read(key: "BTCUSDT/5Min/METRICS", from: start("2026-06-28"), to: start("2026-06-29") - 1)
        XCTAssertEqual(rows.first?.count, 288)
        XCTAssertEqual(try importer(["verify", path], today: "2026-12-07").status, 0)

        // 2026-06-29 is re-published with other values: status --check-remote finds it stale, and
        // the next run (no deep check due) re-imports it through its changed CHECKSUM.
        let day29 = "BTCUSDT-metrics-2026-06-29.zip"
        try publish(folder, day29, csv: metricsDay("2026-06-29", labels: Array(stride(from: start("2026-06-29"), to: start("2026-06-30"), by: 300)))
                                            .replacingOccurrences(of: ",0.9999\n", with: ",0.5\n"))
        let check = try importer(["status", path, "--check-remote"], today: "2026-12-08")
        XCTAssertTrue(check.output.contains("stale (re-published; the next run re-imports it): \(folder)/\(day29)"), check.output)
        let rerun = try importer(["run", path, "--log-format", "json"], today: "2026-12-08")
        XCTAssertEqual(rerun.status, 0, rerun.output)
        XCTAssertEqual(nightlySummary(rerun.output)["done"] as? Int, 1, rerun.output)
        let replaced = try await TargetReader(target: .marketstore(url: marketstore.url)).read(key: "BTCUSDT/5Min/METRICS", from: start("2026-06-29"), to: start("2026-06-30") - 1)
        XCTAssertEqual(replaced.first?.columns[6], .float64(Array(repeating: 0.5, count: 288)), "the re-published values")
        XCTAssertEqual(try importer(["verify", path], today: "2026-12-08").status, 0)
    }

    func testAFailedMetricsDayFailsTheRunNamesTheFileAndTheRerunFinishesIt() async throws {
        let folder = "data/futures/cm/daily/metrics/BTCUSD_PERP"
        func start(_ day: String) -> Int64 { ArchivePeriod(day: day)!.start }
        func csv(_ day: String) -> String {
            metricsDay(day, labels: Array(stride(from: start(day), to: start(day) + 86400, by: 300))).replacingOccurrences(of: ",BTCUSDT,", with: ",BTCUSD_PERP,")
        }
        try publish(folder, "BTCUSD_PERP-metrics-2026-06-23.zip", csv: csv("2026-06-23").replacingOccurrences(of: "sum_open_interest,", with: "open_interest,"))
        try publish(folder, "BTCUSD_PERP-metrics-2026-06-24.zip", csv: csv("2026-06-24"))
        try publish(folder, "BTCUSD_PERP-metrics-2026-06-25.zip", csv: csv("2026-06-25"), checksum: String(repeating: "0", count: 64))
        let path = try futuresJob("metrics-cm", dataset: "metrics", symbols: ["BTCUSD_PERP"], from: "2026-06", to: "2026-06", market: "futures/cm")
        let first = try importer(["run", path], today: "2026-06-26")
        XCTAssertEqual(first.status, 1, first.output)
        XCTAssertTrue(first.output.contains("BTCUSD_PERP-metrics-2026-06-25.zip") && first.output.contains("SHA-256 mismatch"), first.output)
        XCTAssertTrue(first.output.contains("BTCUSD_PERP-metrics-2026-06-23.zip: the header is \"create_time,symbol,open_interest,"), first.output)
        XCTAssertEqual(tableValue(first.output, "done"), "1", first.output)
        for day in ["2026-06-23", "2026-06-25"] { try publish(folder, "BTCUSD_PERP-metrics-\(day).zip", csv: csv(day)) }
        let second = try importer(["run", path], today: "2026-06-26")
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertEqual(tableValue(second.output, "done"), "2", second.output)
        XCTAssertEqual(tableValue(second.output, "skipped (already done)"), "1", second.output)
        // COIN-M labels the start of each period all along: nothing is shifted.
        let read = try await TargetReader(target: .marketstore(url: marketstore.url)).read(key: "BTCUSD_PERP/5Min/METRICS", from: nil, to: nil)
        let rows = try XCTUnwrap(read.first)
        XCTAssertEqual(rows.columns[0], .int64(Array(stride(from: start("2026-06-23"), to: start("2026-06-26"), by: 300))))
        XCTAssertEqual(rows.columns[2], .float64(Array(stride(from: start("2026-06-23"), to: start("2026-06-26"), by: 300)).map { Double("\($0).5")! }))
        XCTAssertEqual(try importer(["verify", path], today: "2026-06-26").status, 0)
        // discover: lists the dataset's own folder (data/futures/cm/daily/metrics/).
        let discover = try variant(of: path, "metrics-cm-discover", replacing: "symbols: [BTCUSD_PERP]", with: "discover: {quote: _PERP}")
        let dry = try importer(["run", discover, "--dry-run"], today: "2026-06-26")
        XCTAssertEqual(dry.status, 0, dry.output)
        XCTAssertTrue(dry.output.contains("plan for metrics-cm (metrics): 3 units; 3 already done; 0 to import"), dry.output)
        XCTAssertTrue(dry.output.contains("not published: BTCUSD_PERP/5Min/METRICS: 2026-06-01..2026-06-22 (before its first archive)"), dry.output)

        // validation: strict fails a day with anomalies (here its empty ratios) and writes none of it.
        let strict = try futuresJob("metrics-cm-strict", dataset: "metrics", symbols: ["BTCUSD_PERP"], from: "2026-06", to: "2026-06", market: "futures/cm",
                                    target: .directory(path: work.appendingPathComponent("strict-db").path), extra: "validation: strict")
        let refused = try importer(["run", strict], today: "2026-06-26")
        XCTAssertEqual(refused.status, 1, refused.output)
        XCTAssertTrue(refused.output.contains("validation: strict, and the archive has 0 duplicate(s), 0 missing slot(s), 288 empty value(s)"), refused.output)
        XCTAssertEqual(tableValue(refused.output, "rows written"), "0", refused.output)
    }

    func testFuturesJobFilesSayWhatTheDatasetFixes() throws {
        let cases: [(String, String, String)] = [
            ("intervals: [1h]", "dataset: fundingRate", "key 'intervals': fundingRate archives have no intervals"),
            ("columns: [Open]", "dataset: metrics", "key 'columns': metrics archives have no columns"),
            ("gaps: rest", "dataset: metrics", "key 'gaps': gaps: rest asks REST klines"),
            ("", "dataset: metrics\nmarket: spot", "key 'dataset': metrics archives exist for futures/um and futures/cm only, not spot"),
            ("", "dataset: metrics\nto: now", "key 'to': metrics come from their daily archives only"),
        ]
        for (extra, dataset, message) in cases {
            var yaml = try String(contentsOfFile: try futuresJob("bad", dataset: "x", symbols: ["BTCUSDT"], from: "2026-01", to: "2026-02", extra: extra), encoding: .utf8)
            yaml = yaml.replacingOccurrences(of: "dataset: x", with: dataset)
            if dataset.contains("market:") { yaml = yaml.replacingOccurrences(of: "market: futures/um\n", with: "") }
            if dataset.contains("to:") { yaml = yaml.replacingOccurrences(of: "to: 2026-02\n", with: "") }
            let path = work.appendingPathComponent("bad.yml").path
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            let r = try importer(["run", path], today: "2026-03-01")
            XCTAssertEqual(r.status, 2, "\(dataset) \(extra): \(r.output)")
            XCTAssertTrue(r.output.contains(message), "\(dataset) \(extra): \(r.output)")
        }
        let metrics = try futuresJob("m", dataset: "metrics", symbols: ["BTCUSDT"], from: "2026-01", to: "2026-02")
        let now = try importer(["run", metrics, "--to", "now"], today: "2026-03-01")
        XCTAssertEqual(now.status, 2, now.output)
        XCTAssertTrue(now.output.contains("key '--to': metrics come from their daily archives only"), now.output)
        let gaps = try importer(["run", metrics, "--confirm-gaps"], today: "2026-03-01")
        XCTAssertEqual(gaps.status, 2, gaps.output)
        XCTAssertTrue(gaps.output.contains("--confirm-gaps"), gaps.output)
        // The README's example and the job files of the repo are valid jobs of these datasets.
        let readme = try String(contentsOf: ServerProcess.repoRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try XCTUnwrap(readme.range(of: "### Funding rates and futures metrics"))
        let start = try XCTUnwrap(readme.range(of: "```yaml\n", range: section.upperBound..<readme.endIndex))
        let end = try XCTUnwrap(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        XCTAssertEqual(try JobSpec.parse(yaml: String(readme[start.upperBound..<end.lowerBound]), file: "README.md").dataset.name, "fundingRate")
        for (file, dataset) in [("jobs/usdm-funding.yml", "fundingRate"), ("jobs/usdm-metrics.yml", "metrics")] {
            let spec = try JobSpec.load(path: ServerProcess.repoRoot.appendingPathComponent(file).path)
            XCTAssertEqual(spec.dataset.name, dataset, file)
            XCTAssertEqual(try spec.keys(symbol: "BTCUSDT"), [dataset == "metrics" ? "BTCUSDT/5Min/METRICS" : "BTCUSDT/1H/FUNDING"], file)
        }
        let follow = try importer(["follow", metrics], today: "2026-03-01")
        XCTAssertNotEqual(follow.status, 0, follow.output)
        XCTAssertTrue(follow.output.contains("follow reads the kline streams; metrics is imported with run or nightly"), follow.output)
    }

    /// `to: now` for funding: the months after the last archive from REST's funding history up to
    /// the server's clock, the intervals derived across a change from 8 h to 4 h; an hour later
    /// only the month under way is asked again; the monthly archive published later supersedes
    /// its REST month with the same values, and verify passes throughout.
    func testFundingToNowFillsFromRESTAndTheMonthlyArchiveSupersedesIt() async throws {
        let rest = try startREST()
        defer { rest.stop() }
        try publishRealFundingArchive()
        let change = ArchivePeriod(day: "2026-06-05")!.start
        try await rest.control(["funding_intervals": [[0, 8], [change * 1000, 4]]])
        let path = try futuresJob("funding-now", dataset: "fundingRate", symbols: ["BTCUSDT"], from: "2026-04", to: "now", rest: rest)
        let first = try await runAt("2026-06-10T05:30:00Z", ["run", path, "--log-format", "json"], rest: rest)
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertEqual(nightlySummary(first.output)["done"] as? Int, 3, first.output)

        // What the fixture's funding history holds from May on, asked of it directly.
        let may = ArchivePeriod(year: 2026, month: 5)!
        let asked = try run("/usr/bin/env", ["python3", "-c", "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())",
                                             "\(rest.base)/fapi/v1/fundingRate?symbol=BTCUSDT&startTime=\(may.start * 1000)&endTime=\(ArchivePeriod(day: "2026-06-10")!.start * 1000 + 5 * 3_600_000)&limit=1000"])
        XCTAssertEqual(asked.status, 0, asked.output)
        let history = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(asked.output.utf8)) as? [[String: Any]])
        let times = history.map { ($0["fundingTime"] as! NSNumber).int64Value / 1000 / 3600 * 3600 }
        XCTAssertEqual(times.last, ArchivePeriod(day: "2026-06-10")!.start + 4 * 3600, "the last funding before 05:30 is 04:00 (every 4 h from 5 June)")
        let served = try await TargetReader(target: .marketstore(url: marketstore.url)).read(key: "BTCUSDT/1H/FUNDING", from: may.start, to: nil)
        let rows = try XCTUnwrap(served.first)
        XCTAssertEqual(rows.columns[0], .int64(times))
        XCTAssertEqual(rows.columns[1], .float64(history.map { Double($0["fundingRate"] as! String)! }), "every rate exact")
        XCTAssertEqual(rows.columns[2], .int64(times.map { $0 <= change ? 8 : 4 }), "the hours since the funding before")
        let m = try manifest("funding-now")
        let mayID = "rest/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-05.zip", juneID = mayID.replacingOccurrences(of: "2026-05", with: "2026-06")
        XCTAssertEqual(m.units[mayID]?.status, .done)
        XCTAssertEqual(m.units[juneID]?.rows, times.filter { $0 >= ArchivePeriod(year: 2026, month: 6)!.start }.count)
        XCTAssertEqual(try grid(path, today: "2026-06-10")["BTCUSDT/1H/FUNDING"], ["monthly", "rest", "rest"])
        XCTAssertEqual(try importer(["verify", path], today: "2026-06-10").status, 0)

        // An hour later: May is covered to its end; June is asked again and gains 08:00.
        try await rest.control(["reset": true])
        let later = try await runAt("2026-06-10T09:30:00Z", ["run", path, "--log-format", "json"], rest: rest)
        XCTAssertEqual(later.status, 0, later.output)
        let byPath = try await rest.stats()["by_path"] as? [String: Int]
        XCTAssertEqual(byPath?["/fapi/v1/fundingRate"], 1, later.output)
        XCTAssertEqual(try manifest("funding-now").units[juneID]?.rows, (m.units[juneID]?.rows ?? 0) + 1)

        // The May archive is published with the values REST gave: it supersedes the REST month,
        // and stores the very rows REST did (the interval column read the same way).
        let fromREST = try await TargetReader(target: .marketstore(url: marketstore.url)).read(key: "BTCUSDT/1H/FUNDING", from: may.start, to: may.end - 1)
        var csv = "calc_time,funding_interval_hours,last_funding_rate\n"
        let mayFundings = history.filter { ($0["fundingTime"] as! NSNumber).int64Value < may.end * 1000 }
        for f in mayFundings { csv += "\((f["fundingTime"] as! NSNumber).int64Value),8,\(f["fundingRate"] as! String)\n" }
        try publish("data/futures/um/monthly/fundingRate/BTCUSDT", "BTCUSDT-fundingRate-2026-05.zip", csv: csv)
        let published = try await runAt("2026-06-10T10:00:00Z", ["run", path, "--log-format", "json"], rest: rest)
        XCTAssertEqual(published.status, 0, published.output)
        XCTAssertEqual(nightlySummary(published.output)["superseded"] as? Int, 1, published.output)
        XCTAssertEqual(try manifest("funding-now").units[mayID]?.status, .superseded)
        let again = try await TargetReader(target: .marketstore(url: marketstore.url)).read(key: "BTCUSDT/1H/FUNDING", from: may.start, to: may.end - 1)
        XCTAssertEqual(again.first?.columns[1], .float64(mayFundings.map { Double($0["fundingRate"] as! String)! }))
        XCTAssertEqual(again.first?.columns, fromREST.first?.columns, "the archive's rows are REST's")
        XCTAssertEqual(try grid(path, today: "2026-06-10")["BTCUSDT/1H/FUNDING"], ["monthly", "monthly", "rest"])
        XCTAssertEqual(try importer(["verify", path], today: "2026-06-10").status, 0)
    }
}
