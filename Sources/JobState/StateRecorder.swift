import DurableFiles
import Foundation
import JobModel

/// The only code that writes a job's state: each method records one fact of a run (a unit
/// written, failed, not published, superseded; a gap answered; the binding; the deep check),
/// so what a fact changes in a unit's record is decided here and nowhere else. The changes wait
/// in the store until `commit`, which writes them in one SQLite transaction.
package struct StateRecorder: Sendable {
    private let store: ManifestStore

    package init(_ store: ManifestStore) { self.store = store }

    // MARK: - A state at rest (commands between runs), under the job's lock

    /// Units dropped from the state (`forget`).
    package static func forget(ids: [String], manifest: String) throws {
        try change(manifest) { try $0.delete(ids) }
    }

    /// Done units whose archives were re-published (`status --check-remote`): their listing
    /// fingerprints are cleared, so the next run lists their keys even between deep checks and
    /// re-imports them.
    package static func republished(ids: [String], manifest: String) throws {
        try change(manifest) { try $0.clearListings(ids) }
    }

    /// A key rebuilt (`rebuild`): under the job's lock, its units that wrote rows (done, or
    /// writing) become `writing` (listing forgotten), then `destroy` removes the key from the target. A crash between the two leaves
    /// units the next run reconciles against what the key still holds, never units called done
    /// whose rows are gone.
    package static func rebuilding(ids: [String], manifest: String, destroy: () async throws -> Void) async throws {
        let lock = try JobLock(manifest: manifest)
        defer { _ = lock }
        try change(manifest, locked: false) { try $0.markWriting(ids) }
        try await destroy()
    }

    private static func change(_ manifest: String, locked: Bool = true, _ body: (StateDatabase) throws -> Void) throws {
        if locked {
            let lock = try JobLock(manifest: manifest)
            defer { _ = lock }
            return try change(manifest, locked: false, body)
        }
        let database = Manifest.databasePath(manifest)
        guard StateDatabase.isDatabase(database) else { throw JobFileError(file: database, key: "", reason: "no state database to change (run the job first)") }
        try body(try StateDatabase(path: database, create: true, job: nil))
    }

    // MARK: - What a run did

    /// The target and schema the state is bound to, with the next commit.
    package func bind(_ binding: StateBinding) async { await store.bind(binding) }

    /// The day (its UTC midnight, s) a deep check looked at every period again.
    package func deepChecked(day: Int64) async { await store.setMeta(Self.deepCheckMetaName, "\(day)") }
    package static let deepCheckMetaName = "deep_checked_day"

    /// A done unit's archive listed with a new fingerprint and found unchanged (same CHECKSUM).
    package func listingRefreshed(_ id: String, listing: String?) async { await store.update(id) { $0.listing = listing } }

    /// A period with no archive (not listed, or a 404 for a listed one: `listing` nil).
    package func notPublished(_ id: String, key: String, listing: String?) async {
        await store.update(id, key: key) {
            $0.status = .notPublished
            $0.listing = listing
            $0.error = nil
            $0.updatedAt = isoNow()
        }
    }

    /// A unit that failed, with why. A done unit stays done: its rows are still in the target, and
    /// a re-import that failed, a refused write or a listing that failed this time do not undo them.
    /// A `writing` unit stays so: some of its rows may be in an append-only target.
    package func failed(_ id: String, key: String, _ message: String) async {
        await store.update(id, key: key) {
            if $0.status != .done && $0.status != .writing { $0.status = .failed }
            $0.error = message
            $0.attempts += 1
            $0.updatedAt = isoNow()
        }
    }

    /// Rows of an append-only unit (trades) are about to be sent: until it is done, the next run
    /// reconciles it rather than sending it again. Committed before the request (the writer forces it).
    package func writing(_ id: String, key: String) async {
        await store.update(id, key: key) {
            $0.status = .writing
            $0.updatedAt = isoNow()
        }
    }

    /// A unit whose rows the target acknowledged.
    package func written(_ id: String, key: String, _ unit: WrittenUnit) async {
        await store.update(id, key: key) {
            // A re-published archive imported again: the version it replaces is kept (provenance).
            if $0.doneAt != nil, let old = $0.sha256, let new = unit.sha256, old != new {
                $0.history = ($0.history ?? []) + [UnitRecord.Earlier(sha256: old, listing: $0.listing, rows: $0.rows, doneAt: $0.doneAt, replacedAt: isoNow())]
            }
            $0.archivePath = unit.archivePath
            $0.sha256 = unit.sha256
            $0.listing = unit.listing
            $0.verified = unit.verified
            $0.coveredTo = unit.coveredTo
            if unit.continues && $0.status == .done {
                // A REST day continued: the earlier candles stay recorded with these.
                $0.rows = ($0.rows ?? 0) + unit.rows
                $0.firstEpoch = [$0.firstEpoch, unit.firstEpoch].compactMap { $0 }.min()
                $0.lastEpoch = [$0.lastEpoch, unit.lastEpoch].compactMap { $0 }.max()
                $0.digests = ColumnDigest.adding(unit.digests, to: $0.digests)
            } else {
                $0.rows = unit.rows
                $0.firstEpoch = unit.firstEpoch
                $0.lastEpoch = unit.lastEpoch
                $0.digests = unit.digests
            }
            $0.status = .done
            $0.lacking = unit.daysLacking.isEmpty ? nil : unit.daysLacking
            ($0.firstID, $0.lastID, $0.idHoles) = (unit.firstID, unit.lastID, unit.idHoles.isEmpty ? nil : unit.idHoles)
            if let run = unit.streamed {
                // Appended to the last run when it follows on (its next open time at most one step on).
                var runs = $0.streamed ?? []
                if let last = runs.last, last.count == 2, run.first >= last[0], run.first <= last[1] + run.step {
                    runs[runs.count - 1][1] = max(last[1], run.last)
                } else {
                    runs.append([run.first, run.last])
                }
                $0.streamed = runs
            }
            $0.anomalies = unit.anomalies.isEmpty ? nil : unit.anomalies
            $0.attempts += 1
            $0.error = nil
            $0.doneAt = isoNow()
            $0.updatedAt = $0.doneAt
        }
    }

    /// The gaps `unit` leaves from now on (none: it leaves none).
    package func gaps(of unit: String, _ records: [GapRecord]) async { await store.setGaps(unit: unit, records) }

    /// A unit whose period another one now holds (daily archives under their monthly, REST days
    /// under their archive): its gaps are the other's to say.
    package func superseded(_ id: String) async {
        await store.update(id) {
            $0.status = .superseded
            $0.error = nil
            $0.updatedAt = isoNow()
        }
        await store.setGaps(unit: id, [])
    }

    /// A gap's new state (REST's answer).
    package func gapAnswered(_ record: GapRecord) async { await store.updateGap(record) }

    /// Writes what waits when the store's commit interval has passed, or always with `force`.
    package func commit(force: Bool = false) async throws { try await store.commit(force: force) }

    /// The end of a run: everything committed, the write-ahead log folded into the database.
    package func close() async throws { try await store.close() }
}

