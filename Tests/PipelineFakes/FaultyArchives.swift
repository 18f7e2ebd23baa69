import BinanceSource

/// An archive source that fetches as another does (the samples' mirror), but fails the fetches
/// `fails` picks: "the second download fails", "every archive of ETHUSDT fails". Records every
/// archive asked, in order.
public final class FaultyArchives: ArchiveSource, Sendable {
    public struct Failed: Error, CustomStringConvertible {
        public let remotePath: String
        public var description: String { "the download of \(remotePath) failed (test fault)" }
    }

    private let inner: any ArchiveSource
    private let schedule: FaultSchedule

    /// `fails(remotePath, n)`: whether the n-th fetch asked (1 = the first) fails.
    public init(_ inner: any ArchiveSource, fails: @escaping @Sendable (_ remotePath: String, _ number: Int) -> Bool) {
        (self.inner, schedule) = (inner, FaultSchedule(fails))
    }

    public func fetch(_ address: some PublishedArchive) async throws -> FetchResult {
        if schedule.fails(address.remotePath) { throw Failed(remotePath: address.remotePath) }
        return try await inner.fetch(address)
    }

    public func publishedChecksum(_ address: some PublishedArchive) async throws -> String? { try await inner.publishedChecksum(address) }
    public func cachedPath(_ address: some PublishedArchive) -> String { inner.cachedPath(address) }

    /// The archives fetched, in order.
    public var fetched: [String] { schedule.names }
}
