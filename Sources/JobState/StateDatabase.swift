import Columnar
import DurableFiles
import Foundation
import JobModel

/// The job's state: a SQLite database (WAL journal, synchronous=FULL), one row per unit in
/// `units`, the job's name and the format's version in `meta`. A commit is durable when it
/// returns; a crash keeps the last commit whole. `sqlite3 state/x.manifest.db 'select status,
/// count(*) from units group by status'` reads it by hand.
///
/// Columns are the unit record's fields; `digests` and `anomalies` hold small JSON objects.
package final class StateDatabase {
    package static let schema = """
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS units (
            id TEXT PRIMARY KEY, key TEXT NOT NULL, status TEXT NOT NULL, remote_path TEXT NOT NULL,
            archive_path TEXT, sha256 TEXT, listing TEXT, verified INTEGER NOT NULL, rows INTEGER,
            first_epoch INTEGER, last_epoch INTEGER, digests TEXT, anomalies TEXT,
            attempts INTEGER NOT NULL, error TEXT, updated_at TEXT, done_at TEXT, covered_to INTEGER, lacking TEXT,
            first_id INTEGER, last_id INTEGER, id_holes TEXT, history TEXT, streamed TEXT
        ) WITHOUT ROWID;
        """
    package static let columns = "id, key, status, remote_path, archive_path, sha256, listing, verified, rows, first_epoch, " +
        "last_epoch, digests, anomalies, attempts, error, updated_at, done_at, covered_to, lacking, first_id, last_id, id_holes, history, streamed"
    /// The gaps in the archives of each key: slots no archive holds, and what REST said of them.
    package static let gapsSchema = """
        CREATE TABLE IF NOT EXISTS gaps (
            key TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, state TEXT NOT NULL, rows INTEGER,
            unit TEXT NOT NULL, PRIMARY KEY (key, first)
        ) WITHOUT ROWID;
        """
    /// Columns added after the first release of the database, with their type: a run adds them to
    /// an older file; a reader of a file it may not change reads them as NULL.
    package static let addedColumns = [("lacking", "TEXT"), ("first_id", "INTEGER"), ("last_id", "INTEGER"), ("id_holes", "TEXT"), ("history", "TEXT"), ("streamed", "TEXT")]
    /// What the SELECTs read: `columns`, with NULL for an added column the file lacks.
    private let selected: String
    /// False in a file of an earlier release opened read-only (no gaps recorded there).
    private let hasGaps: Bool

    package let db: SQLiteDatabase
    /// Prepared on the first write: a reader of a file it may not change never needs it.
    private var upsertStatement: SQLiteStatement?
    private let selectOne: SQLiteStatement
    /// For the small JSON columns (digests, anomalies): made once, not per record.
    private let encoder = JSONEncoder()
    private let decoder = JSONDecoder()

    /// A state database at `path`: a file that is not the JSON of an earlier release (SQLite
    /// itself says whether it is a database; an empty file is one, as a first commit that failed
    /// on a full disk leaves it).
    package static func isDatabase(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path) && !isLegacyJSON(path)
    }

    /// The JSON manifest of an earlier release: a file that starts with `{`.
    package static func isLegacyJSON(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 64)) ?? Data()
        return head.first { ![0x20, 0x0A, 0x0D, 0x09].contains($0) } == UInt8(ascii: "{")
    }

    /// Opens the database at `path`; `create` makes it (and its schema) when it is missing, and
    /// is what a run does; readers (`status`, `verify`) only open what exists.
    package init(path: String, create: Bool, job: String? = nil, walJournal: Bool = true) throws {
        let writable = create || access(path, W_OK) == 0
        let db = try SQLiteDatabase(path: path, mode: create ? .readWriteCreate : writable ? .readWrite : .readOnly)
        if create {
            try db.execute("PRAGMA journal_mode=\(walJournal ? "WAL" : "DELETE"); PRAGMA synchronous=FULL;")
            try db.execute(Self.schema)
            try db.transaction {
                let meta = try db.prepare("INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)")
                for (name, value) in [("version", "\(Manifest.currentVersion)"), ("job", job ?? "")] {
                    try meta.bind(1, name)
                    try meta.bind(2, value)
                    try meta.step()
                }
            }
        }
        // A database SQLite cannot read says so (not "version unknown"): only a missing or
        // unparsable version row is the version's problem.
        let version = try db.text("SELECT value FROM meta WHERE name = 'version'").flatMap { Int($0) }
        guard let version, version <= Manifest.currentVersion else {
            throw JobFileError(file: path, key: "", reason: "state version \(version.map(String.init) ?? "unknown") is not one this binary reads (\(Manifest.currentVersion)); move the file away to start over")
        }
        var present = Set<String>()
        let info = try db.prepare("PRAGMA table_info(units)")
        while try info.step() { if let name = info.text(1) { present.insert(name) } }
        var selected = Self.columns
        for (name, type) in Self.addedColumns where !present.contains(name) {
            if writable {
                try db.execute("ALTER TABLE units ADD COLUMN \(name) \(type)")
            } else {
                selected = selected.replacingOccurrences(of: ", \(name)", with: ", NULL")
            }
        }
        if writable { try db.execute(Self.gapsSchema) }
        hasGaps = try db.text("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'gaps'") != nil
        self.selected = selected
        self.db = db
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        selectOne = try db.prepare("SELECT \(selected) FROM units WHERE id = ?")
    }

    /// Runs `body` in one transaction of the database (see `SQLiteDatabase.transaction`).
    package func transaction<T>(_ body: () throws -> T) throws -> T { try db.transaction(body) }

    package func job() throws -> String? { try db.text("SELECT value FROM meta WHERE name = 'job'") }

    /// The target and schema the done units were written to; nil for a state that records none
    /// (new, or written by an earlier release).
    package func binding() throws -> StateBinding? {
        guard let target = try db.text("SELECT value FROM meta WHERE name = 'target'"),
              let schema = try db.text("SELECT value FROM meta WHERE name = 'schema'") else { return nil }
        return StateBinding(target: target, schema: schema)
    }

    package func bind(_ binding: StateBinding) throws { try setMeta(["target": binding.target, "schema": binding.schema]) }

    /// A value of the `meta` table (the job's name, its binding, the day of the last deep check).
    package func meta(_ name: String) throws -> String? {
        let statement = try db.prepare("SELECT value FROM meta WHERE name = ?")
        try statement.bind(1, name)
        return try statement.step() ? statement.text(0) : nil
    }

    package func allMeta() throws -> [String: String] {
        let statement = try db.prepare("SELECT name, value FROM meta")
        var values: [String: String] = [:]
        while try statement.step() { values[statement.text(0) ?? ""] = statement.text(1) }
        return values
    }

    package func setMeta(_ values: [String: String]) throws {
        try db.transaction {
            let meta = try db.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)")
            for (name, value) in values.sorted(by: { $0.key < $1.key }) {
                try meta.bind(1, name)
                try meta.bind(2, value)
                try meta.step()
                meta.reset()
            }
        }
    }

    /// Writes `records` in one transaction (one fsync of the write-ahead log).
    package func write<C: Collection>(_ records: C) throws where C.Element == UnitRecord {
        guard !records.isEmpty else { return }
        if upsertStatement == nil { upsertStatement = try db.prepare("INSERT OR REPLACE INTO units (\(Self.columns)) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)") }
        guard let upsert = upsertStatement else { return }
        try db.transaction {
            for r in records {
                try upsert.bind(1, r.id); try upsert.bind(2, r.key); try upsert.bind(3, r.status.rawValue); try upsert.bind(4, r.remotePath)
                try upsert.bind(5, r.archivePath); try upsert.bind(6, r.sha256); try upsert.bind(7, r.listing); try upsert.bind(8, Int64(r.verified ? 1 : 0))
                try upsert.bind(9, r.rows.map(Int64.init)); try upsert.bind(10, r.firstEpoch); try upsert.bind(11, r.lastEpoch)
                try upsert.bind(12, try r.digests.map(json)); try upsert.bind(13, try r.anomalies.map(json))
                try upsert.bind(14, Int64(r.attempts)); try upsert.bind(15, r.error); try upsert.bind(16, r.updatedAt); try upsert.bind(17, r.doneAt); try upsert.bind(18, r.coveredTo)
                try upsert.bind(19, try r.lacking.map(json)); try upsert.bind(20, r.firstID); try upsert.bind(21, r.lastID)
                try upsert.bind(22, try r.idHoles.map(json)); try upsert.bind(23, try r.history.map(json))
                try upsert.bind(24, try r.streamed.map(json))
                try upsert.step()
            }
        }
    }

    /// Every gap recorded, by key and first slot.
    package func gaps() throws -> [GapRecord] {
        guard hasGaps else { return [] }
        let all = try db.prepare("SELECT key, first, last, state, rows, unit FROM gaps ORDER BY key, first")
        var out: [GapRecord] = []
        while try all.step() {
            guard let key = all.text(0), let first = all.int(1), let last = all.int(2), let state = all.text(3).flatMap(GapRecord.State.init(rawValue:)),
                  let unit = all.text(5) else { throw corrupt("a gap row without key, range, state or unit") }
            out.append(GapRecord(key: key, first: first, last: last, state: state, rows: all.int(4).map(Int.init), unit: unit))
        }
        return out
    }

    /// The gaps of `units` replaced by `records` (a unit imported again has the gaps it has now;
    /// one superseded has none), and `updates` written over, in one transaction.
    package func writeGaps(replacing units: [String: [GapRecord]], updates: [GapRecord]) throws {
        try db.transaction {
            let delete = try db.prepare("DELETE FROM gaps WHERE unit = ?")
            let insert = try db.prepare("INSERT OR REPLACE INTO gaps (key, first, last, state, rows, unit) VALUES (?, ?, ?, ?, ?, ?)")
            for (unit, records) in units.sorted(by: { $0.key < $1.key }) {
                try delete.bind(1, unit)
                _ = try delete.step()
                delete.reset()
                for r in records { try insertGap(insert, r) }
            }
            for r in updates { try insertGap(insert, r) }
        }
    }

    private func insertGap(_ insert: SQLiteStatement, _ r: GapRecord) throws {
        try insert.bind(1, r.key); try insert.bind(2, r.first); try insert.bind(3, r.last); try insert.bind(4, r.state.rawValue)
        try insert.bind(5, r.rows.map(Int64.init)); try insert.bind(6, r.unit)
        _ = try insert.step()
        insert.reset()
    }

    /// Forgets the listing fingerprints of `ids` (re-published archives that `status
    /// --check-remote` found): the next run lists their keys and re-imports them.
    package func clearListings(_ ids: [String]) throws { try forEachID("UPDATE units SET listing = NULL WHERE id = ?", ids) }

    /// Marks `ids` as `writing` (`rebuild`): the next run reconciles them against what the
    /// target holds, which is nothing once their key is destroyed.
    package func markWriting(_ ids: [String]) throws { try forEachID("UPDATE units SET status = 'writing', listing = NULL WHERE id = ?", ids) }

    /// Removes the units `ids` (`forget`), in one transaction.
    package func delete(_ ids: [String]) throws { try forEachID("DELETE FROM units WHERE id = ?", ids) }

    /// `sql`, whose one parameter is a unit's id, for each of `ids` in one transaction.
    private func forEachID(_ sql: String, _ ids: [String]) throws {
        try db.transaction {
            let statement = try db.prepare(sql)
            for id in ids {
                try statement.bind(1, id)
                _ = try statement.step()
                statement.reset()
            }
        }
    }

    package func record(_ id: String) throws -> UnitRecord? {
        try selectOne.bind(1, id)
        defer { selectOne.reset() }
        return try selectOne.step() ? try record(selectOne) : nil
    }

    package func allRecords() throws -> [UnitRecord] {
        let all = try db.prepare("SELECT \(selected) FROM units ORDER BY id")
        var records: [UnitRecord] = []
        while try all.step() { records.append(try record(all)) }
        return records
    }

    /// Every unit's status and listing fingerprint: what a run decides with, without whole records.
    package func index() throws -> [String: UnitIndexEntry] {
        let lacking = selected.contains(", lacking") ? "lacking" : "NULL"
        let all = try db.prepare("SELECT id, status, listing, \(lacking) FROM units")
        var index: [String: UnitIndexEntry] = [:]
        while try all.step() {
            guard let id = all.text(0), let status = all.text(1).flatMap(UnitRecord.Status.init(rawValue:)) else { throw corrupt("a unit row without id or status") }
            index[id] = UnitIndexEntry(status: status, listing: all.text(2),
                                       lacking: try all.text(3).map { try decoder.decode([String].self, from: Data($0.utf8)) })
        }
        return index
    }

    /// Moves the write-ahead log into the database file and empties it, so that the database
    /// file alone holds the state between runs.
    package func checkpoint() throws { try db.execute("PRAGMA wal_checkpoint(TRUNCATE)") }

    private func record(_ s: SQLiteStatement) throws -> UnitRecord {
        guard let id = s.text(0), let key = s.text(1), let status = s.text(2).flatMap(UnitRecord.Status.init(rawValue:)), let remotePath = s.text(3) else {
            throw JobFileError(file: "", key: "", reason: "a unit row without id, key, status or remote path")
        }
        var r = UnitRecord(id: id, status: status, key: key, remotePath: remotePath)
        r.archivePath = s.text(4); r.sha256 = s.text(5); r.listing = s.text(6); r.verified = s.int(7) == 1
        r.rows = s.int(8).map(Int.init); r.firstEpoch = s.int(9); r.lastEpoch = s.int(10)
        r.digests = try s.text(11).map { try decoder.decode([String: String].self, from: Data($0.utf8)) }
        r.anomalies = try s.text(12).map { try decoder.decode([String: Int].self, from: Data($0.utf8)) }
        r.attempts = Int(s.int(13) ?? 0); r.error = s.text(14); r.updatedAt = s.text(15); r.doneAt = s.text(16); r.coveredTo = s.int(17)
        r.lacking = try s.text(18).map { try decoder.decode([String].self, from: Data($0.utf8)) }
        r.firstID = s.int(19); r.lastID = s.int(20)
        r.idHoles = try s.text(21).map { try decoder.decode([[Int64]].self, from: Data($0.utf8)) }
        r.history = try s.text(22).map { try decoder.decode([UnitRecord.Earlier].self, from: Data($0.utf8)) }
        r.streamed = try s.text(23).map { try decoder.decode([[Int64]].self, from: Data($0.utf8)) }
        return r
    }

    private func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private func corrupt(_ what: String) -> JobFileError {
        JobFileError(file: db.path, key: "", reason: "\(what); move the file away to start over")
    }
}

