import Foundation
import JobModel

/// One unit of work: a market x symbol x interval x period archive.
public struct UnitRecord: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable {
        case pending, done, failed
        /// HTTP 404: not published (yet).
        case notPublished = "not_published"
        /// Daily units of a month now imported from its monthly archive.
        case superseded
        /// Rows of an append-only dataset (trades) may have reached the target and the unit is
        /// not done: the next run reconciles it (reads back its IDs, writes only the missing ones).
        case writing
    }

    public var id: String
    public var status: Status
    public var key: String
    public var remotePath: String
    public var archivePath: String?
    public var sha256: String?
    /// The listing's fingerprint of the archive when it was imported (size, ETag, modification
    /// time): while it is unchanged, a re-run skips the unit without asking for its CHECKSUM.
    public var listing: String?
    public var verified: Bool = false
    public var rows: Int?
    public var firstEpoch: Int64?
    public var lastEpoch: Int64?
    /// Per-column digest of the rows as the target holds them (see `ColumnDigest`), Epoch first.
    public var digests: [String: String]?
    public var anomalies: [String: Int]?
    public var attempts: Int = 0
    public var error: String?
    public var updatedAt: String?
    public var doneAt: String?
    /// A REST unit (id `rest/...`): the open time (UTC s) of the last closed candle it covers;
    /// a later run continues after it.
    public var coveredTo: Int64?
    /// A monthly archive with holes: the UTC days (`2024-07-08`) it lacks a whole day or more of,
    /// imported from their daily archives (repair units) where those are published.
    public var lacking: [String]?
    /// Trades: the first and last trade (or aggregate trade) ID of the unit's rows.
    public var firstID: Int64?
    public var lastID: Int64?
    /// Trades: the IDs missing inside the unit's archive, as [first, last, second before, second
    /// after] (the first `TradeReport.maxListedHoles`).
    public var idHoles: [[Int64]]?
    /// Earlier versions of a re-published archive this unit was imported from, oldest first.
    public var history: [Earlier]?
    /// A REST day that `follow` continued from Binance's live streams: the [first, last] open
    /// times written from the stream (contiguous runs merged).
    public var streamed: [[Int64]]?

    /// What a unit was imported from before its archive was re-published.
    public struct Earlier: Codable, Equatable, Sendable {
        public var sha256: String?
        public var listing: String?
        public var rows: Int?
        public var doneAt: String?
        /// When the new version replaced it.
        public var replacedAt: String?
    }

    public init(id: String, status: Status, key: String, remotePath: String) {
        (self.id, self.status, self.key, self.remotePath) = (id, status, key, remotePath)
    }

    /// A day filled from REST klines, not an archive.
    public var isREST: Bool { id.hasPrefix("rest/") }

    /// A unit of a daily archive (`data/<market>/daily/...`).
    public var isDaily: Bool { remotePath.contains("/daily/") }

    /// For a daily unit, the id of its month's monthly unit, which supersedes it.
    public var monthlyID: String? { Self.monthlyID(ofDaily: remotePath) }

    /// `.../daily/.../X-1m-2024-02-03.zip` -> `.../monthly/.../X-1m-2024-02.zip`; nil for a path
    /// that is not a daily archive's. (A unit's id is its remote path.)
    public static func monthlyID(ofDaily path: String) -> String? {
        guard !path.hasPrefix("rest/"), let daily = path.range(of: "/daily/"), path.hasSuffix(".zip"), path.utf8.count > 7 else { return nil }
        return path.replacingCharacters(in: daily, with: "/monthly/").dropLast(7) + ".zip"  // drops "-DD.zip"
    }
}

/// Everything the job's state holds, in memory: what `status`, `verify` and the tests read
/// (a run works through `ManifestStore` instead, which keeps only an index in memory).
///
/// The state lives in a SQLite database (see `StateDatabase`). Earlier releases kept it as JSON:
/// version 1, a snapshot; version 2, a snapshot plus `<manifest>.journal` (one JSON record per
/// line, the last record of a unit winning, a torn last line ignored). Both are read as they are
/// and carried into the database by the next run.
public struct Manifest: Codable, Equatable, Sendable {
    public var job: String
    /// 1 and 2: the JSON files of earlier releases; 3: the SQLite database; 4: units may be
    /// `writing` and carry trade ID ranges (a release before it cannot read those).
    public var version = Manifest.currentVersion
    public var units: [String: UnitRecord] = [:]
    /// The gaps recorded (a state database; none in the JSON of earlier releases).
    public var gaps: [GapRecord]? = nil

