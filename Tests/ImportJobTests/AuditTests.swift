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

    /// The universe by date: a symbol listed mid-range and one delisted mid-range appear on the
    /// right days, from the rows alone (the delisting inferred) and with exchangeInfo (said by it);
    /// `status` says "delisted on" instead of leaving the empty months unexplained.
    func testTheUniverseListsSymbolsTradingOnADayDelistedOnesIncluded() async throws {
        let days = PeriodPlanner.days(of: ArchivePeriod(year: 2024, month: 1)!) + PeriodPlanner.days(of: ArchivePeriod(year: 2024, month: 2)!)
            + PeriodPlanner.days(of: ArchivePeriod(year: 2024, month: 3)!)
        for day in days {
            let name = String(UTCCalendar.iso8601(day.start).prefix(10))
            try publish("AAAUSDT", name, rows(day.start))
            if name >= "2024-02-10" { try publish("LATEUSDT", name, rows(day.start)) }
            if name <= "2024-02-14" { try publish("GONEUSDT", name, rows(day.start)) }
        }
        let rest = try ServerProcess.required(script: "Tests/servers/rest_server.py")
        defer { rest.stop() }
        try await rest.control(["exchange_info": [["symbol": "AAAUSDT", "status": "TRADING"], ["symbol": "LATEUSDT", "status": "TRADING"],
                                                  ["symbol": "GONEUSDT", "status": "BREAK"]]])
        let path = dir.appendingPathComponent("universe.yml").path
        try """
            name: universe
            source: {base_url: \(dir.appendingPathComponent("mirror").path), cache_dir: \(dir.appendingPathComponent("cache").path), rest_url: \(rest.base)}
            market: spot
            symbols: [AAAUSDT, GONEUSDT, LATEUSDT]
            intervals: [1h]
            from: 2024-01
            to: 2024-03
            target: {directory: \(dir.appendingPathComponent("db-u").path)}
            manifest: \(dir.appendingPathComponent("state/universe.manifest.db").path)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let spec = try JobSpec.load(path: path)
        _ = try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(RunOptions(today: ArchivePeriod(day: "2024-04-01")!))
        let manifest = try Manifest.load(path: spec.manifest, job: spec.name)

        let inferred = Universe(manifest: manifest, info: nil)
        XCTAssertEqual(inferred.lives.map { [$0.symbol, $0.firstDay ?? "", $0.lastDay ?? "", $0.delistedOn ?? "", $0.delistedBy ?? ""] }, [
            ["AAAUSDT", "2024-01-01", "2024-03-31", "", ""],
            ["GONEUSDT", "2024-01-01", "2024-02-14", "2024-02-15", "inferred"],
            ["LATEUSDT", "2024-02-10", "2024-03-31", "", ""],
        ])
        XCTAssertEqual(inferred.trading(on: "2024-02-01").map(\.symbol), ["AAAUSDT", "GONEUSDT"])
        XCTAssertEqual(inferred.trading(on: "2024-02-14").map(\.symbol), ["AAAUSDT", "GONEUSDT", "LATEUSDT"])
        XCTAssertEqual(inferred.trading(on: "2024-03-20").map(\.symbol), ["AAAUSDT", "LATEUSDT"])

        let env = ["BINANCE_IMPORT_TODAY": "2024-04-01"]
        let cli = try runCommand(ImportJobTests.binary, ["universe", path, "--at", "2024-02-14"], environment: env)
        XCTAssertEqual(cli.status, 0, cli.output)
        XCTAssertTrue(cli.output.contains("GONEUSDT: 2024-01-01 .. 2024-02-14, BREAK, delisted on 2024-02-15\n"), cli.output)
        XCTAssertTrue(cli.output.contains("3 symbol(s) trading on 2024-02-14"), cli.output)
        let json = try runCommand(ImportJobTests.binary, ["universe", path, "--json"], environment: env)
        let lives = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [[String: Any]]
        XCTAssertEqual(lives?.first { $0["symbol"] as? String == "GONEUSDT" }?["delisted_by"] as? String, "exchange_info")
        let status = try runCommand(ImportJobTests.binary, ["status", path, "--offline"], environment: env)
        XCTAssertTrue(status.output.contains("GONEUSDT: delisted on 2024-02-15 (its rows stop on 2024-02-14"), status.output)

        // discover: the archive tree keeps delisted symbols; include_delisted: false keeps those
        // exchangeInfo calls TRADING. (Discovery lists the monthly folder: each symbol has one.)
        for symbol in ["AAAUSDT", "GONEUSDT", "LATEUSDT"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("mirror/data/spot/monthly/klines/\(symbol)/1h"), withIntermediateDirectories: true)
        }
        for (include, expected) in [(true, ["AAAUSDT", "GONEUSDT", "LATEUSDT"]), (false, ["AAAUSDT", "LATEUSDT"])] {
            let yaml = try String(contentsOfFile: path, encoding: .utf8)
                .replacingOccurrences(of: "symbols: [AAAUSDT, GONEUSDT, LATEUSDT]", with: "discover: {quote: USDT, include_delisted: \(include)}")
            let discovered = try await Planner(spec: try JobSpec.parse(yaml: yaml, file: "discover.yml"), logger: Logger(label: "test")).symbols()
            XCTAssertEqual(discovered, expected, "include_delisted: \(include)")
        }
    }

    /// `--trades`: a day's 1m klines against bars rebuilt from the day's raw trades archive. The
    /// klines here are made from those trades (a minute without trades included); one kline's
    /// high is then changed, and that one value is reported.
    func testKlinesAgainstBarsRebuiltFromTrades() async throws {
        let day = ArchivePeriod(day: "2024-01-05")!.start
        var trades: [String] = [], klines: [String] = []
        var id: Int64 = 5_000, previousClose = "100.00"
        for minute in Int64(0)..<1440 {
            let open = (day + minute * 60) * 1000
            if minute == 700 {  // no trade this minute: the kline carries the close on, with nothing traded
                klines.append("\(open),\(previousClose),\(previousClose),\(previousClose),\(previousClose),0.00000000,\(open + 59_999),0,0,0.00000000,0,0")
                continue
            }
            var prices: [Int64] = [], volume: Int64 = 0, takerBuy: Int64 = 0
            for k in Int64(0)..<3 {
                let cents = 10_000 + (minute * 7 + k * 13) % 500, qty = 100_000 + (minute * 31 + k) % 900_000  // 1e-8 units
                let maker = (minute + k) % 3 == 0
                let price = "\(cents / 100).\(String(format: "%02d", cents % 100))"
                trades.append("\(id),\(price),\(Auditor.decimal(qty)),1.0,\(open + k * 1000 + 7),\(maker ? "True" : "False"),True")
                (id, volume) = (id + 1, volume + qty)
                if !maker { takerBuy += qty }
                prices.append(cents)
            }
            func text(_ c: Int64) -> String { "\(c / 100).\(String(format: "%02d", c % 100))" }
            let high = minute == 900 ? "999.99" : text(prices.max()!)  // the kline that disagrees
            klines.append("\(open),\(text(prices[0])),\(high),\(text(prices.min()!)),\(text(prices[2])),\(Auditor.decimal(volume)),\(open + 59_999),1.0,3,\(Auditor.decimal(takerBuy)),1.0,0")
            previousClose = text(prices[2])
        }
        let klineFolder = dir.appendingPathComponent("mirror/data/spot/daily/klines/TRDUSDT/1m")
        let tradeFolder = dir.appendingPathComponent("mirror/data/spot/daily/trades/TRDUSDT")
        for (folder, name, lines) in [(klineFolder, "TRDUSDT-1m-2024-01-05.zip", klines), (tradeFolder, "TRDUSDT-trades-2024-01-05.zip", trades)] {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let zip = ZipBuilder.single(String(name.dropLast(4)) + ".csv", lines.joined(separator: "\n") + "\n")
            try Data(zip).write(to: folder.appendingPathComponent(name))
            try "\(sha256Hex(zip))  \(name)\n".write(to: folder.appendingPathComponent(name + ".CHECKSUM"), atomically: true, encoding: .utf8)
        }
        let path = dir.appendingPathComponent("trades-audit.yml").path
        try """
            name: trades-audit
            source: {base_url: \(dir.appendingPathComponent("mirror").path), cache_dir: \(dir.appendingPathComponent("cache").path)}
            market: spot
            symbols: [TRDUSDT]
            intervals: [1m]
            from: 2024-01
            to: 2024-01
            target: {directory: \(dir.appendingPathComponent("db-t").path)}
            manifest: \(dir.appendingPathComponent("state/trades-audit.manifest.db").path)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let spec = try JobSpec.load(path: path)
        let run = try await ImportRunner(spec: spec, logger: Logger(label: "test")).run(RunOptions(today: ArchivePeriod(day: "2024-01-06")!))
        XCTAssertEqual(run.done, 1, "\(run.failures)")
        let report = try await Auditor(spec: spec, logger: Logger(label: "test")).audit(target: false, tradeDays: 1)
        XCTAssertEqual(report.disagreements.count, 1, "\(report.disagreements)")
        XCTAssertEqual(report.disagreements.first?.openTime, "2024-01-05T15:00:00Z")
        XCTAssertEqual(report.disagreements.first?.column, "High")
        XCTAssertEqual(report.disagreements.first?.monthly, "999.99", "the kline's")
        XCTAssertEqual(report.disagreements.first?.kind, "trades_vs_kline")
    }
}
