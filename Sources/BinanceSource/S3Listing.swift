import CurlHTTP
import KlineArchive
import Foundation

/// A file of a listing, with what tells one version of it from the next.
public struct ListedFile: Equatable, Sendable {
    public var key: String
    public var size: Int64?
    public var etag: String?
    public var lastModified: String?

    public init(key: String, size: Int64? = nil, etag: String? = nil, lastModified: String? = nil) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
    }

    /// Size, ETag and modification time together: a re-published archive changes it, so a re-run
    /// asks for the CHECKSUM of a done unit only when this differs from what was recorded.
    public var fingerprint: String { "\(size.map(String.init) ?? "?") \(etag ?? "-") \(lastModified ?? "-")" }
}

/// One page of an S3 ListBucket answer.
public struct ListingPage: Equatable, Sendable {
    public var prefixes: [String] = []
    public var files: [ListedFile] = []
    public var keys: [String] { files.map(\.key) }
    public var isTruncated = false
    public var nextMarker: String?

    /// Parses `<ListBucketResult>` XML: `CommonPrefixes/Prefix`, `Contents/Key`, `IsTruncated`,
    /// `NextMarker`. (A tag scanner: the format is flat and fixed; no XML package is needed.)
    public init(xml: String) throws {
        guard xml.contains("<ListBucketResult") else { throw SourceError.listing(url: "", reason: "not a ListBucketResult: \(xml.prefix(80))") }
        for block in Self.elements("CommonPrefixes", in: xml) { prefixes += Self.elements("Prefix", in: block) }
        for block in Self.elements("Contents", in: xml) {
            guard let key = Self.elements("Key", in: block).first else { continue }
            files.append(ListedFile(key: key, size: Self.elements("Size", in: block).first.flatMap { Int64($0) },
                                    etag: Self.elements("ETag", in: block).first, lastModified: Self.elements("LastModified", in: block).first))
        }
        isTruncated = Self.elements("IsTruncated", in: xml).first == "true"
        nextMarker = Self.elements("NextMarker", in: xml).first
    }

    public init() {}

    static func elements(_ tag: String, in text: String) -> [String] {
        var out: [String] = []
        var rest = text[...]
        while let open = rest.range(of: "<\(tag)>"), let close = rest.range(of: "</\(tag)>", range: open.upperBound..<rest.endIndex) {
            out.append(unescape(String(rest[open.upperBound..<close.lowerBound])))
            rest = rest[close.upperBound...]
        }
        return out
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}

/// Lists folders and files of the public data tree: through the S3 ListBucket endpoint (with
/// pagination) for an HTTP source, or by reading the directory of a local mirror.
public struct ArchiveLister: Sendable {
    public let location: SourceLocation
    public let listingURL: String
    public let retry: RetryPolicy
    /// A session per listing in flight: one session runs its requests one after another, and
    /// the plan lists many keys at once.
    private let pool: SessionPool
    /// Listings from elsewhere than `location` (a fake in tests).
    private let listing: (any FolderListing)?

    public init(location: SourceLocation, listingURL: String = SourceLocation.defaultListing, retry: RetryPolicy = .init(),
                timeouts: HTTPTimeouts = .init(connect: 10, total: 60)) {
        self.location = location
        self.listingURL = listingURL
        self.retry = retry
        pool = SessionPool(timeouts: timeouts)
        listing = nil
    }

    /// A lister whose folders and files come from `listing` (archives are still fetched from
    /// `location`).
    public init(listing: any FolderListing, location: SourceLocation) {
        (self.location, self.listingURL, self.retry) = (location, "", RetryPolicy())
        pool = SessionPool(timeouts: .init())
        self.listing = listing
    }

    /// Sub-folders (full prefixes ending in `/`) and files (with size, ETag, modification time)
    /// directly under `prefix`. As in S3, the prefix may end inside a name
    /// (`.../BTCUSDT-1m-2024-02-` lists one month of daily archives), and a prefix that names
    /// nothing lists as empty.
    public func list(prefix: String, after: String? = nil) async throws -> (folders: [String], files: [ListedFile]) {
        if let listing { return try await listing.list(prefix: prefix, after: after) }
        switch location {
        case let .directory(root):
            return try MirrorListing(root: root).list(prefix: prefix, after: after)
        case .http:
            let session = await pool.take()
            defer { Task { await pool.give(session) } }
            var folders: [String] = [], files: [ListedFile] = []
            var marker: String? = after
            repeat {
                var url = listingURL + "?delimiter=/&prefix=" + Self.escape(prefix)
                if let marker { url += "&marker=" + Self.escape(marker) }
                let response = try await retry.run(url: url) { try await session.perform(method: "GET", url: url) }.response
                guard response.status == 200 else { throw SourceError.http(url: url, status: response.status, attempts: 1) }
                let page: ListingPage
                do {
                    page = try ListingPage(xml: String(decoding: response.body, as: UTF8.self))
                } catch {
                    throw SourceError.listing(url: url, reason: "\(error)")
                }
                folders += page.prefixes
                files += page.files
                // Continue after NextMarker, or after the last key or prefix when it is absent.
                marker = page.isTruncated ? (page.nextMarker ?? [page.keys.last, page.prefixes.last].compactMap { $0 }.max()) : nil
                if page.isTruncated && marker == nil { throw SourceError.listing(url: url, reason: "truncated page without a marker") }
            } while marker != nil
            return (folders, files)
        }
    }

