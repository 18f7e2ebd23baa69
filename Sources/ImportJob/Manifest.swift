import Foundation
import MarketStoreDirectory

/// One unit of work: a market x symbol x interval x period archive.
public struct UnitRecord: Codable, Equatable, Sendable {
    public enum Status: String, Codable, Sendable {
        case pending, done, failed
        /// HTTP 404: not published (yet).
        case notPublished = "not_published"
        /// Daily units of a month now imported from its monthly archive.
        case superseded
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

    /// A unit of a daily archive (`data/<market>/daily/...`).
    public var isDaily: Bool { remotePath.contains("/daily/") }

    /// For a daily unit, the id of its month's monthly unit, which supersedes it:
    /// `.../daily/.../X-1m-2024-02-03.zip` -> `.../monthly/.../X-1m-2024-02.zip`.
    public var monthlyID: String? {
        guard isDaily, remotePath.hasSuffix(".zip"), remotePath.count > 7 else { return nil }
        return remotePath.replacingOccurrences(of: "/daily/", with: "/monthly/").dropLast(7) + ".zip"  // drops "-DD.zip"
    }
}

/// The job's manifest: a JSON snapshot (`<manifest>`, one entry per unit, written atomically:
/// temporary file, fsync, rename) and a journal beside it (`<manifest>.journal`, one JSON line
/// per changed unit record, appended and fsynced per save). A save costs what changed since the
/// last one, not the whole job; the journal is folded into the snapshot at the start and the end
/// of a run. Reading is the snapshot, then the journal's lines in order (the last record of a
/// unit wins); a torn last line, from a crash during an append that was never acknowledged, is
/// ignored. Both files are plain JSON: `jq` reads them.
public struct Manifest: Codable, Equatable, Sendable {
    public var job: String
    /// 1: the snapshot alone (earlier releases); 2: the snapshot and its journal. Version 1 files
    /// read as they are: their records have the same fields.
    public var version = Manifest.currentVersion
    public var units: [String: UnitRecord] = [:]

    public static let currentVersion = 2

    public init(job: String) { self.job = job }

    public static func journalPath(_ path: String) -> String { path + ".journal" }

    /// The manifest at `path` with its journal replayed (a new one when there is none).
    /// `cleanUp` removes temporaries left by a run killed mid-save; a dry run reads without it.
    public static func load(path: String, job: String, cleanUp: Bool = true) throws -> Manifest {
        let dir = (path as NSString).deletingLastPathComponent
        if cleanUp { removeStaleTemporaries(in: dir.isEmpty ? "." : dir) }
        var manifest = Manifest(job: job)
        if FileManager.default.fileExists(atPath: path) {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            do {
                manifest = try Manifest.decoder().decode(Manifest.self, from: data)
            } catch {
                throw JobFileError(file: path, key: "", reason: "the manifest is not readable (\(error)); move it away to start over")
            }
            guard (1...currentVersion).contains(manifest.version) else {
                throw JobFileError(file: path, key: "", reason: "manifest version \(manifest.version) is newer than this binary reads (\(currentVersion))")
            }
            manifest.version = currentVersion
        }
        let journal = journalPath(path)
        guard FileManager.default.fileExists(atPath: journal) else { return manifest }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: journal)))
        let lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false)
        let decoder = Manifest.decoder()
        for (n, line) in lines.enumerated() where !line.isEmpty {
            let complete = n < lines.count - 1  // followed by a newline
            guard complete else { break }  // the torn tail of an append that never finished
            do {
                let record = try decoder.decode(UnitRecord.self, from: Data(line))
                manifest.units[record.id] = record
            } catch {
                throw JobFileError(file: journal, key: "", reason: "line \(n + 1) is not a unit record (\(error)); move the file away to start over")
            }
        }
        return manifest
    }

    /// Writes the whole snapshot durably, one unit record at a time (the same JSON object a
    /// single encode would give, keys sorted, one record a line; never whole in memory).
    public func save(path: String) throws {
        let encoder = Manifest.encoder()
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try writeFileDurably(to: path) { write in
            try write(Array("{\n\"job\" : ".utf8) + encoder.encode(job) + Array(",\n\"units\" : {".utf8))
            for (n, id) in units.keys.sorted().enumerated() {
                try write(Array((n == 0 ? "\n" : ",\n").utf8) + encoder.encode(id) + Array(" : ".utf8) + encoder.encode(units[id]!))
            }
            try write(Array("\n},\n\"version\" : \(version)\n}\n".utf8))
        }
    }

    /// Appends `records` to the journal, one line each, and fsyncs it.
    static func appendToJournal(_ records: [UnitRecord], path: String) throws {
        guard !records.isEmpty else { return }
        let encoder = Manifest.encoder()
        var bytes: [UInt8] = []
        for record in records {
            bytes += try encoder.encode(record)
            bytes.append(0x0A)
        }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        try appendDurably(bytes, to: journalPath(path))
    }

    /// Folds the journal into the snapshot: the snapshot is replaced durably first, then the
    /// journal emptied (a crash between the two replays records the snapshot already holds).
    func compact(path: String) throws {
        try save(path: path)
        let journal = Manifest.journalPath(path)
        guard FileManager.default.fileExists(atPath: journal) else { return }
        guard truncate(journal, 0) == 0 else { throw FileWriteError(path: journal, reason: "truncate: \(String(cString: strerror(errno)))") }
    }

    /// Snapshot and journal alike: snake_case keys, sorted, one record on one line.
    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }
}

/// An exclusive lock on `<manifest>.lock` (flock): a second run of the same job is refused.
public final class JobLock {
    private let fd: Int32
    public let path: String

    public init(manifest: String) throws {
        path = manifest + ".lock"
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        fd = open(path, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw JobFileError(file: path, key: "", reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw JobFileError(file: path, key: "", reason: "another run of this job holds the lock; wait for it to finish")
        }
        let pid = "\(getpid())\n"
        ftruncate(fd, 0)
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
