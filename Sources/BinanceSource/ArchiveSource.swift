/// Where a run's archives come from: Binance's data tree over HTTP with a local cache, or a
/// mirror folder (ArchiveFetcher); in tests, a fake that fails the fetches a test picks.
public protocol ArchiveSource: Sendable {
    /// One archive, verified against its CHECKSUM, on local disk; or not published.
    func fetch(_ address: some PublishedArchive) async throws -> FetchResult
    /// The SHA-256 the published CHECKSUM gives for `address` (nil when there is none), without
    /// the archive: how a re-run tells an unchanged archive from a re-published one.
    func publishedChecksum(_ address: some PublishedArchive) async throws -> String?
    /// Where the archive is kept once fetched (a dry run says what is cached).
    func cachedPath(_ address: some PublishedArchive) -> String
}

extension ArchiveSource {
    /// Fetches many archives, at most `parallelism` at a time, reporting each as it completes.
    /// `isCancelled` is asked before each new fetch (a clean stop lets the running ones finish).
    public func fetchAll(_ addresses: [ArchiveAddress], parallelism: Int, isCancelled: @escaping @Sendable () -> Bool = { false },
                         onResult: @escaping @Sendable (ArchiveAddress, Result<FetchResult, Error>) async -> Void) async {
        await fetchAll(addresses, address: { $0 }, parallelism: parallelism, isCancelled: isCancelled, onResult: onResult)
    }

    /// `fetchAll` over items that carry an address (a job's planned units), each handed back
    /// with its result: no look-up table from addresses back to items.
    public func fetchAll<Item: Sendable>(_ items: [Item], address: @escaping @Sendable (Item) -> any PublishedArchive, parallelism: Int,
                                         isCancelled: @escaping @Sendable () -> Bool = { false },
                                         onResult: @escaping @Sendable (Item, Result<FetchResult, Error>) async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            var iterator = items.makeIterator()
            func addNext() -> Bool {
                guard !isCancelled(), let item = iterator.next() else { return false }
                group.addTask {
                    let address = address(item)
                    do { await onResult(item, .success(try await self.fetch(address))) } catch { await onResult(item, .failure(error)) }
                }
                return true
            }
            for _ in 0..<max(1, parallelism) where !addNext() { break }
            while await group.next() != nil { _ = addNext() }
        }
    }
}
