import BinanceSource
import Foundation
import KlineArchive
import Logging
import TestSupport
import XCTest

@testable import ImportPipeline
@testable import JobModel
@testable import JobState

/// `audit`: a monthly archive against its month's daily archives, row by row, and the target
/// against the state. Synthetic archives that disagree in one value, one missing row and one
/// extra row are reported as exactly those three; agreeing sources pass.
final class AuditTests: TemporaryDirectoryTestCase {
    let january = PeriodPlanner.days(of: ArchivePeriod(year: 2024, month: 1)!).map(\.start)

    func publish(_ symbol: String, _ period: String, _ rows: [String]) throws {
        let daily = period.count == 10
        let folder = dir.appendingPathComponent("mirror/data/spot/\(daily ? "daily" : "monthly")/klines/\(symbol)/1h")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let name = "\(symbol)-1h-\(period).zip"
        let zip = ZipBuilder.single(String(name.dropLast(4)) + ".csv", rows.joined(separator: "\n") + "\n")
        try Data(zip).write(to: folder.appendingPathComponent(name))
        try "\(sha256Hex(zip))  \(name)\n".write(to: folder.appendingPathComponent(name + ".CHECKSUM"), atomically: true, encoding: .utf8)
    }

    func rows(_ day: Int64) -> [String] { InProcessSupersedingTests.klines(day: day).split(separator: "\n").map(String.init) }

    /// SYNUSDT's monthly differs from its dailies three ways; AGRUSDT's agrees.
    func publishJanuary() throws {
        for symbol in ["AGRUSDT", "SYNUSDT"] {
            var monthly: [String] = []
            for (d, day) in january.enumerated() {
                var dayRows = rows(day)
                if symbol == "SYNUSDT", d == 19 { dayRows.remove(at: 7) }  // the 20th's daily lacks 07:00
                try publish(symbol, String(UTCCalendar.iso8601(day).prefix(10)), dayRows)
                var monthRows = rows(day)
                if symbol == "SYNUSDT", d == 4 {  // the 5th's 02:00 close differs in the monthly
                    var fields = monthRows[2].split(separator: ",").map(String.init)
                    fields[4] = "999.5"
                    monthRows[2] = fields.joined(separator: ",")
                }
                if symbol == "SYNUSDT", d == 9 { monthRows.remove(at: 3) }  // the monthly lacks the 10th's 03:00
                monthly += monthRows
            }
            try publish(symbol, "2024-01", monthly)
        }
    }

