import BinanceSource
import Synchronization

/// A listing that answers as another does (a mirror's), but fails the prefixes `fails` picks:
/// "the second listing fails", "every listing of ETHUSDT fails". Records every prefix asked.
public final class FaultyListing: FolderListing, Sendable {
    public struct Refused: Error, CustomStringConvertible {
        public let prefix: String
        public var description: String { "the listing of \(prefix) failed (test fault)" }
    }

    private let inner: any FolderListing
    private let fails: @Sendable (_ prefix: String, _ number: Int) -> Bool
    private let asked = Mutex<[String]>([])

    /// `fails(prefix, n)`: whether the n-th listing asked (1 = the first) fails.
    public init(_ inner: any FolderListing, fails: @escaping @Sendable (_ prefix: String, _ number: Int) -> Bool) {
        (self.inner, self.fails) = (inner, fails)
    }

    public func list(prefix: String) async throws -> (folders: [String], files: [ListedFile]) {
        let number = asked.withLock { $0.append(prefix); return $0.count }
        if fails(prefix, number) { throw Refused(prefix: prefix) }
        return try await inner.list(prefix: prefix)
    }

    /// The prefixes listed, in order.
    public var prefixes: [String] { asked.withLock { $0 } }
}
