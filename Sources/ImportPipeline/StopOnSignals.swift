import Foundation
import Logging
import UnixSignals

/// SIGINT/SIGTERM for `run`, `nightly` and `follow`, in one place. The first signal asks the
/// work to stop cleanly (`stop`: no new downloads or decodes; what is held is written and
/// recorded); 5 s later, or at a second signal, the work's task is cancelled, which ends the
/// transfers still running (their units stay pending). The work then returns by itself, with its
/// summary, and the exit code says which signal (130, 143). No timer ends the process: work
/// that is slow to return (a write the server is slow to acknowledge) is waited for. The signal
/// dispositions are restored when the work returns.
package func withStopOnSignals<T: Sendable>(_ stop: StopRequest, logger: Logger, saying message: String,
                                    _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    // The signal source alone sees them while the work runs; as they were afterwards.
    let previous = [SIGINT, SIGTERM].map { ($0, signal($0, SIG_IGN)) }
    defer { for (sig, handler) in previous { signal(sig, handler) } }
    let signals = await UnixSignalsSequence(trapping: .sigint, .sigterm)
    return try await withThrowingTaskGroup(of: SignalEvent<T>.self) { group in
        group.addTask { .finished(try await work()) }
        group.addTask {
            var count = 0
            for await received in signals {
                count += 1
                if count > 1 { return .cancelWork }
                stop.request(signal: received.rawValue)
                logger.warning("signal \(received.rawValue): \(message); send it again to stop at once")
            }
            return .idle
        }
        group.addTask {
            await stop.wait()
            guard (try? await Task.sleep(nanoseconds: 5_000_000_000)) != nil else { return .idle }
            return .cancelWork
        }
        while let event = try await group.next() {
            switch event {
            case let .finished(value):
                group.cancelAll()
                return value
            case .cancelWork:
                logger.warning("stopping now: transfers still running are ended (their units stay pending)")
                group.cancelAll()
            case .idle:
                continue
            }
        }
        throw CancellationError()
    }
}

/// What a child task of `withStopOnSignals` came to.
private enum SignalEvent<T: Sendable>: Sendable {
    case finished(T)
    case cancelWork
    case idle
}