    func job(_ symbols: [String]) throws -> String {
        let path = dir.appendingPathComponent("audit-\(symbols.count).yml").path
        try """
            name: audit\(symbols.count)
            source: {base_url: \(dir.appendingPathComponent("mirror").path), cache_dir: \(dir.appendingPathComponent("cache").path)}
            market: spot
            symbols: [\(symbols.joined(separator: ", "))]
            intervals: [1h]
            dtype: float64
            from: 2024-01
            to: 2024-01
            target: {directory: \(dir.appendingPathComponent("db-\(symbols.count)").path)}
            manifest: \(dir.appendingPathComponent("state/audit\(symbols.count).manifest.db").path)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testAMonthlyThatDisagreesWithItsDailiesIsListedRowByRow() async throws {
        try publishJanuary()
        let path = try job(["AGRUSDT", "SYNUSDT"])
        let spec = try JobSpec.load(path: path)
        let run = try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(RunOptions(today: ArchivePeriod(day: "2024-03-01")!))
        XCTAssertEqual([run.done, run.failed], [2, 0], "\(run.failures)")

        let report = try await Auditor(spec: spec, logger: Logger(label: "test")).audit()
        let synthetic = "data/spot/monthly/klines/SYNUSDT/1h/SYNUSDT-1h-2024-01.zip"
        XCTAssertEqual(report.disagreements, [
            .init(kind: "value", unit: synthetic, openTime: "2024-01-05T02:00:00Z", column: "Close", monthly: "999.5", daily: "\(Double("\(100 + (january[4] / 86400) % 50).2")!)"),
            .init(kind: "missing_in_monthly", unit: synthetic, openTime: "2024-01-10T03:00:00Z", detail: "in SYNUSDT-1h-2024-01-10.zip"),
            .init(kind: "extra_in_monthly", unit: synthetic, openTime: "2024-01-20T07:00:00Z", detail: "not in SYNUSDT-1h-2024-01-20.zip"),
        ])
        XCTAssertEqual(report.auditedNow.count, 2)
        XCTAssertEqual(report.unitsChecked, 2, "the target against the state too")

        // A re-run reuses what nothing changed since.
        let again = try await Auditor(spec: spec, logger: Logger(label: "test")).audit()
        XCTAssertEqual([again.auditedNow.count, again.reused.count], [0, 2])
        XCTAssertEqual(again.disagreements, report.disagreements)

        // Through the binary: exit 1 with the disagreements; agreeing sources exit 0.
        let cli = try runCommand(ImportJobTests.binary, ["audit", path, "--json"], environment: ["BINANCE_IMPORT_TODAY": "2024-03-01"])
        XCTAssertEqual(cli.status, 1, cli.output)
        let object = try JSONSerialization.jsonObject(with: Data(cli.output.utf8)) as? [String: Any]
        XCTAssertEqual((object?["disagreements"] as? [[String: Any]])?.map { $0["kind"] as? String }, ["value", "missing_in_monthly", "extra_in_monthly"])
        let agreeing = try job(["AGRUSDT"])
        _ = try await ImportRunner(spec: try JobSpec.load(path: agreeing), logger: Logger(label: "test")).run(RunOptions(today: ArchivePeriod(day: "2024-03-01")!))
        let ok = try runCommand(ImportJobTests.binary, ["audit", agreeing], environment: ["BINANCE_IMPORT_TODAY": "2024-03-01"])
        XCTAssertEqual(ok.status, 0, ok.output)
        XCTAssertTrue(ok.output.contains("audited 1 monthly archive(s) against their dailies (0 unchanged since the last audit), 1 unit(s) against the target: all agree"), ok.output)
    }

    /// A daily archive re-published with another value: the run imports it again, and the key's
    /// card shows both versions (old and new SHA-256, when each was imported), with each
    /// archive's Last-Modified; `status --json` carries the same.
    func testAKeysCardKeepsTheHistoryOfARepublishedArchive() async throws {
        let day = january[0]
        try publish("SYNUSDT", "2024-01-01", rows(day))
        let path = try job(["SYNUSDT"])
        let spec = try JobSpec.load(path: path)
        let today = RunOptions(today: ArchivePeriod(day: "2024-01-02")!)
        _ = try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(today)
        let id = "data/spot/daily/klines/SYNUSDT/1h/SYNUSDT-1h-2024-01-01.zip"
        let before = try XCTUnwrap(try Manifest.load(path: spec.manifest, job: spec.name).units[id])
        var changed = rows(day)
        changed[5] = changed[5].replacingOccurrences(of: ",10.5,", with: ",11.5,")
        try publish("SYNUSDT", "2024-01-01", changed)
        let again = try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(today)
        XCTAssertEqual(again.done, 1, "\(again.failures)")

        let card = Provenance.of(key: "SYNUSDT/1H/OHLCV", in: try Manifest.load(path: spec.manifest, job: spec.name))
        let source = try XCTUnwrap(card.sources.first)
        XCTAssertEqual([card.sources.count, card.rows], [1, 24])
        XCTAssertEqual(source.kind, "archive")
        XCTAssertNotEqual(source.sha256, before.sha256)
        XCTAssertEqual(source.history?.map(\.sha256), [before.sha256], "the earlier version is kept")
        XCTAssertEqual(source.history?.first?.doneAt, before.doneAt)
        XCTAssertNotNil(source.lastModified)

        let cli = try runCommand(ImportJobTests.binary, ["card", path, "--key", "SYNUSDT/1H/OHLCV"], environment: ["BINANCE_IMPORT_TODAY": "2024-01-02"])
        XCTAssertEqual(cli.status, 0, cli.output)
        XCTAssertTrue(cli.output.contains("re-published: was sha256 \(before.sha256!)"), cli.output)
        XCTAssertTrue(cli.output.contains("sha256 \(source.sha256!) (verified against its CHECKSUM)"), cli.output)
        let status = try runCommand(ImportJobTests.binary, ["status", path, "--offline", "--json"], environment: ["BINANCE_IMPORT_TODAY": "2024-01-02"])
        let object = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
        let provenance = (object?["provenance"] as? [String: Any])?["SYNUSDT/1H/OHLCV"] as? [String: Any]
        XCTAssertEqual(((provenance?["sources"] as? [[String: Any]])?.first?["history"] as? [[String: Any]])?.first?["sha256"] as? String, before.sha256)
        let unknown = try runCommand(ImportJobTests.binary, ["card", path, "--key", "NOPE/1H/OHLCV"], environment: ["BINANCE_IMPORT_TODAY": "2024-01-02"])
        XCTAssertEqual(unknown.status, 2, unknown.output)
        XCTAssertTrue(unknown.output.contains("has no unit of NOPE/1H/OHLCV (keys: SYNUSDT/1H/OHLCV)"), unknown.output)
    }
}