/// What the state records of a unit whose rows were written.
package struct WrittenUnit: Sendable {
    /// The archive read (nil for a REST unit), its verified SHA-256 and listing fingerprint.
    package var archivePath: String?
    package var sha256: String?
    package var listing: String?
    package var verified: Bool
    /// A REST unit: the open time of the last closed candle covered.
    package var coveredTo: Int64?
    /// A REST day continued after an earlier run's candles: its rows add to the recorded ones.
    package var continues: Bool
    package var rows: Int
    package var firstEpoch: Int64?
    package var lastEpoch: Int64?
    /// Per-column digests (`ColumnDigest.hex`).
    package var digests: [String: String]
    package var daysLacking: [String]
    package var anomalies: [String: Int]
    /// Trades: the unit's first and last ID.
    package var firstID: Int64?
    package var lastID: Int64?
    /// Trades: the IDs missing inside the archive ([first, last, second before, second after]).
    package var idHoles: [[Int64]] = []
    /// `follow`: the open times written from the live stream, and the interval's step.
    package var streamed: (first: Int64, last: Int64, step: Int64)?

    package init(archivePath: String?, sha256: String?, listing: String?, verified: Bool, coveredTo: Int64?, continues: Bool,
                 rows: Int, firstEpoch: Int64?, lastEpoch: Int64?, digests: [String: String], daysLacking: [String], anomalies: [String: Int]) {
        (self.archivePath, self.sha256, self.listing, self.verified) = (archivePath, sha256, listing, verified)
        (self.coveredTo, self.continues, self.rows, self.firstEpoch, self.lastEpoch) = (coveredTo, continues, rows, firstEpoch, lastEpoch)
        (self.digests, self.daysLacking, self.anomalies) = (digests, daysLacking, anomalies)
    }
}

extension StateRecorder {
    /// Reads of the state, with what waits for the next commit: the pipeline's stages read and
    /// record through the same value, and only the methods above write.
    package var path: String { store.path }
    package func index() async -> [String: UnitIndexEntry] { await store.currentIndex() }
    package func entry(_ id: String) async -> UnitIndexEntry? { await store.entry(id) }
    package func record(_ id: String) async -> UnitRecord? { await store.record(id) }
    package func gaps() async throws -> [GapRecord] { try await store.gaps() }
    package func binding() async throws -> StateBinding? { try await store.binding() }
    package func deepCheckedDay() async throws -> Int64? { try await store.meta(Self.deepCheckMetaName).flatMap { Int64($0) } }
}
