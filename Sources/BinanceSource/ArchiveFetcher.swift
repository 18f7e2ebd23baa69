import Crypto
import CurlHTTP
import DurableFiles
import Foundation

/// What the fetcher needs of an archive of the data tree (klines, funding rates, metrics): its
/// path below the base URL (and the cache), and its file name, which its CHECKSUM names.
public protocol PublishedArchive: Sendable {
    var remotePath: String { get }
    var fileName: String { get }
}

extension PublishedArchive {
    /// The CHECKSUM published beside the archive.
    public var checksumPath: String { remotePath + ".CHECKSUM" }
}

/// An archive ready to decode, on local disk.
public struct LocalArchive: Sendable, Equatable {
    /// The archive's path below the base URL.
    public var remotePath: String
    public var path: String
    /// SHA-256 (lower-case hex) of the archive, when a CHECKSUM verified it.
    public var sha256: String?
    public var verified: Bool { sha256 != nil }
    /// Served from the cache (or a local mirror) without a download.
    public var fromCache: Bool
    /// HTTP requests made for the zip (0 from the cache).
    public var attempts: Int
}

public enum FetchResult: Sendable, Equatable {
    case ready(LocalArchive)
    /// HTTP 404 (or no file in the mirror): not published yet, or never (the remote path).
    case notPublished(String)
}

/// Downloads, verifies and caches archives. A download goes to a temporary file, hashed with
/// SHA-256 as the bytes arrive, and is renamed into `<cache>/<remote path>` only when complete
/// and verified; its CHECKSUM is stored beside it, and a cached archive is reused only while the
/// published CHECKSUM is the same (a re-published archive is downloaded again).
public final class ArchiveFetcher: ArchiveSource {
    public let location: SourceLocation
    public let cacheDirectory: String
    public let checksumRequired: Bool
    public let retry: RetryPolicy
    private let pool: SessionPool

    /// `http2` (the default): downloads share one multi handle and speak HTTP/2 where the server
    /// offers it; false keeps a session and an HTTP/1.1 connection per download.
    public init(location: SourceLocation, cacheDirectory: String, checksumRequired: Bool = true, retry: RetryPolicy = .init(),
                timeouts: HTTPTimeouts = .init(connect: 10, total: 900, lowSpeedBytes: 1024, lowSpeedSeconds: 20), http2: Bool = true) {
        self.location = location
        self.cacheDirectory = cacheDirectory
        self.checksumRequired = checksumRequired
        self.retry = retry
        pool = http2 ? SessionPool(timeouts: timeouts, multi: CurlMulti()) : SessionPool(timeouts: timeouts, http2: false)
    }

    public func cachedPath(_ address: some PublishedArchive) -> String { (cacheDirectory as NSString).appendingPathComponent(address.remotePath) }

    /// Fetches one archive (or finds it in the cache or the mirror).
    public func fetch(_ address: some PublishedArchive) async throws -> FetchResult {
        switch location {
        case let .directory(root): return try fetchFromMirror(address, root: root)
        case .http:
            let session = await pool.take()
            defer { Task { await pool.give(session) } }
            return try await fetchOverHTTP(address, session: session)
        }
    }

    /// The SHA-256 the published CHECKSUM gives for `address` (nil when there is none), without
    /// downloading the archive: how a re-run tells an unchanged archive from a re-published one.
    public func publishedChecksum(_ address: some PublishedArchive) async throws -> String? {
        switch location {
        case let .directory(root):
            let path = (root as NSString).appendingPathComponent(address.checksumPath)
            guard let text = try Self.readMirrorFile(path) else { return nil }
            return try Self.parseChecksum(text, url: path, fileName: address.fileName)
        case .http:
            let session = await pool.take()
            defer { Task { await pool.give(session) } }
            let url = location.url(of: address.checksumPath)
            let (response, attempts) = try await retry.run(url: url) { try await session.perform(method: "GET", url: url) }
            switch response.status {
            case 200: return try Self.parseChecksum(String(decoding: response.body, as: UTF8.self), url: url, fileName: address.fileName)
            case 404: return nil
            default: throw SourceError.http(url: url, status: response.status, attempts: attempts)
            }
        }
    }

    // MARK: - Local mirror

    private func fetchFromMirror(_ address: some PublishedArchive, root: String) throws -> FetchResult {
        let path = (root as NSString).appendingPathComponent(address.remotePath)
        guard FileManager.default.fileExists(atPath: path) else { return .notPublished(address.remotePath) }
        var sha: String?
        if let text = try Self.readMirrorFile(path + ".CHECKSUM") {
            let expected = try Self.parseChecksum(text, url: path + ".CHECKSUM", fileName: address.fileName)
            let actual = try Self.sha256(ofFile: path)
            guard actual == expected else { throw SourceError.checksumMismatch(url: path, expected: expected, actual: actual) }
            sha = actual
        } else if checksumRequired {
            throw SourceError.checksumMissing(url: path + ".CHECKSUM")
        }
        return .ready(LocalArchive(remotePath: address.remotePath, path: path, sha256: sha, fromCache: true, attempts: 0))
    }

