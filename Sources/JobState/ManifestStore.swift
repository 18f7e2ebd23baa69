import Columnar
import DurableFiles
import Foundation
import JobModel

/// The state during a run, shared by the pipeline's stages. Memory holds an index (status and
/// fingerprint per unit) and the records changed since the last commit, not every record.
/// `commit` writes the changes in one transaction; the writer calls it after each acknowledged
/// request, and it commits when `commitInterval` has passed (group commit: one fsync for many
/// units); `update` commits when `maxPending` changes wait. A crash loses at most the changes of the last interval: those
/// units are imported again by the next run, which fixed-length slots make idempotent.
package actor ManifestStore {
    package let path: String
    package let job: String
    /// nil until the first commit of a job that has no state yet.
    private var database: StateDatabase?
    private var index: [String: UnitIndexEntry]
    private var pending: [String: UnitRecord] = [:]
    private var pendingBinding: StateBinding?
    private var pendingMeta: [String: String] = [:]
    private var pendingGaps: [String: [GapRecord]] = [:]
    /// The units that have gaps recorded (few): only they need their gaps cleared.
    private var unitsWithGaps: Set<String>
    private var pendingGapUpdates: [GapRecord] = []
    /// A record that could not be read back, or a commit made by `update` that failed; reported
    /// by the next `commit`.
    private var deferredError: Error?
    private var lastCommit = ContinuousClock.now
    package let commitInterval: Duration
    package static let maxPending = 4096

    /// Opens the state of the job whose `manifest:` path is `manifest` for a run. When there is
    /// no database yet but the JSON manifest of an earlier release, its records are carried into
    /// a new database first (built aside and renamed into place, so a crash leaves one or the
    /// other whole); the JSON files are then kept as `<file>.migrated`. `inMemory` (a dry run)
    /// reads the state into a database in memory and touches no file.
    package static func open(manifest: String, job: String, inMemory: Bool = false, commitInterval: Duration = .milliseconds(250),
                     log: (String) -> Void = { _ in }) throws -> ManifestStore {
        let path = Manifest.databasePath(manifest)
        if inMemory {
            let db = try StateDatabase(path: ":memory:", create: true, job: job, walJournal: false)
            try db.write(try Manifest.load(path: manifest, job: job).units.values)
            // The binding and the rest of the run's memory (the last deep check): a dry run
            // plans exactly what the run would.
            if StateDatabase.isDatabase(path) { try db.setMeta(try StateDatabase(path: path, create: false).allMeta()) }
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
        self.unitsWithGaps = Set(try database?.gaps().map(\.unit) ?? [])
        self.commitInterval = commitInterval
    }

    /// The binding the state records (see `StateBinding`).
    package func binding() throws -> StateBinding? { try database?.binding() ?? pendingBinding }

    /// Records the binding with the next commit (a state with nothing to commit stays unwritten).
    func bind(_ binding: StateBinding) { pendingBinding = binding }

    /// A value of the state's `meta` table, with what waits for the next commit.
    package func meta(_ name: String) throws -> String? { try pendingMeta[name] ?? database?.meta(name) }

    /// Sets a `meta` value with the next commit.
    func setMeta(_ name: String, _ value: String) { pendingMeta[name] = value }

    /// The gaps of `unit` from the next commit on (none: it has none now). A unit without gaps,
    /// before or now, writes nothing: most units have none, and a statement per unit showed.
    func setGaps(unit: String, _ records: [GapRecord]) {
        if records.isEmpty && !unitsWithGaps.contains(unit) { return }
        if records.isEmpty { unitsWithGaps.remove(unit) } else { unitsWithGaps.insert(unit) }
        pendingGaps[unit] = records
    }

    /// A gap's new state (REST's answer), with the next commit.
    func updateGap(_ record: GapRecord) { pendingGapUpdates.append(record) }

    /// Every gap recorded (commit first to include this run's).
    package func gaps() throws -> [GapRecord] { try database?.gaps() ?? [] }

    /// Every unit's status and fingerprint, with the changes not yet committed.
    package func currentIndex() -> [String: UnitIndexEntry] { index }

    package func entry(_ id: String) -> UnitIndexEntry? { index[id] }

    package func record(_ id: String) -> UnitRecord? {
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
        index[id] = UnitIndexEntry(status: record.status, listing: record.listing, lacking: record.lacking)
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
        guard !pending.isEmpty || pendingBinding != nil || !pendingMeta.isEmpty || !pendingGaps.isEmpty || !pendingGapUpdates.isEmpty else { return }
        do {
            if database == nil { database = try Self.create(path: path, job: job) }
            guard let database else { return }
            // One transaction: the records, the binding, the run's memory and the gaps are
            // written together or not at all.
            try database.transaction {
                try database.write(pending.values)
                if let binding = pendingBinding { try database.bind(binding) }
                if !pendingMeta.isEmpty { try database.setMeta(pendingMeta) }
                if !pendingGaps.isEmpty || !pendingGapUpdates.isEmpty { try database.writeGaps(replacing: pendingGaps, updates: pendingGapUpdates) }
            }
            pendingBinding = nil
            pendingMeta = [:]
            (pendingGaps, pendingGapUpdates) = ([:], [])
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

