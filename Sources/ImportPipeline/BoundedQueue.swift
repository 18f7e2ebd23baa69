import Columnar
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import MarketStoreModel

/// A queue between pipeline stages, with backpressure: a producer waits while the queue is full
/// (`send` suspends its task; `put` blocks a decoder's own thread, which is no task's), a consumer
/// waits while it is empty, and `receive` returns nil once the queue is finished and drained.
// @unchecked: every stored property is read and written under `condition`.
public final class BoundedQueue<Element: Sendable>: @unchecked Sendable {
    private let capacity: Int
    private let condition = NSCondition()
    private var items: [Element] = []
    private var head = 0
    private var finished = false
    private var receivers: [CheckedContinuation<Element?, Never>] = []
    /// Suspended `send`s, resumed (to try again) when an item is taken or the queue finishes.
    private var senders: [CheckedContinuation<Void, Never>] = []

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    private var count: Int { items.count - head }
    private var full: Bool { count >= capacity && !finished }

    /// Adds the item (the lock held): to a waiting receiver, else to the queue. Returns the
    /// receiver to resume once the lock is released.
    private func place(_ item: Element) -> CheckedContinuation<Element?, Never>? {
        if !receivers.isEmpty { return receivers.removeFirst() }
        items.append(item)
        return nil
    }

    /// Blocks the calling thread while the queue is full: for a decoder's own thread only.
    public func put(_ item: Element) {
        condition.lock()
        while full { condition.wait() }
        let receiver = place(item)
        condition.unlock()
        receiver?.resume(returning: item)
    }

    /// Suspends the calling task while the queue is full.
    public func send(_ item: Element) async {
        while true {
            var receiver: CheckedContinuation<Element?, Never>?
            var placed = false
            await withCheckedContinuation { (wait: CheckedContinuation<Void, Never>) in
                condition.lock()
                if full {
                    senders.append(wait)
                    condition.unlock()
                    return
                }
                receiver = place(item)
                placed = true
                condition.unlock()
                wait.resume()
            }
            if placed {
                receiver?.resume(returning: item)
                return
            }
        }
    }

    public func receive() async -> Element? {
        await withCheckedContinuation { continuation in
            condition.lock()
            guard count > 0 else {
                if finished {
                    condition.unlock()
                    continuation.resume(returning: nil)
                } else {
                    receivers.append(continuation)
                    condition.unlock()
                }
                return
            }
            let item = items[head]
            head += 1
            if head >= 64 && head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
            condition.signal()  // a blocked `put` may go on
            let sender = senders.isEmpty ? nil : senders.removeFirst()
            condition.unlock()
            sender?.resume()
            continuation.resume(returning: item)
        }
    }

    /// No more waiting for room: blocked producers go on (what they add is still received),
    /// waiting receivers get nil.
    public func finish() {
        condition.lock()
        finished = true
        let waiting = receivers, blocked = senders
        receivers = []
        senders = []
        condition.broadcast()
        condition.unlock()
        for r in waiting { r.resume(returning: nil) }
        for s in blocked { s.resume() }
    }
}