    // MARK: - HTTP

    private func fetchOverHTTP(_ address: some PublishedArchive, session: CurlSession) async throws -> FetchResult {
        let zipURL = location.url(of: address.remotePath), sumURL = location.url(of: address.checksumPath)
        let target = cachedPath(address), sumFile = target + ".CHECKSUM"
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // With no cached copy the archive is needed whatever its CHECKSUM says: both requests go
        // out at once, one round trip instead of two (the hash is compared once both are in,
        // before a row is read). A cached copy is checked against the CHECKSUM first.
        var early: Download?
        let sumResponse: HTTPResponse
        if FileManager.default.fileExists(atPath: target) {
            sumResponse = try await retry.run(url: sumURL) { try await session.perform(method: "GET", url: sumURL) }.0
        } else {
            let other = await pool.take()
            defer { Task { await pool.give(other) } }
            async let checksum = retry.run(url: sumURL) { try await other.perform(method: "GET", url: sumURL) }
            early = try await download(zipURL, to: target, session: session)
            do {
                sumResponse = try await checksum.0
            } catch {
                early?.discard()
                throw error
            }
        }
        var expected: String?
        switch sumResponse.status {
        case 200:
            do {
                expected = try Self.parseChecksum(String(decoding: sumResponse.body, as: UTF8.self), url: sumURL, fileName: address.fileName)
            } catch {
                early?.discard()
                throw error
            }
        case 404:
            break
        default:
            early?.discard()
            throw SourceError.http(url: sumURL, status: sumResponse.status, attempts: 1)
        }
        if early == nil, let expected, FileManager.default.fileExists(atPath: target),
           let cached = try? String(contentsOfFile: sumFile, encoding: .utf8),
           (try? Self.parseChecksum(cached, url: sumFile, fileName: address.fileName)) == expected {
            return .ready(LocalArchive(remotePath: address.remotePath, path: target, sha256: expected, fromCache: true, attempts: 0))
        }
        if early == nil, expected == nil && !checksumRequired && FileManager.default.fileExists(atPath: target) && !FileManager.default.fileExists(atPath: sumFile) {
            return .ready(LocalArchive(remotePath: address.remotePath, path: target, sha256: nil, fromCache: true, attempts: 0))
        }
        var totalAttempts = 0
        for round in 1...2 {  // a hash mismatch is retried once from scratch
            let fetched: Download
            if round == 1, let early { fetched = early } else { fetched = try await download(zipURL, to: target, session: session) }
            totalAttempts += fetched.attempts
            if fetched.status == 404 { return .notPublished(address.remotePath) }
            guard fetched.status == 200 else { throw SourceError.http(url: zipURL, status: fetched.status, attempts: fetched.attempts) }
            guard let expected else {
                if checksumRequired {
                    fetched.discard()
                    throw SourceError.checksumMissing(url: sumURL)
                }
                try fetched.keep(as: target)
                return .ready(LocalArchive(remotePath: address.remotePath, path: target, sha256: nil, fromCache: false, attempts: totalAttempts))
            }
            if fetched.sha256 == expected {
                try fetched.keep(as: target)
                try Self.writeAtomically(Array((sumResponse.body.isEmpty ? Array("\(expected)  \(address.fileName)\n".utf8) : sumResponse.body)), to: sumFile)
                return .ready(LocalArchive(remotePath: address.remotePath, path: target, sha256: fetched.sha256, fromCache: false, attempts: totalAttempts))
            }
            fetched.discard()
            // The cached copy (re-published since) is not what the CHECKSUM says either.
            if FileManager.default.fileExists(atPath: target) { try? FileManager.default.removeItem(atPath: target) }
            if round == 2 { throw SourceError.checksumMismatch(url: zipURL, expected: expected, actual: fetched.sha256) }
        }
        fatalError("unreachable")
    }

    /// A download held under a temporary name beside its cache name until its hash is checked.
    struct Download {
        var status: Int
        var sha256: String
        var attempts: Int
        var temporary: String

        /// Takes the cache name (the hash matched, or no CHECKSUM is required).
        func keep(as target: String) throws {
            guard rename(temporary, target) == 0 else { throw SourceError.io(path: target, reason: String(cString: strerror(errno))) }
        }

        func discard() { Self.removePartial(temporary) }

        /// A leftover `.part-` file (one that cannot be removed now) is removed by the next
        /// download of the archive, so a failure here is not worth failing the fetch for.
        static func removePartial(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
    }

