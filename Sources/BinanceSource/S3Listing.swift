import CurlHTTP
import KlineArchive
import Foundation

/// One page of an S3 ListBucket answer.
public struct ListingPage: Equatable, Sendable {
    public var prefixes: [String] = []
    public var keys: [String] = []
    public var isTruncated = false
    public var nextMarker: String?

    /// Parses `<ListBucketResult>` XML: `CommonPrefixes/Prefix`, `Contents/Key`, `IsTruncated`,
    /// `NextMarker`. (A tag scanner: the format is flat and fixed; no XML package is needed.)
    public init(xml: String) throws {
        guard xml.contains("<ListBucketResult") else { throw SourceError.listing(url: "", reason: "not a ListBucketResult: \(xml.prefix(80))") }
        for block in Self.elements("CommonPrefixes", in: xml) { prefixes += Self.elements("Prefix", in: block) }
        for block in Self.elements("Contents", in: xml) { keys += Self.elements("Key", in: block) }
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
    private let session: CurlSession

    public init(location: SourceLocation, listingURL: String = SourceLocation.defaultListing, retry: RetryPolicy = .init(),
                timeouts: HTTPTimeouts = .init(connect: 10, total: 60)) {
        self.location = location
        self.listingURL = listingURL
        self.retry = retry
        session = CurlSession(timeouts: timeouts)
    }

    /// Sub-folders (full prefixes ending in `/`) and files (full keys) directly under `prefix`.
    public func list(prefix: String) async throws -> (folders: [String], files: [String]) {
        switch location {
        case let .directory(root):
            let dir = (root as NSString).appendingPathComponent(prefix)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return ([], []) }
            var folders: [String] = [], files: [String] = []
            for name in names.sorted() {
                var isDir: ObjCBool = false
                FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent(name), isDirectory: &isDir)
                if isDir.boolValue { folders.append(prefix + name + "/") } else { files.append(prefix + name) }
            }
            return (folders, files)
        case .http:
            var folders: [String] = [], files: [String] = []
            var marker: String?
            repeat {
                var url = listingURL + "?delimiter=/&prefix=" + Self.escape(prefix)
                if let marker { url += "&marker=" + Self.escape(marker) }
                let response = try await retry.run(url: url, session: session) { try await session.perform(method: "GET", url: url) }
                guard response.status == 200 else { throw SourceError.http(url: url, status: response.status, attempts: 1) }
                let page: ListingPage
                do {
                    page = try ListingPage(xml: String(decoding: response.body, as: UTF8.self))
                } catch {
                    throw SourceError.listing(url: url, reason: "\(error)")
                }
                folders += page.prefixes
                files += page.keys
                // Continue after NextMarker, or after the last key or prefix when it is absent.
                marker = page.isTruncated ? (page.nextMarker ?? [page.keys.last, page.prefixes.last].compactMap { $0 }.max()) : nil
                if page.isTruncated && marker == nil { throw SourceError.listing(url: url, reason: "truncated page without a marker") }
            } while marker != nil
            return (folders, files)
        }
    }

    /// Symbols of a market's monthly klines, filtered by quote asset suffix and/or a glob (`*`, `?`).
    public func symbols(market: Market, quote: String? = nil, match: String? = nil) async throws -> [String] {
        let prefix = "data/\(market.rawValue)/monthly/klines/"
        let names = try await list(prefix: prefix).folders.map { String($0.dropFirst(prefix.count).dropLast()) }
        return names.filter { name in
            (try? validateSymbol(name)) != nil
                && (quote.map { name.hasSuffix($0) } ?? true)
                && (match.map { Self.glob($0, name) } ?? true)
        }.sorted()
    }

    /// The periods with a published archive for a symbol and interval (`monthly` or daily).
    public func periods(market: Market, symbol: String, interval: KlineInterval, daily: Bool) async throws -> [ArchivePeriod] {
        try validateSymbol(symbol)
        let prefix = "data/\(market.rawValue)/\(daily ? "daily" : "monthly")/klines/\(symbol)/\(interval.name)/"
        return try await list(prefix: prefix).files.compactMap { key in
            guard key.hasSuffix(".zip") else { return nil }
            return KlineArchiveName(fileName: key).flatMap { $0.symbol == symbol && $0.interval == interval ? $0.period : nil }
        }.sorted { $0.start < $1.start }
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
