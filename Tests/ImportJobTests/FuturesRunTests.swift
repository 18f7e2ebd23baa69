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
                    target: ImportTarget? = nil, extra: String = "") throws -> String {
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

    func testTheRealFundingArchiveLandsExactlyOnBothTargetsVerifiesAndIsNotDownloadedTwice() async throws {
        let shared = ServerProcess.shared.appendingPathComponent("binance/non-kline")
        let name = "BTCUSDT-fundingRate-2026-04.zip"
        guard FileManager.default.fileExists(atPath: shared.appendingPathComponent(name).path) else { throw missing("../shared/binance/non-kline is absent") }
        let folder = "data/futures/um/monthly/fundingRate/BTCUSDT"
        try FileManager.default.createDirectory(at: tree.appendingPathComponent(folder), withIntermediateDirectories: true)
        for file in [name, name + ".CHECKSUM"] {
            try FileManager.default.copyItem(at: shared.appendingPathComponent(file), to: tree.appendingPathComponent("\(folder)/\(file)"))
        }
        // The expected rows, read independently: Python's zipfile for the text, Swift's own
        // Double(String) for each rate, the hour floored by hand.
        let text = try run("/usr/bin/env", ["python3", "-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.read(z.namelist()[0]).decode(), end='')",
                                            shared.appendingPathComponent(name).path])
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
        var expected: [(epoch: Int64, label: Int64)] = []
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
            XCTAssertEqual(summary["adjusted"] as? [String: Int], ["shifted_to_period_start": 2 * 289, "outside_period_dropped": 2], first.output)
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
    }

    func testAFailedMetricsDayFailsTheRunNamesTheFileAndTheRerunFinishesIt() async throws {
        let folder = "data/futures/cm/daily/metrics/BTCUSD_PERP"
        func start(_ day: String) -> Int64 { ArchivePeriod(day: day)!.start }
        func csv(_ day: String) -> String {
            metricsDay(day, labels: Array(stride(from: start(day), to: start(day) + 86400, by: 300))).replacingOccurrences(of: ",BTCUSDT,", with: ",BTCUSD_PERP,")
        }
        try publish(folder, "BTCUSD_PERP-metrics-2026-06-24.zip", csv: csv("2026-06-24"))
        try publish(folder, "BTCUSD_PERP-metrics-2026-06-25.zip", csv: csv("2026-06-25"), checksum: String(repeating: "0", count: 64))
        let path = try futuresJob("metrics-cm", dataset: "metrics", symbols: ["BTCUSD_PERP"], from: "2026-06", to: "2026-06", market: "futures/cm")
        let first = try importer(["run", path], today: "2026-06-26")
        XCTAssertEqual(first.status, 1, first.output)
        XCTAssertTrue(first.output.contains("BTCUSD_PERP-metrics-2026-06-25.zip") && first.output.contains("SHA-256 mismatch"), first.output)
        try publish(folder, "BTCUSD_PERP-metrics-2026-06-25.zip", csv: csv("2026-06-25"))
        let second = try importer(["run", path], today: "2026-06-26")
        XCTAssertEqual(second.status, 0, second.output)
        XCTAssertEqual(tableValue(second.output, "done"), "1", second.output)
        XCTAssertEqual(tableValue(second.output, "skipped (already done)"), "1", second.output)
        // COIN-M labels the start of each period all along: nothing is shifted.
        let read = try await TargetReader(target: .marketstore(url: marketstore.url)).read(key: "BTCUSD_PERP/5Min/METRICS", from: nil, to: nil)
        let rows = try XCTUnwrap(read.first)
        XCTAssertEqual(rows.columns[0], .int64(Array(stride(from: start("2026-06-24"), to: start("2026-06-26"), by: 300))))
        XCTAssertEqual(rows.columns[2], .float64(Array(stride(from: start("2026-06-24"), to: start("2026-06-26"), by: 300)).map { Double("\($0).5")! }))
        XCTAssertEqual(try importer(["verify", path], today: "2026-06-26").status, 0)
    }

    func testFuturesJobFilesSayWhatTheDatasetFixes() throws {
        let cases: [(String, String, String)] = [
            ("intervals: [1h]", "dataset: fundingRate", "key 'intervals': fundingRate archives have no intervals"),
            ("columns: [Open]", "dataset: metrics", "key 'columns': metrics archives have no columns"),
            ("gaps: rest", "dataset: metrics", "key 'gaps': gaps: rest asks REST klines"),
            ("", "dataset: metrics\nmarket: spot", "key 'dataset': metrics exist for futures/um and futures/cm only, not spot"),
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
        let follow = try importer(["follow", metrics], today: "2026-03-01")
        XCTAssertNotEqual(follow.status, 0, follow.output)
        XCTAssertTrue(follow.output.contains("follow reads the kline streams; metrics is imported with run or nightly"), follow.output)
    }
}
