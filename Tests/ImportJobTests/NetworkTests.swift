import BinanceSource
import Foundation
import KlineArchive
import Logging
import TestSupport
import XCTest
@testable import Follow
@testable import ImportPipeline
@testable import JobMetrics
@testable import JobModel
@testable import JobState

/// Fast over a real network (issue 24): keys planned concurrently into the same plan, a listing
/// error that fails its key only, a CHECKSUM asked for beside its archive, and a quiet nightly
/// that lists only what may have changed.
extension ImportJobTests {
    /// Every archive shape: whole monthlies, a month of dailies only, a truncated monthly with
    /// its dailies, missing months, the current month's dailies.
    func everyShape() throws {
        try generate("spot", "AAAUSDT", "1h", "2024-01")
        try generate("spot", "AAAUSDT", "1h", "2024-02")
        try cut("BBBUSDT", "2024-01", monthDays: "none", dailyDays: "all")
        try cut("BBBUSDT", "2024-02", monthDays: "1-10", dailyDays: "all")
        try generate("spot", "CCCUSDT", "1h", "2024-02")
        for s in ["AAAUSDT", "BBBUSDT", "CCCUSDT"] { try generate("spot", s, "1h", "2024-04", days: 1...3) }
    }

    func testTheConcurrentPlanEqualsTheSequentialOne() async throws {
        try everyShape()
        let path = try job("shapes", symbols: ["AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"], intervals: ["1h", "1d"], from: "2023-10", to: "latest")
        let spec = try JobSpec.load(path: path)
        let lister = ArchiveLister(location: SourceLocation(spec.baseURL), listingURL: spec.listingURL)
        let today = ArchivePeriod(year: 2024, month: 4, day: 4)!
        func plan(_ listings: Int) async throws -> ImportPlan {
            try await ImportPlan.make(spec: spec, dataset: .klines, symbols: spec.symbols!, today: today, lister: lister, index: [:], listings: listings)
        }
        let sequential = try await plan(1), concurrent = try await plan(16)
        XCTAssertEqual(concurrent.units, sequential.units)
        XCTAssertEqual(concurrent.notPublished, sequential.notPublished)
        XCTAssertEqual(concurrent.superseded, sequential.superseded)
        XCTAssertEqual(concurrent.coverage.map(\.key), sequential.coverage.map(\.key))
        XCTAssertEqual(concurrent.coverage.map(\.gaps), sequential.coverage.map(\.gaps))
        XCTAssertEqual(concurrent.unpublishedKeys.map(\.coverage.key), sequential.unpublishedKeys.map(\.coverage.key))
        XCTAssertEqual(concurrent.unpublishedKeys.map(\.coverage.key), ["AAAUSDT/1D/OHLCV", "BBBUSDT/1D/OHLCV", "CCCUSDT/1D/OHLCV", "DDDUSDT/1H/OHLCV", "DDDUSDT/1D/OHLCV"])
        XCTAssertEqual(sequential.coverage.map(\.key).prefix(4), ["AAAUSDT/1H/OHLCV", "AAAUSDT/1D/OHLCV", "BBBUSDT/1H/OHLCV", "BBBUSDT/1D/OHLCV"])
        XCTAssertTrue(concurrent.units.contains { $0.id.hasSuffix("BBBUSDT-1h-2024-01-15.zip") }, "January of BBB from its dailies")

        // The same job run twice, with one key planned at a time and with 16: the same state.
        var one = try variant(of: path, "one", replacing: "downloads: 3", with: "downloads: 3\n  listings: 1")
        one = try variant(of: one, "one", replacing: "name: shapes", with: "name: one")
        let dbOne = try variant(of: one, "one", replacing: "state/shapes.manifest.db", with: "state/one.manifest.db")
        XCTAssertEqual(try importer(["run", path, "--target", work.appendingPathComponent("db-a").path], today: "2024-04-04").status, 1)
        XCTAssertEqual(try importer(["run", dbOne, "--target", work.appendingPathComponent("db-b").path], today: "2024-04-04").status, 1)
        func states(_ name: String) throws -> [String: String] {
            try manifest(name).units.mapValues { r in
                "\(r.status) \(r.rows ?? -1) \((r.digests ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }) \(r.lacking ?? [])"
            }
        }
        let (a, b) = (try states("shapes"), try states("one"))
        XCTAssertEqual(a.count, b.count)
        for (id, state) in a where b[id] != state { XCTFail("\(id): \(state) != \(b[id] ?? "absent")") }
    }

