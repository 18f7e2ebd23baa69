import BinanceSource

/// A listing that answers as another does (a mirror's), but fails the prefixes `fails` picks:
/// "the second listing fails", "every listing of ETHUSDT fails". Records every prefix asked.
public final class FaultyListing: FolderListing, Sendable {
    public struct Refused: Error, CustomStringConvertible {
        public let prefix: String
        public var description: String { "the listing of \(prefix) failed (test fault)" }
    }

    private let inner: any FolderListing
    private let schedule: FaultSchedule

    /// `fails(prefix, n)`: whether the n-th listing asked (1 = the first) fails.
    public init(_ inner: any FolderListing, fails: @escaping @Sendable (_ prefix: String, _ number: Int) -> Bool) {
        (self.inner, schedule) = (inner, FaultSchedule(fails))
    }

    public func list(prefix: String, after: String?) async throws -> (folders: [String], files: [ListedFile]) {
        if schedule.fails(prefix) { throw Refused(prefix: prefix) }
        return try await inner.list(prefix: prefix, after: after)
    }

    /// The prefixes listed, in order.
    public var prefixes: [String] { schedule.names }
}
