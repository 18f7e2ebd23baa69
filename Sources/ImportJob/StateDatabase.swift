import Foundation
import MarketStoreDirectory

/// The job's state: a SQLite database (WAL journal, synchronous=FULL), one row per unit in
/// `units`, the job's name and the format's version in `meta`. A commit is durable when it
/// returns; a crash keeps the last commit whole. `sqlite3 state/x.manifest.db 'select status,
/// count(*) from units group by status'` reads it by hand.
///
/// Columns are the unit record's fields; `digests` and `anomalies` hold small JSON objects.
final class StateDatabase {
    static let schema = """
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS units (
            id TEXT PRIMARY KEY, key TEXT NOT NULL, status TEXT NOT NULL, remote_path TEXT NOT NULL,
            archive_path TEXT, sha256 TEXT, listing TEXT, verified INTEGER NOT NULL, rows INTEGER,
            first_epoch INTEGER, last_epoch INTEGER, digests TEXT, anomalies TEXT,
            attempts INTEGER NOT NULL, error TEXT, updated_at TEXT, done_at TEXT, covered_to INTEGER
        ) WITHOUT ROWID;
        """
    static let columns = "id, key, status, remote_path, archive_path, sha256, listing, verified, rows, first_epoch, " +
        "last_epoch, digests, anomalies, attempts, error, updated_at, done_at, covered_to"

    let db: SQLiteDatabase
    private let upsert: SQLiteStatement
    private let selectOne: SQLiteStatement
    /// For the small JSON columns (digests, anomalies): made once, not per record.
    private let encoder = JSONEncoder()
    private let decoder = JSONDecoder()

    /// A state database at `path`: a file that is not the JSON of an earlier release (SQLite
    /// itself says whether it is a database; an empty file is one, as a first commit that failed
    /// on a full disk leaves it).
    static func isDatabase(_ path: String) -> Bool {
        FileManager.default.fileExists(atPath: path) && !isLegacyJSON(path)
    }

    /// The JSON manifest of an earlier release: a file that starts with `{`.
    static func isLegacyJSON(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 64)) ?? Data()
        return head.first { ![0x20, 0x0A, 0x0D, 0x09].contains($0) } == UInt8(ascii: "{")
    }

    /// Opens the database at `path`; `create` makes it (and its schema) when it is missing, and
    /// is what a run does; readers (`status`, `verify`) only open what exists.
    init(path: String, create: Bool, job: String? = nil, walJournal: Bool = true) throws {
        let db = try SQLiteDatabase(path: path, mode: create ? .readWriteCreate : access(path, W_OK) == 0 ? .readWrite : .readOnly)
        if create {
            try db.execute("PRAGMA journal_mode=\(walJournal ? "WAL" : "DELETE"); PRAGMA synchronous=FULL;")
            try db.execute(Self.schema)
            try db.transaction {
                let meta = try db.prepare("INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)")
                for (name, value) in [("version", "\(Manifest.currentVersion)"), ("job", job ?? "")] {
                    meta.bind(1, name)
                    meta.bind(2, value)
                    try meta.step()
                }
            }
        }
        let version = try? db.text("SELECT value FROM meta WHERE name = 'version'").flatMap { Int($0) }
        guard let version, version <= Manifest.currentVersion else {
            throw JobFileError(file: path, key: "", reason: "state version \(version.map(String.init) ?? "unknown") is not one this binary reads (\(Manifest.currentVersion)); move the file away to start over")
        }
        self.db = db
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        upsert = try db.prepare("INSERT OR REPLACE INTO units (\(Self.columns)) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
        selectOne = try db.prepare("SELECT \(Self.columns) FROM units WHERE id = ?")
    }

    func job() throws -> String? { try db.text("SELECT value FROM meta WHERE name = 'job'") }

    /// Writes `records` in one transaction (one fsync of the write-ahead log).
    func write<C: Collection>(_ records: C) throws where C.Element == UnitRecord {
        guard !records.isEmpty else { return }
        try db.transaction {
            for r in records {
                upsert.bind(1, r.id); upsert.bind(2, r.key); upsert.bind(3, r.status.rawValue); upsert.bind(4, r.remotePath)
                upsert.bind(5, r.archivePath); upsert.bind(6, r.sha256); upsert.bind(7, r.listing); upsert.bind(8, Int64(r.verified ? 1 : 0))
                upsert.bind(9, r.rows.map(Int64.init)); upsert.bind(10, r.firstEpoch); upsert.bind(11, r.lastEpoch)
                upsert.bind(12, try r.digests.map(json)); upsert.bind(13, try r.anomalies.map(json))
                upsert.bind(14, Int64(r.attempts)); upsert.bind(15, r.error); upsert.bind(16, r.updatedAt); upsert.bind(17, r.doneAt); upsert.bind(18, r.coveredTo)
                try upsert.step()
            }
        }
    }

    func record(_ id: String) throws -> UnitRecord? {
        selectOne.bind(1, id)
        defer { selectOne.reset() }
        return try selectOne.step() ? try record(selectOne) : nil
    }

    func allRecords() throws -> [UnitRecord] {
        let all = try db.prepare("SELECT \(Self.columns) FROM units ORDER BY id")
        var records: [UnitRecord] = []
        while try all.step() { records.append(try record(all)) }
        return records
    }

    /// Every unit's status and listing fingerprint: what a run decides with, without whole records.
    func index() throws -> [String: UnitIndexEntry] {
        let all = try db.prepare("SELECT id, status, listing FROM units")
        var index: [String: UnitIndexEntry] = [:]
        while try all.step() {
            guard let id = all.text(0), let status = all.text(1).flatMap(UnitRecord.Status.init(rawValue:)) else { throw corrupt("a unit row without id or status") }
            index[id] = UnitIndexEntry(status: status, listing: all.text(2))
        }
        return index
    }

    /// Moves the write-ahead log into the database file and empties it, so that the database
    /// file alone holds the state between runs.
    func checkpoint() throws { try db.execute("PRAGMA wal_checkpoint(TRUNCATE)") }

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
        return r
    }

    private func json<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    private func corrupt(_ what: String) -> JobFileError {
        JobFileError(file: db.path, key: "", reason: "\(what); move the file away to start over")
    }
}

