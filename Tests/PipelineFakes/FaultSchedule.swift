import Synchronization

/// Which calls of a fake fail: `fails(name, n)` for the n-th call (1 = the first), by the name
/// it was asked for (a listing prefix, an archive path). Records every name asked, in order.
public final class FaultSchedule: Sendable {
    private let fails: @Sendable (_ name: String, _ number: Int) -> Bool
    private let asked = Mutex<[String]>([])

    public init(_ fails: @escaping @Sendable (_ name: String, _ number: Int) -> Bool) { self.fails = fails }

    /// Records the call; whether it fails.
    public func fails(_ name: String) -> Bool {
        let number = asked.withLock { $0.append(name); return $0.count }
        return fails(name, number)
    }

    /// The names asked, in order.
    public var names: [String] { asked.withLock { $0 } }
}
