/// A queue between pipeline stages with backpressure: `send` waits while the queue is full,
/// `receive` waits while it is empty, and returns nil once the queue is finished and drained.
public actor BoundedQueue<Element: Sendable> {
    private let capacity: Int
    private var items: [Element] = []
    private var finished = false
    private var receivers: [CheckedContinuation<Element?, Never>] = []
    private var senders: [CheckedContinuation<Void, Never>] = []

    public init(capacity: Int) { self.capacity = max(1, capacity) }

    public func send(_ item: Element) async {
        while items.count >= capacity && !finished {
            await withCheckedContinuation { senders.append($0) }
        }
        if let receiver = receivers.first {
            receivers.removeFirst()
            receiver.resume(returning: item)
        } else {
            items.append(item)
        }
    }

    public func receive() async -> Element? {
        if !items.isEmpty {
            let item = items.removeFirst()
            if !senders.isEmpty { senders.removeFirst().resume() }
            return item
        }
        if finished { return nil }
        return await withCheckedContinuation { receivers.append($0) }
    }

    /// No more items will be sent; waiting receivers get nil.
    public func finish() {
        finished = true
        for r in receivers { r.resume(returning: nil) }
        receivers.removeAll()
        for s in senders { s.resume() }
        senders.removeAll()
    }
}