    /// Symbols of a market's monthly klines (or another dataset's), filtered by quote asset suffix
    /// and/or a glob (`*`, `?`).
    public func symbols(market: Market, dataset: KlineDataset = .klines, quote: String? = nil, match: String? = nil) async throws -> [String] {
        try await symbols(folder: "data/\(market.rawValue)/monthly/\(dataset.rawValue)/", quote: quote, match: match)
    }

    /// The symbol folders under `prefix`, filtered as `symbols(market:...)` does.
    func symbols(folder prefix: String, quote: String?, match: String?) async throws -> [String] {
        let names = try await list(prefix: prefix).folders.map { String($0.dropFirst(prefix.count).dropLast()) }
        return names.filter { name in
            (try? validateSymbol(name)) != nil
                && (quote.map { name.hasSuffix($0) } ?? true)
                && (match.map { Self.glob($0, name) } ?? true)
        }.sorted()
    }

    /// The published archives of a symbol and interval, monthly or daily, by period; `month` or
    /// `year` narrows a daily listing to that month's or year's files (S3 prefixes may end inside
    /// a name: one request instead of the whole folder).
    /// `from` (daily only): that month's files and those after it in the same year, in one request
    /// (the year's prefix, starting after the month before: a nightly's recent months at once).
    public func published(market: Market, dataset: KlineDataset = .klines, symbol: String, interval: KlineInterval, daily: Bool,
                          month: ArchivePeriod? = nil, year: Int? = nil, from: ArchivePeriod? = nil) async throws -> [ArchivePeriod: ListedFile] {
        try validateSymbol(symbol)
        let folder = "data/\(market.rawValue)/\(daily ? "daily" : "monthly")/\(dataset.rawValue)/\(symbol)/\(interval.name)/"
        var prefix = folder, after: String?
        if let month {
            prefix += "\(symbol)-\(interval.name)-\(month)-"
        } else if let from {
            prefix += "\(symbol)-\(interval.name)-\(String(format: "%04d", from.year))-"
            after = folder + "\(symbol)-\(interval.name)-\(String(format: "%04d-%02d", from.year, from.month))-"  // before its day 01
        } else if let year {
            prefix += "\(symbol)-\(interval.name)-\(String(format: "%04d", year))-"
        }
        return try await published(prefix: prefix, after: after) { key in
            guard let name = KlineArchiveName(fileName: key), name.symbol == symbol, name.interval == interval,
                  (name.period.kind == .day) == daily else { return nil }
            return name.period
        }
    }

    /// The archives (`.zip`) listed under `prefix` by the period `period(key)` gives them; files
    /// it gives none (another name, another symbol) are left out.
    func published(prefix: String, after: String? = nil, period: (String) -> ArchivePeriod?) async throws -> [ArchivePeriod: ListedFile] {
        var out: [ArchivePeriod: ListedFile] = [:]
        for file in try await list(prefix: prefix, after: after).files where file.key.hasSuffix(".zip") {
            if let p = period(file.key) { out[p] = file }
        }
        return out
    }

    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_.~/"))) ?? s
    }

    static func glob(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        func match(_ i: Int, _ j: Int) -> Bool {
            if i == p.count { return j == t.count }
            if p[i] == "*" { return (j...t.count).contains { match(i + 1, $0) } }
            return j < t.count && (p[i] == "?" || p[i] == t[j]) && match(i + 1, j + 1)
        }
        return match(0, 0)
    }
}

/// What lists the data tree's folders and files under a prefix, as S3's ListBucket does with a
/// delimiter: the S3 endpoint, a local mirror, or a fake in tests.
public protocol FolderListing: Sendable {
    /// The folders and files under `prefix`; with `after`, only the keys that sort after it (S3's
    /// `marker`: one request can start inside a folder).
    func list(prefix: String, after: String?) async throws -> (folders: [String], files: [ListedFile])
}

/// A local mirror's listing: its directories read in place.
public struct MirrorListing: FolderListing {
    public let root: String
    public init(root: String) { self.root = root }

    public func list(prefix: String, after: String? = nil) throws -> (folders: [String], files: [ListedFile]) {
        let folder = prefix.isEmpty || prefix.hasSuffix("/") ? prefix : String(prefix[..<(prefix.lastIndex(of: "/").map { prefix.index(after: $0) } ?? prefix.startIndex)])
        let namePrefix = prefix.dropFirst(folder.count)
        let dir = (root as NSString).appendingPathComponent(folder)
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: dir)
        } catch CocoaError.fileReadNoSuchFile {
            return ([], [])
        } catch {
            throw SourceError.io(path: dir, reason: "cannot list the mirror folder: \(error.localizedDescription)")
        }
        var folders: [String] = [], files: [ListedFile] = []
        for name in names.sorted() where name.hasPrefix(namePrefix) && after.map({ folder + name > $0 }) != false {
            let path = (dir as NSString).appendingPathComponent(name)
            var info = stat()
            guard stat(path, &info) == 0 else { continue }  // vanished since the listing
            if (info.st_mode & S_IFMT) == S_IFDIR {
                folders.append(folder + name + "/")
            } else {
                let modified = "\(info.st_mtim.tv_sec).\(String(format: "%09d", info.st_mtim.tv_nsec))"
                files.append(ListedFile(key: folder + name, size: Int64(info.st_size), lastModified: modified))
            }
        }
        return (folders, files)
    }
}
