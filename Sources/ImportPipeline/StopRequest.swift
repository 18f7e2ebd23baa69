import Columnar
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import MarketStoreModel
import Synchronization

/// A stop asked of a run or of `follow` (by SIGINT/SIGTERM): made by the command, handed to the
/// runner, the writer and the follower, which start no new work once it is set. Ending work in
/// flight is the task's cancellation (which reaches libcurl), not this flag's job.
public final class StopRequest: Sendable {
    private struct State {
        var signal: Int32?
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Records the stop (the first signal wins); true for the first request.
    @discardableResult
    public func request(signal: Int32) -> Bool {
        let waiters: [CheckedContinuation<Void, Never>]? = state.withLock { state in
            guard state.signal == nil else { return nil }
            state.signal = signal
            let waiting = Array(state.waiters.values)
            state.waiters = [:]
            return waiting
        }
        waiters?.forEach { $0.resume() }
        return waiters != nil
    }

    public var requested: Bool { state.withLock { $0.signal != nil } }

    /// 128 + the signal (130 SIGINT, 143 SIGTERM), as shells report a process a signal ended.
    public var exitCode: Int32? { state.withLock { $0.signal.map { 128 + $0 } } }

    /// Returns once a stop is requested, or the task is cancelled.
    public func wait() async {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state in
                    if state.signal != nil || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
