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
}

/// The job's manifest: one JSON file, one entry per unit. Written atomically (temporary file,
/// fsync, rename, fsync of the directory), so a crash leaves the old or the new version.
public struct Manifest: Codable, Equatable, Sendable {
    public var job: String
    public var version = 1
    public var units: [String: UnitRecord] = [:]

    public init(job: String) { self.job = job }

    /// The manifest at `path` (a new one when there is none). `cleanUp` removes temporaries left by
    /// a run killed mid-save; a dry run reads without it.
    public static func load(path: String, job: String, cleanUp: Bool = true) throws -> Manifest {
        let dir = (path as NSString).deletingLastPathComponent
        if cleanUp { removeStaleTemporaries(in: dir.isEmpty ? "." : dir) }
        guard FileManager.default.fileExists(atPath: path) else { return Manifest(job: job) }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try Manifest.decoder().decode(Manifest.self, from: data)
        } catch {
            throw JobFileError(file: path, key: "", reason: "the manifest is not readable (\(error)); move it away to start over")
        }
    }

    public func save(path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try writeDurably(try encoder.encode(self), to: path)
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }
}

/// Writes `data` so that a crash leaves either the old file or the new one (creating its folder).
public func writeDurably(_ data: Data, to path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
    try writeFileDurably([UInt8](data), to: path)
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