/// What a run needs of each unit to decide: its status and listing fingerprint.
struct UnitIndexEntry: Sendable, Equatable {
    var status: UnitRecord.Status
    var listing: String?
}

/// The state during a run, shared by the pipeline's stages. Memory holds an index (status and
/// fingerprint per unit) and the records changed since the last commit, not every record.
/// `commit` writes the changes in one transaction; the writer calls it after each acknowledged
/// request, and it commits when `commitInterval` has passed (group commit: one fsync for many
/// units); `update` commits when `maxPending` changes wait. A crash loses at most the changes of the last interval: those
/// units are imported again by the next run, which fixed-length slots make idempotent.
actor ManifestStore {
    let path: String
    let job: String
    /// nil until the first commit of a job that has no state yet.
    private var database: StateDatabase?
    private var index: [String: UnitIndexEntry]
    private var pending: [String: UnitRecord] = [:]
    /// A record that could not be read back, or a commit made by `update` that failed; reported
    /// by the next `commit`.
    private var deferredError: Error?
    private var lastCommit = ContinuousClock.now
    let commitInterval: Duration
    static let maxPending = 4096

    /// Opens the state of the job whose `manifest:` path is `manifest` for a run. When there is
    /// no database yet but the JSON manifest of an earlier release, its records are carried into
    /// a new database first (built aside and renamed into place, so a crash leaves one or the
    /// other whole); the JSON files are then kept as `<file>.migrated`. `inMemory` (a dry run)
    /// reads the state into a database in memory and touches no file.
    static func open(manifest: String, job: String, inMemory: Bool = false, commitInterval: Duration = .milliseconds(250),
                     log: (String) -> Void = { _ in }) throws -> ManifestStore {
        let path = Manifest.databasePath(manifest)
        if inMemory {
            let db = try StateDatabase(path: ":memory:", create: true, job: job, walJournal: false)
            try db.write(try Manifest.load(path: manifest, job: job).units.values)
            return try ManifestStore(path: path, job: job, database: db, commitInterval: commitInterval)
        }
        if StateDatabase.isDatabase(path) {
            return try ManifestStore(path: path, job: job, database: create(path: path, job: job), commitInterval: commitInterval)
        }
        guard let legacy = try Manifest.loadLegacy(path: manifest, job: job) else {
            // Nothing recorded yet: the database is made by the first commit, so a run that
            // stops before doing anything (a job file error) leaves no state behind.
            return try ManifestStore(path: path, job: job, database: nil, commitInterval: commitInterval)
        }
        try carryOver(legacy, from: manifest, to: path)
        log("carried \(legacy.units.count) unit records of the version \(legacy.version) manifest \(manifest) into \(path)")
        return try ManifestStore(path: path, job: job, database: create(path: path, job: job), commitInterval: commitInterval)
    }

    /// The database at `path`, made when missing in a state folder made if needed. A new one is
    /// built aside with its schema and renamed into place, so a kill at any moment leaves either
    /// no database or a whole one (the crash trials once left a file without tables).
    private static func create(path: String, job: String) throws -> StateDatabase {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        removeStaleTemporaries(in: dir.isEmpty ? "." : dir)
        if !FileManager.default.fileExists(atPath: path) {
            let temporary = "\(path).tmp-\(getpid())"
            _ = try StateDatabase(path: temporary, create: true, job: job, walJournal: false)  // closed at once
            guard rename(temporary, path) == 0 else { throw FileWriteError(path: path, reason: "rename: \(String(cString: strerror(errno)))") }
            syncDirectory(of: path)
        }
        return try StateDatabase(path: path, create: true, job: job)
    }

    /// Builds the database beside (`<db>.tmp-<pid>`, rollback journal, so the file is whole on
    /// its own), renames it into place, then renames the JSON files away.
    private static func carryOver(_ legacy: Manifest, from manifest: String, to path: String) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        removeStaleTemporaries(in: dir.isEmpty ? "." : dir)
        do {
            let db = try StateDatabase(path: temporary, create: true, job: legacy.job, walJournal: false)
            try db.write(legacy.units.values)
        }
        let legacyPath = [manifest, path].first(where: StateDatabase.isLegacyJSON)
        if let legacyPath, legacyPath == path {
            try FileManager.default.copyItem(atPath: legacyPath, toPath: legacyPath + ".migrated")  // renamed over below
        }
        guard rename(temporary, path) == 0 else { throw FileWriteError(path: path, reason: "rename: \(String(cString: strerror(errno)))") }
        syncDirectory(of: path)
        if let legacyPath, legacyPath != path { _ = rename(legacyPath, legacyPath + ".migrated") }
        for candidate in [manifest, path] where FileManager.default.fileExists(atPath: Manifest.journalPath(candidate)) {
            _ = rename(Manifest.journalPath(candidate), Manifest.journalPath(candidate) + ".migrated")
        }
    }

    private init(path: String, job: String, database: StateDatabase?, commitInterval: Duration) throws {
        self.path = path
        self.job = job
        self.database = database
        self.index = try database?.index() ?? [:]
        self.commitInterval = commitInterval
    }

    /// Every unit's status and fingerprint, with the changes not yet committed.
    func currentIndex() -> [String: UnitIndexEntry] { index }

    func entry(_ id: String) -> UnitIndexEntry? { index[id] }

    func record(_ id: String) -> UnitRecord? {
        if let record = pending[id] { return record }
        guard index[id] != nil, let database else { return nil }
        do {
            return try database.record(id)
        } catch {
            deferredError = deferredError ?? error
            return nil
        }
    }

    func update(_ id: String, key: String? = nil, _ change: (inout UnitRecord) -> Void) {
        var record = self.record(id) ?? UnitRecord(id: id, status: .pending, key: key ?? "", remotePath: id)
        if let key { record.key = key }
        change(&record)
        pending[id] = record
        index[id] = UnitIndexEntry(status: record.status, listing: record.listing)
        if pending.count >= Self.maxPending {  // changes never pile up in memory
            do { try write() } catch { deferredError = deferredError ?? error }
        }
    }

    /// Commits the changes when `commitInterval` has passed since the last commit, or always with
    /// `force`. (`update` commits by itself when `maxPending` changes wait.)
    func commit(force: Bool = false) throws {
        if let error = deferredError {
            deferredError = nil
            throw error as? FileWriteError ?? FileWriteError(path: path, reason: "the state could not be read: \(error)")
        }
        guard force || ContinuousClock.now - lastCommit >= commitInterval else { return }
        try write()
    }

    private func write() throws {
        guard !pending.isEmpty else { return }
        do {
            if database == nil { database = try Self.create(path: path, job: job) }
            try database?.write(pending.values)
        } catch {
            throw FileWriteError(path: path, reason: "\(error)")
        }
        pending.removeAll(keepingCapacity: true)
        lastCommit = .now
    }

    /// The end of a run: everything committed, the write-ahead log folded into the database.
    func close() throws {
        try commit(force: true)
        do { try database?.checkpoint() } catch { throw FileWriteError(path: path, reason: "\(error)") }
    }
}

/// fsync of the directory holding `path`, so a rename in it is durable.
func syncDirectory(of path: String) {
    let dir = (path as NSString).deletingLastPathComponent
    let fd = open(dir.isEmpty ? "." : dir, O_RDONLY)
    if fd >= 0 { fsync(fd); close(fd) }
}