/// A gap of a key: open times [first, last] (UTC s) that no archive holds; `unit` is the unit
/// whose archive lacks them (or the day no archive has).
public struct GapRecord: Codable, Equatable, Sendable {
    public enum State: String, Codable, Sendable {
        /// Not asked of REST (`gaps: rest` is off, or REST did not answer).
        case unexplained
        /// REST had klines for it: written as a REST gap unit.
        case filled
        /// REST confirmed it empty: the exchange had no trading (maintenance, a suspension).
        case exchangeGap = "exchange_gap"
    }
    public var key: String
    public var first: Int64
    public var last: Int64
    public var state: State
    /// Klines REST filled it with.
    public var rows: Int?
    public var unit: String

    /// "2024-03-10T02:00:00Z..2024-03-10T03:00:00Z exchange_gap" (or "... filled (1 kline)").
    public var summary: String {
        let range = first == last ? UTCCalendar.iso8601(first) : "\(UTCCalendar.iso8601(first))..\(UTCCalendar.iso8601(last))"
        return range + " " + state.rawValue + (rows.map { " (\($0) kline\($0 == 1 ? "" : "s"))" } ?? "")
    }

    public init(key: String, first: Int64, last: Int64, state: State, rows: Int? = nil, unit: String) {
        (self.key, self.first, self.last, self.state, self.rows, self.unit) = (key, first, last, state, rows, unit)
    }
}

/// What a state's done units are true of: the target they were written to (a directory's
/// absolute path, or the server's URL without credentials) and the schema (columns, type,
/// attribute group). A run with another target or schema is refused unless forced.
public struct StateBinding: Equatable, Sendable, CustomStringConvertible {
    public var target: String
    public var schema: String

    public init(target: String, schema: String) {
        self.target = target
        self.schema = schema
    }

    public init(_ spec: JobSpec) {
        target = spec.target.normalized
        schema = spec.dataset.schema(of: spec)
    }

    public var description: String { "target \(target) (\(schema))" }
}

/// What a run needs of each unit to decide: its status and listing fingerprint, and for a
/// monthly archive with holes the days it lacks.
package struct UnitIndexEntry: Sendable, Equatable {
    package var status: UnitRecord.Status
    package var listing: String?
    package var lacking: [String]? = nil

    package init(status: UnitRecord.Status, listing: String?, lacking: [String]? = nil) {
        (self.status, self.listing, self.lacking) = (status, listing, lacking)
    }
}
