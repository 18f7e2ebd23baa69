import Foundation

/// Why a job's lock could not be taken (the message says what to do).
public struct JobLockError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
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
        guard fd >= 0 else { throw JobLockError(path: path, reason: String(cString: strerror(errno))) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw JobLockError(path: path, reason: "another run of this job holds the lock; wait for it to finish")
        }
        // The holder's pid, for a person looking at the lock; the lock is the flock, not the text.
        ftruncate(fd, 0)
        try? Array("\(getpid())\n".utf8).withUnsafeBytes { try writeFully(fd, $0) }
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
