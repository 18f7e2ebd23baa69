import Foundation

/// A write that did not complete: the call, the system's reason and how far it got. A short
/// write is followed by another call, so the reason is the errno of a call that failed (ENOSPC,
/// EIO, ...), never the stale errno of a partial success.
public struct WriteFailure: Error, CustomStringConvertible {
    public let call: String
    public let reason: String
    public let written: Int
    public let total: Int
    public var description: String { "\(call): \(reason) (wrote \(written) of \(total) bytes)" }
}

/// Writes all of `bytes`, at `offset` with pwrite or at the file position with write; retries
/// short writes and EINTR. The one write path of the files this project keeps.
public func writeFully(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, offset: Int64? = nil) throws {
    var done = 0
    while done < bytes.count {
        let n = offset.map { pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t($0) + off_t(done)) }
            ?? write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else {
            let reason = n < 0 ? String(cString: strerror(errno)) : "no progress"
            throw WriteFailure(call: offset == nil ? "write" : "pwrite", reason: reason, written: done, total: bytes.count)
        }
        done += n
    }
}

/// A file that could not be written durably, with why.
public struct FileWriteError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}

/// Writes a whole file so that a crash leaves either the old file or the new one: a temporary
/// name of our own (`<path>.tmp-<pid>`, which `removeStaleTemporaries` knows), fsync, rename,
/// fsync of the directory. `size` extends the file (sparse) after the bytes.
public func writeFileDurably(_ bytes: [UInt8], to path: String, size: Int64? = nil) throws {
    try writeFileDurably(to: path, size: size) { write in try write(bytes) }
}

/// The same, for contents produced piece by piece (`produce` calls `write` as often as it likes;
/// pieces are gathered into writes of about 1 MiB), so a large file is never whole in memory.
public func writeFileDurably(to path: String, size: Int64? = nil, _ produce: (_ write: ([UInt8]) throws -> Void) throws -> Void) throws {
    let temp = path + ".tmp-\(getpid())"
    let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw FileWriteError(path: temp, reason: "open: \(String(cString: strerror(errno)))") }
    var failure: String?
    do {
        var pending: [UInt8] = []
        pending.reserveCapacity(1 << 20)
        try produce { piece in
            pending += piece
            if pending.count >= 1 << 20 {
                try pending.withUnsafeBytes { try writeFully(fd, $0) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        try pending.withUnsafeBytes { try writeFully(fd, $0) }
        if let size, ftruncate(fd, off_t(size)) != 0 { failure = "ftruncate: \(String(cString: strerror(errno)))" }
        if failure == nil, fsync(fd) != 0 { failure = "fsync: \(String(cString: strerror(errno)))" }
    } catch {
        failure = "\(error)"
    }
    close(fd)
    if failure == nil, rename(temp, path) != 0 { failure = "rename: \(String(cString: strerror(errno)))" }
    if let failure {
        unlink(temp)
        throw FileWriteError(path: path, reason: "could not write durably: \(failure)")
    }
    syncDirectory(of: path)
}

/// fsync of the directory holding `path`, so a rename in it is durable.
public func syncDirectory(of path: String) {
    let dir = (path as NSString).deletingLastPathComponent
    let fd = open(dir.isEmpty ? "." : dir, O_RDONLY)
    if fd >= 0 { fsync(fd); close(fd) }
}

/// Removes `*.tmp-<pid>` files left by a writer that died between creating and renaming them (a
/// crash leaves the old state plus such a file; the new state is written again by the re-run).
public func removeStaleTemporaries(in dir: String) {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
    for name in names {
        guard let range = name.range(of: ".tmp-", options: .backwards), let pid = Int32(name[range.upperBound...]) else { continue }
        if pid == getpid() || (kill(pid, 0) != 0 && errno == ESRCH) {
            try? FileManager.default.removeItem(atPath: (dir as NSString).appendingPathComponent(name))
        }
    }
}
