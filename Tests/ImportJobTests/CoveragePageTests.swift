import BinanceSource
import Foundation
import KlineArchive
import Logging
import PipelineFakes
import TestSupport
import XCTest

@testable import ImportPipeline
@testable import JobModel
@testable import JobState

/// `status --html` in a real browser: headless Chromium (Debian's `chromium`) driven by
/// Playwright for Python (Tests/helpers/page_check.py). The page must render without a console
/// error, show a known gap's cell in the gap's colour with its tooltip, and draw a 2,000-key,
/// 7-year job in under 2 s.
final class CoveragePageTests: TemporaryDirectoryTestCase {
    static let chromium = "/usr/bin/chromium"

    func checkPage(_ page: String, _ arguments: [String] = []) throws -> [String: Any] {
        guard FileManager.default.isExecutableFile(atPath: Self.chromium) else {
            throw XCTSkip("no \(Self.chromium): apt-get install chromium (scripts/ensure-deps test does)")
        }
        guard try runCommand("/usr/bin/env", ["python3", "-c", "import playwright"]).status == 0 else {
            throw XCTSkip("Playwright for Python is not installed: pip install -r Tests/helpers/requirements.txt")
        }
        let script = ServerProcess.repoRoot.appendingPathComponent("Tests/helpers/page_check.py").path
        let r = try runCommand("/usr/bin/env", ["python3", script, page, "--chromium", Self.chromium] + arguments)
        XCTAssertEqual(r.status, 0, r.output)
        let line = r.output.split(separator: "\n").last.map(String.init) ?? ""
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], r.output)
    }

    /// A day without an archive in February: `status --html` colours February's cell as an
    /// unexplained gap, with the gap in its tooltip, and the page has no console error.
    func testAKnownGapHasItsColourAndTooltipInTheBrowser() async throws {
        let feb = ArchivePeriod(year: 2024, month: 2)!
        for day in PeriodPlanner.days(of: feb).map(\.start) where day != ArchivePeriod(day: "2024-02-10")!.start {
            let name = "SYNUSDT-1h-\(UTCCalendar.iso8601(day).prefix(10)).zip"
            let folder = dir.appendingPathComponent("mirror/data/spot/daily/klines/SYNUSDT/1h")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let zip = ZipBuilder.single(String(name.dropLast(4)) + ".csv", InProcessSupersedingTests.klines(day: day))
            try Data(zip).write(to: folder.appendingPathComponent(name))
            try "\(sha256Hex(zip))  \(name)\n".write(to: folder.appendingPathComponent(name + ".CHECKSUM"), atomically: true, encoding: .utf8)
        }
        let job = dir.appendingPathComponent("page.yml").path
        try """
            name: page
            source: {base_url: \(dir.appendingPathComponent("mirror").path), cache_dir: \(dir.appendingPathComponent("cache").path)}
            market: spot
            symbols: [SYNUSDT]
            intervals: [1h]
            from: 2024-01
            to: 2024-02
            target: {directory: \(dir.appendingPathComponent("db").path)}
            manifest: \(dir.appendingPathComponent("state/page.manifest.db").path)
            """.write(toFile: job, atomically: true, encoding: .utf8)
        var options = RunOptions(today: ArchivePeriod(day: "2024-03-05")!)
        options.sink = MemoryTarget()
        let summary = try await ImportRunner(spec: try JobSpec.load(path: job), logger: Logger(label: "test")).run(options)
        XCTAssertEqual(summary.done, 28, "\(summary.failures)")

        let page = dir.appendingPathComponent("page.html").path
        let status = try runCommand(ImportJobTests.binary, ["status", job, "--offline", "--html", page], environment: ["BINANCE_IMPORT_TODAY": "2024-03-05"])
        XCTAssertEqual(status.status, 0, status.output)
        let html = try String(contentsOfFile: page, encoding: .utf8)
        XCTAssertFalse(html.contains("src=") || html.contains("href=") || html.contains("@import"), "self-contained: nothing loaded from elsewhere")
        let screenshot = dir.appendingPathComponent("page.png").path
        let result = try checkPage(page, ["--key", "SYNUSDT/1H/OHLCV", "--month", "2024-02", "--screenshot", screenshot])
        XCTAssertEqual(result["console_errors"] as? [String], [])
        let cell = try XCTUnwrap(result["cell"] as? [String: Any])
        XCTAssertEqual(cell["state"] as? String, "gap_unexplained")
        XCTAssertEqual(cell["color"] as? String, "rgb(255, 152, 0)", "the unexplained gap's orange")
        let tooltip = try XCTUnwrap(cell["tooltip"] as? String)
        XCTAssertTrue(tooltip.contains("SYNUSDT/1H/OHLCV 2024-02: done; a gap no source explains"), tooltip)
        XCTAssertTrue(tooltip.contains("gap: 2024-02-10T00:00:00Z..2024-02-10T23:00:00Z unexplained"), tooltip)
        XCTAssertTrue(tooltip.contains("SYNUSDT-1h-2024-02-01.zip: done, 24 rows"), tooltip)
        XCTAssertTrue(FileManager.default.fileExists(atPath: screenshot))
    }

    /// 2,000 keys x 84 months (7 years): the page draws its first rows in under 2 s, with only
    /// the rows in view in the document (virtual scrolling), and a key far down is reachable.
    func testTwoThousandKeysOverSevenYearsDrawInUnderTwoSeconds() throws {
        var manifest = Manifest(job: "wide")
        let months = (0..<84).map { PeriodPlanner.months(back: 83 - $0, from: ArchivePeriod(year: 2024, month: 12)!) }
        let keys = (0..<2000).map { "S\(String(format: "%04d", $0))USDT/1Min/OHLCV" }
        // Keys listed at different months (not published before), the last month from daily
        // archives, some failed months and some months with a gap.
        manifest.gaps = []
        for (k, key) in keys.enumerated() {
            let symbol = String(key.prefix { $0 != "/" })
            for (m, month) in months.enumerated() {
                let daily = m == months.count - 1
                let id = daily ? "data/spot/daily/klines/\(symbol)/1m/\(symbol)-1m-\(month)-01.zip" : "data/spot/monthly/klines/\(symbol)/1m/\(symbol)-1m-\(month).zip"
                let status: UnitRecord.Status = m < (k * 7) % 30 ? .notPublished : (k + m) % 97 == 0 ? .failed : .done
                var record = UnitRecord(id: id, status: status, key: key, remotePath: id)
                if status == .done { (record.rows, record.firstEpoch, record.lastEpoch) = (44_640, month.start, month.end - 60) }
                manifest.units[id] = record
                if status == .done, (k * 7 + m) % 53 == 0 {
                    manifest.gaps?.append(GapRecord(key: key, first: month.start + 3600, last: month.start + 7140, state: k % 2 == 0 ? .unexplained : .exchangeGap, unit: id))
                }
            }
        }
        let grid = CoverageGrid(manifest: manifest, months: months, keys: keys)
        let page = dir.appendingPathComponent("wide.html").path
        try Data(CoveragePage(job: "wide", manifest: manifest, grid: grid, generated: "2024-12-31T00:00:00Z").html.utf8).write(to: URL(fileURLWithPath: page))
        // COVERAGE_SCREENSHOT=docs/coverage.png regenerates the README's picture.
        var arguments = ["--key", keys[1999], "--month", "2019-09"]
        if let screenshot = ProcessInfo.processInfo.environment["COVERAGE_SCREENSHOT"] { arguments += ["--screenshot", screenshot] }
        let result = try checkPage(page, arguments)
        XCTAssertEqual(result["console_errors"] as? [String], [])
        let seconds = try XCTUnwrap(result["seconds_to_first_rows"] as? Double)
        print("coverage page of 2,000 keys x 84 months: first rows after \(seconds) s")
        XCTAssertLessThan(seconds, 2, "first rows drawn after \(seconds) s")
        XCTAssertLessThan(try XCTUnwrap(result["rows_in_document"] as? Int), 200, "only the rows in view are drawn")
        XCTAssertEqual((result["cell"] as? [String: Any])?["state"] as? String, "monthly", "key 1999 is listed from its 14th month (2019-02)")
    }

    /// Text from the state (an error message) cannot end the page's data early: `</` is escaped
    /// inside the embedded JSON, so the page keeps its two script elements whatever a unit says.
    func testStateTextCannotBreakOutOfThePageData() throws {
        var manifest = Manifest(job: "x")
        let id = "data/spot/monthly/klines/AUSDT/1m/AUSDT-1m-2024-01.zip"
        var record = UnitRecord(id: id, status: .failed, key: "AUSDT/1Min/OHLCV", remotePath: id)
        record.error = "write: </script><script>alert(1)</script>"
        manifest.units[id] = record
        let months = [ArchivePeriod(year: 2024, month: 1)!]
        let html = CoveragePage(job: "x", manifest: manifest, grid: CoverageGrid(manifest: manifest, months: months, keys: ["AUSDT/1Min/OHLCV"]),
                                generated: "now").html
        XCTAssertEqual(html.components(separatedBy: "</script>").count - 1, 2, "only the page's own two scripts end")
        XCTAssertTrue(html.contains(#"<\/script><script>alert(1)<\/script>"#))
    }
}
