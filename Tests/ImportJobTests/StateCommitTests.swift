import Foundation
import XCTest

@testable import JobModel
@testable import JobState

/// A commit of the state is one SQLite transaction (issue 32: it ran up to four, so a failure
/// between them left a unit recorded done with its gaps not written).
final class StateCommitTests: XCTestCase {
    func testACommitThatFailsPartWayWritesNothing() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("state-commit-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let manifest = dir.appendingPathComponent("job.manifest.db").path
        let store = try ManifestStore.open(manifest: manifest, job: "job")
        await store.update("u1", key: "BTCUSDT/1H/OHLCV") { $0.status = .pending }
        try await store.commit(force: true)
        // The gaps table refuses every insert from now on: the commit's last part fails.
        let db = try SQLiteDatabase(path: Manifest.databasePath(manifest), mode: .readWrite)
        try db.execute("CREATE TRIGGER refuse BEFORE INSERT ON gaps BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
        await store.update("u1") { $0.status = .done; $0.rows = 24 }
        await store.setGaps(unit: "u1", [GapRecord(key: "BTCUSDT/1H/OHLCV", first: 0, last: 3600, state: .unexplained, unit: "u1")])
        await store.setMeta("deep_checked_day", "86400")
        do {
            try await store.commit(force: true)
            XCTFail("the commit should fail")
        } catch {
            XCTAssertTrue("\(error)".contains("refused by the test"), "\(error)")
        }
        let after = try StateDatabase(path: Manifest.databasePath(manifest), create: false)
        XCTAssertEqual(try after.record("u1")?.status, .pending, "the unit's record is not written without its gaps")
        XCTAssertNil(try after.meta("deep_checked_day"), "nor the run's memory")
    }
}
