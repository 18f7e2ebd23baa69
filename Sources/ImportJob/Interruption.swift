import CurlHTTP
import Foundation

/// SIGINT/SIGTERM handling: the first signal asks the run to stop cleanly (no new downloads or
/// decodes; the writer sends what it holds and the manifest is saved); transfers still running 5
/// seconds later are aborted (their units stay pending); if the run has not ended 10 seconds
/// later, or on a second signal, the process exits at once. Either way the manifest is
/// consistent (it is written atomically, and only acknowledged units are marked done).
// @unchecked: `flag` and `sources` are only read and written under `lock` (Synchronization's
// Mutex would say so to the checker, but needs macOS 15).
public final class Interruption: @unchecked Sendable {
    public static let shared = Interruption()
    private let lock = NSLock()
    private var flag = false
    private var received: Int32?
    private var sources: [DispatchSourceSignal] = []

    public var requested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return flag
    }

    /// The exit code of a run stopped by a signal, clean or not: 128 + the signal (130 for
    /// SIGINT, 143 for SIGTERM), as shells report a process a signal ended.
    public var exitCode: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return received.map { 128 + $0 }
    }

    /// Installs the handlers (once).
    public func install(onRequest: @escaping @Sendable (Int32) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        guard sources.isEmpty else { return }
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self else { return }
                self.lock.lock()
                let second = self.flag
                self.flag = true
                self.received = self.received ?? sig
                self.lock.unlock()
                if second { exit(128 + sig) }
                onRequest(sig)
                // A transfer still running 5 s on (a server that stopped answering) is aborted, so
                // the run ends with its summary; 10 s on, the process exits whatever it is doing.
                DispatchQueue.global().asyncAfter(deadline: .now() + 5) { CurlSession.abortAll() }
                DispatchQueue.global().asyncAfter(deadline: .now() + 10) { exit(128 + sig) }
            }
            source.resume()
            sources.append(source)
        }
    }
}
