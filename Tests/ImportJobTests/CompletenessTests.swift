import Columnar
import Foundation
import KlineArchive
import MarketStore
import MarketStoreDirectory
import TestSupport
import XCTest
@testable import Follow
@testable import ImportPipeline
@testable import JobMetrics
@testable import JobModel
@testable import JobState

/// Every published kline lands, on the archive shapes Binance really publishes (issue 21; the
/// cases come from binance-public-data's tracker): a month with daily archives only, a truncated
/// monthly, a monthly missing a day, a maintenance gap in every archive. Through the HTTP source
/// with its S3 listing, into both targets.
extension ImportJobTests {
    /// One month of `symbol` 1h cut into a monthly archive of `monthDays` and daily archives of
    /// `dailyDays` with the same values (bench/gen_archives.py --cut); rows in `drop` (UTC s,
    /// [first, last)) are in none. Returns the path of an archive of every row that should land.
    @discardableResult
    func cut(_ symbol: String, _ month: String, monthDays: String, dailyDays: String, drop: (Int64, Int64)? = nil, drops: [(Int64, Int64)] = []) throws -> String {
        let reference = work.appendingPathComponent("reference/\(symbol)-1h-\(month).zip").path
        var args = [ServerProcess.repoRoot.appendingPathComponent("bench/gen_archives.py").path, "--cut", tree.path, "--symbol", symbol,
                    "--interval", "1h", "--month", month, "--month-days", monthDays, "--daily-days", dailyDays, "--reference", reference]
        let ranges = (drop.map { [$0] } ?? []) + drops
        if !ranges.isEmpty { args += ["--drop", ranges.map { "\($0.0),\($0.1)" }.joined(separator: ";")] }
        let r = try run("/usr/bin/env", ["python3"] + args)
        XCTAssertEqual(r.status, 0, r.output)
        return reference
    }

    /// Rows of `key` in the target (a server URL or a directory), as epochs and value columns.
    func targetRows(_ target: ImportTarget, _ key: String) async throws -> (epochs: [Int64], columns: [ColumnValues]) {
        guard let result = try await TargetReader(target: target).read(key: key, from: nil, to: nil).first else { return ([], []) }
        guard case let .int64(epochs) = result.columns[0] else { XCTFail("no epochs"); return ([], []) }
        return (epochs, Array(result.columns.dropFirst()))
    }