    public static let currentVersion = 4

    public init(job: String) { self.job = job }

    /// The state database of a job's `manifest:` path. A name ending in `.json`, the JSON file of
    /// earlier releases, maps to the `.db` beside it (`x.manifest.json` -> `x.manifest.db`).
    public static func databasePath(_ manifest: String) -> String {
        manifest.hasSuffix(".json") ? String(manifest.dropLast(5)) + ".db" : manifest
    }

    public static func journalPath(_ path: String) -> String { path + ".journal" }

    /// The job's state at `manifest` (its database, or the JSON files of an earlier release that
    /// no run carried over yet; empty when there is neither), read without changing anything.
    public static func load(path manifest: String, job: String) throws -> Manifest {
        let database = databasePath(manifest)
        var size = (try? FileManager.default.attributesOfItem(atPath: database)[.size] as? Int) ?? nil
        if FileManager.default.fileExists(atPath: database + "-wal") { size = nil }  // SQLite reads the log
        if StateDatabase.isDatabase(database), size != 0 {  // empty: a first commit that failed
            let db = try StateDatabase(path: database, create: false)
            var result = Manifest(job: try db.job() ?? job)
            for record in try db.allRecords() { result.units[record.id] = record }
            result.gaps = try db.gaps()
            return result
        }
        if size == 0 { return Manifest(job: job) }
        return try loadLegacy(path: manifest, job: job) ?? Manifest(job: job)
    }

    /// The JSON manifest of an earlier release at `path` (or at the database path, where a job
    /// named its manifest `.db` already), with its journal replayed; nil when there is none.
    package static func loadLegacy(path manifest: String, job: String) throws -> Manifest? {
        let candidates = [manifest, databasePath(manifest)]
        guard let path = candidates.first(where: { StateDatabase.isLegacyJSON($0) || FileManager.default.fileExists(atPath: journalPath($0)) }) else { return nil }
        var result = Manifest(job: job)
        if FileManager.default.fileExists(atPath: path) {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            do {
                result = try Manifest.decoder().decode(Manifest.self, from: data)
            } catch {
                throw JobFileError(file: path, key: "", reason: "the manifest is not readable (\(error)); move it away to start over")
            }
            guard (1...2).contains(result.version) else {
                throw JobFileError(file: path, key: "", reason: "manifest version \(result.version) is newer than this binary reads (\(currentVersion))")
            }
        }
        let journal = journalPath(path)
        guard FileManager.default.fileExists(atPath: journal) else { return result }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: journal)))
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        let decoder = Manifest.decoder()
        for (n, line) in lines.enumerated() where !line.isEmpty {
            let complete = n < lines.count - 1  // followed by a newline
            guard complete else { break }  // the torn tail of an append that never finished
            do {
                let record = try decoder.decode(UnitRecord.self, from: Data(line))
                result.units[record.id] = record
            } catch {
                throw JobFileError(file: journal, key: "", reason: "line \(n + 1) is not a unit record (\(error)); move the file away to start over")
            }
        }
        return result
    }

    /// The state files of a job's shards beside its own (`x.shard-K-of-N.manifest.db`).
    public static func shardFiles(of manifest: String) -> [String] {
        let path = databasePath(manifest)
        let dir = (path as NSString).deletingLastPathComponent, name = (path as NSString).lastPathComponent
        guard name.hasSuffix(".manifest.db") else { return [] }
        let stem = String(name.dropLast(".manifest.db".count)) + ".shard-"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
        return names.filter { $0.hasPrefix(stem) && $0.hasSuffix(".manifest.db") }.sorted().map { dir.isEmpty ? $0 : dir + "/" + $0 }
    }

    /// The JSON files of earlier releases: snake_case keys.
    package static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }
}