    /// A listing that fails for one key fails that key's months only (it stopped the whole run
    /// with exit 2); the next run imports them.
    func testAListingErrorFailsItsKeyOnly() async throws {
        for s in ["AAAUSDT", "BBBUSDT", "CCCUSDT"] { try generate("spot", s, "1h", "2024-01") }
        let path = try job("listing", symbols: ["AAAUSDT", "BBBUSDT", "CCCUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        try await archives.control(["path": "listing:data/spot/monthly/klines/BBBUSDT/1h/", "fault": 403, "times": 1])
        let r = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.output.contains("listing the archives of BBBUSDT 1h failed") && r.output.contains("HTTP 403"), r.output)
        for s in ["AAAUSDT", "CCCUSDT"] { try await assertTargetHolds(s, "1H", try expected(archivePaths(s, "1h", months: ["2024-01"]))) }
        let again = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(again.status, 0, again.output)
        try await assertTargetHolds("BBBUSDT", "1H", try expected(archivePaths("BBBUSDT", "1h", months: ["2024-01"])))
    }

    /// An archive not in the cache is asked for at once with its CHECKSUM (one round trip, not
    /// two): with the CHECKSUM's answer held back 1.5 s, the archive's request still arrives
    /// at once; the hash is compared before any row is written.
    func testAChecksumIsAskedForBesideItsArchive() async throws {
        try generate("spot", "AAAUSDT", "1h", "2024-01")
        let zip = "data/spot/monthly/klines/AAAUSDT/1h/AAAUSDT-1h-2024-01.zip"
        try await archives.control(["path": zip + ".CHECKSUM", "fault": "delay", "seconds": 1.5, "times": 1])
        let path = try job("overlap", symbols: ["AAAUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        let r = try importer(["run", path], today: "2024-06-01")
        XCTAssertEqual(r.status, 0, r.output)
        let stats = try await archives.stats()
        let times = try XCTUnwrap(stats["times"] as? [String: [Double]])
        let checksumAsked = try XCTUnwrap(times[zip + ".CHECKSUM"]?.first), zipAsked = try XCTUnwrap(times[zip]?.first)
        XCTAssertLessThan(abs(zipAsked - checksumAsked), 0.75, "the archive was asked for without waiting for the CHECKSUM")
        // A wrong CHECKSUM still fails the unit, and nothing of it is written.
        try generate("spot", "BADUSDT", "1h", "2024-01")
        let bad = "data/spot/monthly/klines/BADUSDT/1h/BADUSDT-1h-2024-01.zip"
        try await archives.control(["path": bad, "fault": "wrong_checksum", "times": 2])
        let wrong = try importer(["run", path, "--symbols", "BADUSDT"], today: "2024-06-01")
        XCTAssertEqual(wrong.status, 1, wrong.output)
        XCTAssertTrue(wrong.output.contains("SHA-256") || wrong.output.contains("checksum"), wrong.output)
        let (_, keys) = try await writeCalls()
        XCTAssertFalse(keys.flatMap { $0 }.contains("BADUSDT/1H/OHLCV"), "\(keys)")
    }

    /// A quiet nightly lists only what may have changed: a key whose past months are all done is
    /// one listing (the current month's dailies); every `recheck_days` every monthly folder is
    /// listed again, and a re-published monthly is found.
    func testAQuietNightlyListsOnlyWhatMayHaveChanged() async throws {
        for s in ["AAAUSDT", "BBBUSDT"] {
            for m in ["2024-01", "2024-02"] { try generate("spot", s, "1h", m) }
            try generate("spot", s, "1h", "2024-03", days: 1...3)
        }
        let path = try job("quiet", symbols: ["AAAUSDT", "BBBUSDT"], intervals: ["1h"], from: "2024-01", to: "latest")
        XCTAssertEqual(try importer(["nightly", path], today: "2024-03-04").status, 0)
        try await archives.control(["reset": true])
        XCTAssertEqual(try importer(["nightly", path], today: "2024-03-05").status, 0)
        var listings = try await archives.stats()["listings"] as! [String]
        XCTAssertEqual(Set(listings).sorted(), ["data/spot/daily/klines/AAAUSDT/1h/AAAUSDT-1h-2024-03-", "data/spot/daily/klines/BBBUSDT/1h/BBBUSDT-1h-2024-03-"],
                       "one listing a key (the fixture pages every 3 entries)")
        let (zips, checksums) = (try await zipRequests(), try await checksumRequests())
        XCTAssertEqual([zips, checksums], [0, 0])

        // Eight days on: a deep check lists the monthly folders again and finds February
        // re-published for AAA.
        try FileManager.default.removeItem(at: tree.appendingPathComponent("data/spot/monthly/klines/AAAUSDT/1h/AAAUSDT-1h-2024-02.zip"))
        try FileManager.default.removeItem(at: tree.appendingPathComponent("data/spot/monthly/klines/AAAUSDT/1h/AAAUSDT-1h-2024-02.zip.CHECKSUM"))
        let republished = try cut("AAAUSDT", "2024-02", monthDays: "all", dailyDays: "none")
        try await archives.control(["reset": true])
        let deep = try importer(["nightly", path], today: "2024-03-12")
        XCTAssertEqual(deep.status, 0, deep.output)
        listings = try await archives.stats()["listings"] as! [String]
        XCTAssertTrue(listings.contains("data/spot/monthly/klines/AAAUSDT/1h/") && listings.contains("data/spot/monthly/klines/BBBUSDT/1h/"), "\(listings)")
        let (epochs, _) = try await targetRows(.marketstore(url: marketstore.url), "AAAUSDT/1H/OHLCV")
        XCTAssertTrue(Set(epochs).isSuperset(of: try expected([republished]).epochs))
        XCTAssertEqual(try manifest("quiet").units["data/spot/monthly/klines/AAAUSDT/1h/AAAUSDT-1h-2024-02.zip"]?.sha256,
                       sha256Hex([UInt8](try Data(contentsOf: URL(fileURLWithPath: tree.appendingPathComponent("data/spot/monthly/klines/AAAUSDT/1h/AAAUSDT-1h-2024-02.zip").path)))))
    }
}

extension ImportJobTests {
    /// A listing that fails for a key whose months are done fails the run (exit 1) but leaves
    /// them done: their rows are in the target (it marked them failed).
    func testAListingErrorLeavesDoneUnitsDone() async throws {
        for s in ["AAAUSDT", "BBBUSDT"] { try generate("spot", s, "1h", "2024-01") }
        let path = try job("listing-done", symbols: ["AAAUSDT", "BBBUSDT"], intervals: ["1h"], from: "2024-01", to: "2024-01")
        XCTAssertEqual(try importer(["run", path], today: "2024-06-01").status, 0)
        try await archives.control(["path": "listing:data/spot/monthly/klines/BBBUSDT/1h/", "fault": 403, "times": 1])
        let r = try importer(["run", path, "--force"], today: "2024-06-01")
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertEqual(try manifest("listing-done").units["data/spot/monthly/klines/BBBUSDT/1h/BBBUSDT-1h-2024-01.zip"]?.status, .done)
    }
}