    /// The JSON summary a `nightly` prints (a line "{" to a line "}"), parsed.
    func nightlySummary(_ output: String) -> [String: Any] {
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: "{"), let end = lines[start...].firstIndex(of: "}") else { return [:] }
        let text = lines[start...end].joined(separator: "\n")
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
    }

    func grid(_ path: String, today: String) throws -> [String: [String]] {
        let status = try importer(["status", path, "--json"], today: today)
        let object = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
        return object?["grid"] as? [String: [String]] ?? [:]
    }

    func testEveryPublishedShapeLandsOnBothTargetsAndASecondNightlyDownloadsNothing() async throws {
        let march10 = Int64(1_710_028_800)  // 2024-03-10 00:00 UTC
        struct Case {
            var symbol: String, from: String, to: String, rows: Int, grid: [String], references: [String], repaired: String?
        }
        let cases = [
            // A month with daily archives only, years ago, before the first monthly.
            Case(symbol: "AAAUSDT", from: "2020-01", to: "2020-02", rows: 1440, grid: ["daily", "monthly"],
                 references: [try cut("AAAUSDT", "2020-01", monthDays: "none", dailyDays: "all"),
                              try cut("AAAUSDT", "2020-02", monthDays: "all", dailyDays: "none")], repaired: nil),
            // A truncated monthly: 7 of 31 days (#359, #403); all the dailies are out.
            Case(symbol: "BBBUSDT", from: "2024-07", to: "2024-07", rows: 744, grid: ["monthly_repaired"],
                 references: [try cut("BBBUSDT", "2024-07", monthDays: "1-7", dailyDays: "all")],
                 repaired: "2024-07-08..2024-07-31"),
            // A monthly missing one whole day that its daily has (#253, #186).
            Case(symbol: "CCCUSDT", from: "2023-04", to: "2023-04", rows: 720, grid: ["monthly_repaired"],
                 references: [try cut("CCCUSDT", "2023-04", monthDays: "1-6,8-30", dailyDays: "all")],
                 repaired: "2023-04-07"),
            // A 2-hour maintenance gap in the monthly and the daily alike (#84, #169): not a hole.
            Case(symbol: "DDDUSDT", from: "2024-03", to: "2024-03", rows: 742, grid: ["monthly"],
                 references: [try cut("DDDUSDT", "2024-03", monthDays: "all", dailyDays: "all", drop: (march10 + 7200, march10 + 14400))], repaired: nil),
        ]
        let today = "2026-11-29"
        for (t, targetName) in ["server", "directory"].enumerated() {
            let target: ImportTarget = t == 0 ? .marketstore(url: marketstore.url) : .directory(path: work.appendingPathComponent("mktsdb").path)
            for c in cases {
                var path = try job("\(c.symbol)-\(targetName)", symbols: [c.symbol], intervals: ["1h"], from: c.from, to: c.to)
                if case let .directory(dir) = target {
                    path = try variant(of: path, "\(c.symbol)-\(targetName)", replacing: "marketstore: \(marketstore.url)", with: "directory: \(dir)")
                }
                let first = try importer(["nightly", path], today: today)
                XCTAssertEqual(first.status, 0, "\(c.symbol) \(targetName): \(first.output)")
                let repaired = nightlySummary(first.output)["repaired_from_daily_archives"] as? [String: String]
                XCTAssertEqual(repaired?["\(c.symbol)/1H/OHLCV"], c.repaired, "\(c.symbol) \(targetName): \(first.output)")
                let expectedRows = try expected(c.references)
                let (epochs, columns) = try await targetRows(target, "\(c.symbol)/1H/OHLCV")
                XCTAssertEqual(epochs.count, c.rows, "\(c.symbol) \(targetName)")
                XCTAssertEqual(epochs, expectedRows.epochs, "\(c.symbol) \(targetName) epochs")
                XCTAssertEqual(columns, expectedRows.columns.map(\.values), "\(c.symbol) \(targetName) values")
                XCTAssertEqual(try grid(path, today: today)["\(c.symbol)/1H/OHLCV"].map { Array($0.prefix(c.grid.count)) }, c.grid, "\(c.symbol) \(targetName)")
                let verify = try importer(["verify", path], today: today)
                XCTAssertEqual(verify.status, 0, "\(c.symbol) \(targetName): \(verify.output)")

                try await archives.control(["reset": true])
                let second = try importer(["nightly", path], today: today)
                XCTAssertEqual(second.status, 0, "\(c.symbol) \(targetName): \(second.output)")
                let (zips, checksums) = (try await zipRequests(), try await checksumRequests())
                XCTAssertEqual([zips, checksums], [0, 0], "\(c.symbol) \(targetName): a second nightly downloads nothing")
                let again = try await targetRows(target, "\(c.symbol)/1H/OHLCV")
                XCTAssertEqual(again.epochs.count, c.rows)
            }
        }
    }

    /// The three real daily archives of ../shared/binance (2020-01-01..03), through a job for
    /// their old month: an earlier planner looked at daily files only for recent months and said
    /// "no archive published ... check the symbol".
    func testTheRealDailyArchivesOfAnOldMonthLand() async throws {
        try copyRealArchives()
        let path = try job("old-dailies", symbols: ["BTCUSDT"], intervals: ["1m"], from: "2020-01", to: "2020-01")
        let r = try importer(["nightly", path], today: "2026-11-29")
        XCTAssertEqual(r.status, 0, r.output)
        let real = ["01", "02", "03"].map { tree.appendingPathComponent("data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2020-01-\($0).zip").path }
        let (epochs, columns) = try await targetRows(.marketstore(url: marketstore.url), "BTCUSDT/1Min/OHLCV")
        let want = try expected(real)
        XCTAssertEqual(epochs.count, 3 * 1440)
        XCTAssertEqual(epochs, want.epochs)
        XCTAssertEqual(columns, want.columns.map(\.values))
        let m = try manifest("old-dailies")
        XCTAssertEqual(m.units.values.filter { $0.status == .done }.count, 3)
        XCTAssertEqual(m.units.values.filter { $0.status == .notPublished && $0.id.contains("-2020-01-") }.count, 28, "4..31 January: days with no archive")
    }

    /// A truncated monthly is repaired from its dailies; a repair day that fails fails the run
    /// (published rows left behind never exit 0) and the next run repairs it; when Binance
    /// re-publishes the monthly whole, its re-import writes the same slots and the repair units
    /// are superseded, values identical. An old month with nothing published is listed once, and
    /// again only when the monthly folder changes.
    func testRepairsResumeAndARepublishedWholeMonthlySupersedesThem() async throws {
        let reference = try cut("BBBUSDT", "2024-07", monthDays: "1-7", dailyDays: "1-20,22-31")
        let path = try job("repair", symbols: ["BBBUSDT"], intervals: ["1h"], from: "2024-05", to: "2024-07")
        try await archives.control(["path": "data/spot/daily/klines/BBBUSDT/1h/BBBUSDT-1h-2024-07-09.zip", "fault": 403, "times": 1])
        let n1 = try importer(["nightly", path], today: "2026-11-29")
        XCTAssertEqual(n1.status, 1, n1.output)
        XCTAssertTrue(n1.output.contains("BBBUSDT-1h-2024-07-09.zip"), n1.output)
        XCTAssertEqual(nightlySummary(n1.output)["days_in_no_archive"] as? [String: String], ["BBBUSDT/1H/OHLCV": "2024-07-21"], n1.output)
        XCTAssertEqual(try grid(path, today: "2026-11-29")["BBBUSDT/1H/OHLCV"].map { Array($0.prefix(3)) }, ["not_published", "not_published", "failed"])

        let n2 = try importer(["nightly", path], today: "2026-11-29")
        XCTAssertEqual(n2.status, 0, n2.output)
        XCTAssertEqual(nightlySummary(n2.output)["repaired_from_daily_archives"] as? [String: String], ["BBBUSDT/1H/OHLCV": "2024-07-09"], n2.output)
        let (epochs, _) = try await targetRows(.marketstore(url: marketstore.url), "BBBUSDT/1H/OHLCV")
        XCTAssertEqual(epochs, try expected([reference]).epochs)
        XCTAssertEqual(epochs.count, 30 * 24, "every day but the 21st, which no archive has")
        var m = try manifest("repair")
        XCTAssertEqual(m.units["data/spot/monthly/klines/BBBUSDT/1h/BBBUSDT-1h-2024-07.zip"]?.lacking?.count, 24)
        XCTAssertEqual(m.units.values.filter { $0.id.contains("/daily/") && $0.status == .done }.count, 23)
        XCTAssertEqual(m.units["data/spot/daily/klines/BBBUSDT/1h/BBBUSDT-1h-2024-07-21.zip"]?.status, .notPublished)
        XCTAssertEqual(try grid(path, today: "2026-11-29")["BBBUSDT/1H/OHLCV"].map { Array($0.prefix(3)) }, ["not_published", "not_published", "monthly_repaired"])

        // Quiet: May 2024 to August 2026 were listed once (a listing of each year's dailies) and
        // are not listed again; the recent months are, in one request (2026's prefix, starting at
        // September: a round trip a key, not one a month).
        try await archives.control(["reset": true])
        let n3 = try importer(["nightly", path], today: "2026-11-29")
        XCTAssertEqual(n3.status, 0, n3.output)
        let listings = try await archives.stats()["listings"] as! [String]
        let daily = "data/spot/daily/klines/BBBUSDT/1h/BBBUSDT-1h-"
        XCTAssertEqual(Set(listings).sorted(), ["\(daily)2026-", "data/spot/monthly/klines/BBBUSDT/1h/"], "\(listings)")

        // Binance re-publishes the monthly whole (they did for #359 and #186).
        let whole = try cut("BBBUSDT", "2024-07", monthDays: "all", dailyDays: "none")
        let n4 = try importer(["nightly", path], today: "2026-11-29")
        XCTAssertEqual(n4.status, 0, n4.output)
        m = try manifest("repair")
        XCTAssertNil(m.units["data/spot/monthly/klines/BBBUSDT/1h/BBBUSDT-1h-2024-07.zip"]?.lacking)
        XCTAssertEqual(m.units.values.filter { $0.id.contains("/daily/") && $0.status == .done }.count, 0)
        XCTAssertEqual(m.units.values.filter { $0.id.contains("/daily/") && $0.status == .superseded }.count, 24, "23 repair units and the day no archive had")
        let (after, columns) = try await targetRows(.marketstore(url: marketstore.url), "BBBUSDT/1H/OHLCV")
        let want = try expected([whole])
        XCTAssertEqual(after, want.epochs)
        XCTAssertEqual(columns, want.columns.map(\.values), "the repaired days hold the values the whole monthly has")
        XCTAssertEqual(try grid(path, today: "2026-11-29")["BBBUSDT/1H/OHLCV"].map { Array($0.prefix(3)) }, ["not_published", "not_published", "monthly"])
        // The monthly folder changed: May and June were looked at again (one listing of 2024's dailies).
        let relisted = try await archives.stats()["listings"] as! [String]
        XCTAssertTrue(relisted.contains("data/spot/daily/klines/BBBUSDT/1h/BBBUSDT-1h-2024-"), "\(relisted)")
    }
}