    /// Downloads `url` into a temporary file beside `target`, hashing the bytes as they arrive.
    /// The caller names it `target` once the hash is checked, or discards it.
    private func download(_ url: String, to target: String, session: CurlSession) async throws -> Download {
        // Partial downloads of runs that were killed: their process is gone.
        let dir = (target as NSString).deletingLastPathComponent, base = (target as NSString).lastPathComponent
        for name in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where name.hasPrefix(base + ".part-") {
            if let pid = Int32(name.dropFirst(base.count + 6).prefix { $0.isNumber }), kill(pid, 0) != 0, errno == ESRCH {
                try? FileManager.default.removeItem(atPath: (dir as NSString).appendingPathComponent(name))
            }
        }
        let temp = target + ".part-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var digest = ""
        do {
            let (response, attempts) = try await retry.run(url: url) {
                let sink = try HashingFileSink(path: temp)
                let response = try await session.perform(method: "GET", url: url) { chunk in sink.write(chunk) }
                digest = try sink.finish()
                return response
            }
            let download = Download(status: response.status, sha256: digest, attempts: attempts, temporary: temp)
            if response.status != 200 { download.discard() }
            return download
        } catch {
            Download.removePartial(temp)
            throw error
        }
    }

    // MARK: - Helpers

    /// A small file of a mirror as text, nil when there is none; a file that exists but cannot be
    /// read is an error, not an absent CHECKSUM.
    static func readMirrorFile(_ path: String) throws -> String? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        } catch {
            throw SourceError.io(path: path, reason: "cannot read: \(error.localizedDescription)")
        }
    }

    /// `<64 hex>  <file name>`: the hash, after checking the name.
    static func parseChecksum(_ text: String, url: String, fileName: String) throws -> String {
        let parts = text.split(whereSeparator: \.isWhitespace).map(String.init)
        guard parts.count == 2, parts[0].count == 64, parts[0].allSatisfy(\.isHexDigit) else {
            throw SourceError.checksumMalformed(url: url, text: text)
        }
        guard parts[1] == fileName else { throw SourceError.checksumNamesOtherFile(url: url, named: parts[1], expected: fileName) }
        return parts[0].lowercased()
    }

    static func sha256(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw SourceError.io(path: path, reason: "cannot open") }
        defer { try? handle.close() }
        var hasher = SHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return lowercaseHex(hasher.finalize())
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let temp = path + ".tmp-\(getpid())"
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: temp))  // not .atomic: no hidden temporary of Foundation's
        } catch {
            throw SourceError.io(path: temp, reason: "cannot write: \(error)")
        }
        guard rename(temp, path) == 0 else { throw SourceError.io(path: path, reason: String(cString: strerror(errno))) }
    }
}

/// Writes a download to a file and hashes it on the way (one pass over the bytes).
/// The descriptor is closed by `finish` or, when a transfer fails before it, by deinit (one
/// sink per attempt: a failed attempt must not leak it). Used from one transfer at a time.
// @unchecked: one transfer writes to it at a time (libcurl calls the sink on the session's queue).
final class HashingFileSink: @unchecked Sendable {
    private let path: String
    private var fd: Int32
    private var hasher = SHA256()
    private var failure: String?

    init(path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw SourceError.io(path: path, reason: String(cString: strerror(errno))) }
    }

    deinit { if fd >= 0 { close(fd) } }

    func write(_ chunk: UnsafeRawBufferPointer) -> Bool {
        hasher.update(bufferPointer: chunk)
        do {
            try writeFully(fd, chunk)  // the project's one write path (short writes, EINTR)
            return true
        } catch {
            failure = "\(error)"
            return false
        }
    }

    func finish() throws -> String {
        if failure == nil, fsync(fd) != 0 { failure = "fsync: \(String(cString: strerror(errno)))" }
        close(fd)
        fd = -1
        if let failure { throw SourceError.io(path: path, reason: "could not store the download: \(failure)") }
        return lowercaseHex(hasher.finalize())
    }
}

/// libcurl sessions for parallel downloads and listings, each kept alive and reused. Given a
/// multi handle, their transfers share it: to a server that speaks HTTP/2 they are streams of one
/// connection (one TLS handshake); to an HTTP/1.1 server each keeps a connection. Without one
/// each session keeps its own connection and thread; `http2: false` keeps those to HTTP/1.1.
actor SessionPool {
    let timeouts: HTTPTimeouts
    private let multi: CurlMulti?
    private let http2: Bool
    private var free: [CurlSession] = []
    init(timeouts: HTTPTimeouts, multi: CurlMulti? = nil, http2: Bool = true) {
        (self.timeouts, self.multi, self.http2) = (timeouts, multi, http2)
    }
    func take() -> CurlSession { free.popLast() ?? CurlSession(timeouts: timeouts, multi: multi, http2: http2) }
    func give(_ session: CurlSession) { free.append(session) }
}

/// Lowercase hex of a digest, as CHECKSUM files write it. (String(format:) per byte cost 9% of a
/// run of tiny archives.)
func lowercaseHex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}
