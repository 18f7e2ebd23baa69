import Foundation
import ImportPipeline
import Logging
import UnixSignals

/// SIGINT/SIGTERM for `run`, `nightly` and `follow`, in one place. The first signal asks the
/// work to stop cleanly (`stop`: no new downloads or decodes; what is held is written and
/// recorded); 5 s later, or at a second signal, the work's task is cancelled, which ends the
/// transfers still running (their units stay pending). The work then returns by itself, with its
/// summary, and the exit code says which signal (130, 143). A last-resort watchdog ends the
/// process if the work has not returned 10 s after the first signal; the tests check it never
/// has to.
func withStopOnSignals<T: Sendable>(_ stop: StopRequest, logger: Logger, saying message: String,
                                    _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    for sig in [SIGINT, SIGTERM] { signal(sig, SIG_IGN) }  // the signal source alone sees them
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
                DispatchQueue.global().asyncAfter(deadline: .now() + 10) {
                    FileHandle.standardError.write(Data("binance-import: not stopped 10 s after the signal; exiting\n".utf8))
                    exit(128 + received.rawValue)
                }
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