extension ImportJobTests {
    /// A state database written by the previous release (no `lacking` column, no binding) is read
    /// by status and verify as it is, and carried on by the next run, which adds the column. (The
    /// first version of the column made every reader fail: "table units has no column named lacking".)
    func testAStateDatabaseOfThePreviousReleaseIsReadAndCarriedOn() async throws {
        try generate("spot", "AAAUSDT", "1h", "2024-01")
        let path = try job("previous", symbols: ["AAAUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        XCTAssertEqual(try importer(["run", path], today: "2024-06-01").status, 0)
        let database = work.appendingPathComponent("state/previous.manifest.db").path
        // The previous release's schema: the same table without `lacking`, and no binding.
        let downgrade = """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            db.executescript('''
            CREATE TABLE old (
                id TEXT PRIMARY KEY, key TEXT NOT NULL, status TEXT NOT NULL, remote_path TEXT NOT NULL,
                archive_path TEXT, sha256 TEXT, listing TEXT, verified INTEGER NOT NULL, rows INTEGER,
                first_epoch INTEGER, last_epoch INTEGER, digests TEXT, anomalies TEXT,
                attempts INTEGER NOT NULL, error TEXT, updated_at TEXT, done_at TEXT, covered_to INTEGER
            ) WITHOUT ROWID;
            INSERT INTO old SELECT id, key, status, remote_path, archive_path, sha256, listing, verified, rows, first_epoch,
                last_epoch, digests, anomalies, attempts, error, updated_at, done_at, covered_to FROM units;
            DROP TABLE units; ALTER TABLE old RENAME TO units;
            DELETE FROM meta WHERE name NOT IN ('version', 'job');''')
            db.commit()
            """
        let r = try run("/usr/bin/env", ["python3", "-c", downgrade, database])
        XCTAssertEqual(r.status, 0, r.output)
        let status = try importer(["status", path, "--offline"], today: "2024-06-01")
        XCTAssertEqual(status.status, 0, status.output)
        XCTAssertTrue(status.output.contains("AAAUSDT/1H/OHLCV  M"), status.output)
        XCTAssertEqual(try importer(["verify", path], today: "2024-06-01").status, 0)
        let again = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertEqual(tableValue(again.output, "skipped (already done)"), "1", again.output)
        let columns = try run("/usr/bin/env", ["python3", "-c", "import sqlite3, sys; print([r[1] for r in sqlite3.connect(sys.argv[1]).execute('pragma table_info(units)')])", database])
        XCTAssertTrue(columns.output.contains("'lacking'"), columns.output)
    }
}

extension ImportJobTests {
    /// Gaps explained: two gaps in every archive of a month; `--confirm-gaps` (then `gaps: rest`)
    /// asks REST about each: the hour REST has is written (filled), the two hours it has not are
    /// an exchange gap; status and the report list them; verify checks the filled hour through
    /// its own unit; a second run asks REST nothing.
    func testGapsAreFilledFromRESTOrConfirmedAsExchangeGaps() async throws {
        let march10 = Int64(1_710_028_800), march20 = Int64(1_710_892_800)
        let reference = try cut("DDDUSDT", "2024-03", monthDays: "all", dailyDays: "none",
                                drops: [(march10 + 7200, march10 + 14400), (march20 + 18000, march20 + 21600)])
        let rest = try startREST()
        defer { rest.stop() }
        try await rest.control(["now": "2026-11-29T00:00:00Z", "empty": [[(march10 + 7200) * 1000, (march10 + 10800) * 1000]]])
        let plain = try job("gaps", symbols: ["DDDUSDT"], intervals: ["1h"], from: "2024-03", to: "2024-03")
        let path = try variant(of: plain, "gaps", replacing: "checksum: required", with: "checksum: required\n  rest_url: \(rest.base)")

        let listed = try importer(["run", path], today: "2026-11-29")
        XCTAssertEqual(listed.status, 0, listed.output)
        XCTAssertTrue(listed.output.contains("gaps in the archives: 2 unexplained"), listed.output)
        func gaps() throws -> [[String: Any]] {
            let status = try importer(["status", path, "--json", "--offline"], today: "2026-11-29")
            let object = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
            return ((object?["gaps"] as? [String: Any])?["DDDUSDT/1H/OHLCV"] as? [[String: Any]]) ?? []
        }
        XCTAssertEqual(try gaps().map { $0["state"] as? String }, ["unexplained", "unexplained"])

        let confirmed = try importer(["run", path, "--confirm-gaps"], today: "2026-11-29")
        XCTAssertEqual(confirmed.status, 0, confirmed.output)
        XCTAssertTrue(confirmed.output.contains("gaps in the archives: 1 exchange_gap, 1 filled"), confirmed.output)
        let explained = try gaps()
        XCTAssertEqual(explained.map { $0["first"] as? String }, ["2024-03-10T02:00:00Z", "2024-03-20T05:00:00Z"])
        XCTAssertEqual(explained.map { $0["last"] as? String }, ["2024-03-10T03:00:00Z", "2024-03-20T05:00:00Z"])
        XCTAssertEqual(explained.map { $0["state"] as? String }, ["exchange_gap", "filled"])
        XCTAssertEqual(explained.map { $0["rows"] as? Int }, [0, 1])

        // The target: every archive row, and the hour REST had with REST's values.
        let archive = try expected([reference])
        let fromREST = try dayRows("DDDUSDT", "1h", "2024-03-20")
        let (epochs, columns) = try await targetRows(.marketstore(url: marketstore.url), "DDDUSDT/1H/OHLCV")
        XCTAssertEqual(epochs.count, 744 - 2, "741 archive rows and 1 from REST")
        XCTAssertEqual(Set(epochs), Set(archive.epochs + [march20 + 18000]))
        let at = try XCTUnwrap(epochs.firstIndex(of: march20 + 18000))
        XCTAssertEqual(columns.map { $0.slice(at..<(at + 1)) }, fromREST.columns.map { $0.values.slice(5..<6) })
        let verify = try importer(["verify", path], today: "2026-11-29")
        XCTAssertEqual(verify.status, 0, verify.output)

        // Explained gaps are not asked again, with gaps: rest in the job file either.
        let asked = (try await rest.stats()["klines_requests"] as? [Any])?.count ?? 0
        let withKey = try variant(of: path, "gaps-rest", replacing: "validation: report", with: "validation: report\ngaps: rest")
        let again = try importer(["run", withKey], today: "2026-11-29")
        XCTAssertEqual(again.status, 0, again.output)
        let askedAfter = (try await rest.stats()["klines_requests"] as? [Any])?.count ?? 0
        XCTAssertEqual(askedAfter, asked)
    }
}
