import CurlHTTP
import Foundation
import FuturesArchive
import KlineArchive
import TestSupport
import XCTest
@testable import BinanceSource

/// The Binance source against the fixture archive server (and local mirrors): listing with
/// pages, verified and cached downloads of the real archives, every fault, monthly/daily stitching.
final class BinanceSourceTests: XCTestCase {
    var tree: URL!
    var server: ServerProcess!
    let fast = RetryPolicy(maxAttempts: 4, baseDelay: 0.05, maxDelay: 0.2, jitter: 0.25)

    /// A temporary tree in the remote layout holding the real archives of ../shared/binance.
    override func setUpWithError() throws {
        let shared = ServerProcess.shared.appendingPathComponent("binance")
        guard FileManager.default.fileExists(atPath: shared.path) else { throw missing("../shared/binance is absent (\(shared.path))") }
        tree = FileManager.default.temporaryDirectory.appendingPathComponent("binance-tree-\(getpid())-\(UUID().uuidString.prefix(8))")
        let fm = FileManager.default
        for (interval, days) in [("1m", ["2020-01-01", "2020-01-02", "2020-01-03"]), ("1h", ["2026-05-08", "2026-05-09"])] {
            let dir = tree.appendingPathComponent("data/spot/daily/klines/BTCUSDT/\(interval)")
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            for day in days {
                for suffix in [".zip", ".zip.CHECKSUM"] {
                    let name = "BTCUSDT-\(interval)-\(day)\(suffix)"
                    try fm.copyItem(at: shared.appendingPathComponent(name), to: dir.appendingPathComponent(name))
                }
            }
        }
        for symbol in ["ETHUSDT", "BNBUSDT", "ETHBTC", "XRPUSDT", "SOLUSDT"] {
            try fm.createDirectory(at: tree.appendingPathComponent("data/spot/monthly/klines/\(symbol)/1m"), withIntermediateDirectories: true)
        }
        server = try ServerProcess.required(script: "Tests/servers/archive_server.py", arguments: [tree.path, "--page-size", "2"])
    }

    override func tearDownWithError() throws {
        server?.stop()
        if let tree { try? FileManager.default.removeItem(at: tree) }
    }

    func fetcher(checksumRequired: Bool = true, retry: RetryPolicy? = nil, lowSpeedSeconds: Int = 0) -> ArchiveFetcher {
        ArchiveFetcher(location: .http(base: server.base + "/"), cacheDirectory: tree.path + "-cache", checksumRequired: checksumRequired,
                       retry: retry ?? fast, timeouts: .init(connect: 2, total: 20, lowSpeedBytes: 1000, lowSpeedSeconds: lowSpeedSeconds))
    }

    func address(_ day: String, _ interval: String = "1m") throws -> ArchiveAddress {
        let p = day.split(separator: "-").map { Int($0)! }
        return try ArchiveAddress(market: .spot, symbol: "BTCUSDT", interval: KlineInterval(interval)!, period: ArchivePeriod(year: p[0], month: p[1], day: p[2])!)
    }

    func requests(_ path: String) async throws -> Int {
        ((try await server.stats())["requests"] as! [String: Int])[path] ?? 0
    }

    /// `fetch` fails with an HTTP error of `status` (after `attempts` requests, when given).
    func assertHTTPError(_ fetch: @autoclosure () async throws -> FetchResult, status: Int, attempts: Int? = nil,
                         file: StaticString = #filePath, line: UInt = #line) async {
        do {
            _ = try await fetch()
            XCTFail("expected HTTP \(status)", file: file, line: line)
        } catch let SourceError.http(_, got, tries) {
            XCTAssertEqual(got, status, file: file, line: line)
            if let attempts { XCTAssertEqual(tries, attempts, file: file, line: line) }
        } catch {
            XCTFail("expected HTTP \(status), got \(error)", file: file, line: line)
        }
    }

    func ready(_ result: FetchResult, file: StaticString = #filePath, line: UInt = #line) throws -> LocalArchive {
        guard case let .ready(archive) = result else { throw NotReady(result: "\(result)") }
        return archive
    }

    // MARK: - Addresses and listing

    func testListingPagesSymbolDiscoveryAndAvailability() async throws {
        for location in [SourceLocation.http(base: server.base + "/"), .directory(path: tree.path)] {
            let lister = ArchiveLister(location: location, listingURL: server.base + "/listing", retry: fast)
            try await server.control(["reset": true])
            let all = try await lister.symbols(market: .spot)
            XCTAssertEqual(all, ["BNBUSDT", "ETHBTC", "ETHUSDT", "SOLUSDT", "XRPUSDT"], "\(location)")
            // 5 symbols at 2 a page: 3 listing requests over HTTP, none from a mirror.
            let listings = try await server.stats()["listings"] as! [String]
            XCTAssertEqual(listings, location == .directory(path: tree.path) ? [] : Array(repeating: "data/spot/monthly/klines/", count: 3), "\(location)")
            let usdt = try await lister.symbols(market: .spot, quote: "USDT")
            XCTAssertEqual(usdt, ["BNBUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"])
            let glob = try await lister.symbols(market: .spot, match: "?THU*")
            XCTAssertEqual(glob, ["ETHUSDT"])
            let days = try await lister.published(market: .spot, symbol: "BTCUSDT", interval: KlineInterval("1m")!, daily: true).keys.sorted()
            XCTAssertEqual(days.map(\.description), ["2020-01-01", "2020-01-02", "2020-01-03"])
            let months = try await lister.published(market: .spot, symbol: "BTCUSDT", interval: KlineInterval("1m")!, daily: false)
            XCTAssertEqual(months.count, 0)
            // One month of daily files through a prefix that ends inside the file names.
            let may = try await lister.published(market: .spot, symbol: "BTCUSDT", interval: KlineInterval("1h")!, daily: true,
                                                 month: ArchivePeriod(year: 2026, month: 5)!)
            XCTAssertEqual(may.keys.sorted().map(\.description), ["2026-05-08", "2026-05-09"], "\(location)")
            let april = try await lister.published(market: .spot, symbol: "BTCUSDT", interval: KlineInterval("1h")!, daily: true,
                                                   month: ArchivePeriod(year: 2026, month: 4)!)
            XCTAssertEqual(april.count, 0)
            XCTAssertTrue(may.values.allSatisfy { $0.size != nil && $0.lastModified != nil }, "\(may)")
            if case .http = location {
                let listings = try await server.stats()["listings"] as! [String]
                XCTAssertTrue(listings.contains("data/spot/daily/klines/BTCUSDT/1h/BTCUSDT-1h-2026-05-"), "\(listings)")
            }
        }
    }

    /// A replaced archive lists with another fingerprint, over HTTP (ETag, size, time) and from a
    /// mirror (size, modification time): that is how a re-run notices a re-published archive
    /// without asking for every CHECKSUM.
    func testAReplacedArchiveListsWithAnotherFingerprint() async throws {
        let path = tree.appendingPathComponent(try address("2020-01-02").remotePath)
        for location in [SourceLocation.http(base: server.base + "/"), .directory(path: tree.path)] {
            let lister = ArchiveLister(location: location, listingURL: server.base + "/listing", retry: fast)
            func fingerprints() async throws -> [String: String] {
                let files = try await lister.published(market: .spot, symbol: "BTCUSDT", interval: KlineInterval("1m")!, daily: true)
                return Dictionary(uniqueKeysWithValues: files.map { ($0.key.description, $0.value.fingerprint) })
            }
            let before = try await fingerprints()
            let again = try await fingerprints()
            XCTAssertEqual(again, before, "stable while nothing changes")
            var bytes = try Data(contentsOf: path)
            bytes[bytes.count / 2] ^= 1
            try bytes.write(to: path)
            let after = try await fingerprints()
            XCTAssertNotEqual(after["2020-01-02"], before["2020-01-02"], "\(location)")
            XCTAssertEqual(after["2020-01-01"], before["2020-01-01"])
        }
    }

    func testListingWithoutNextMarkerContinuesAfterTheLastEntry() async throws {
        let other = try ServerProcess(script: "Tests/servers/archive_server.py", arguments: [tree.path, "--page-size", "1", "--no-next-marker"])
        defer { other.stop() }
        let lister = ArchiveLister(location: .http(base: other.base + "/"), listingURL: other.base + "/listing", retry: fast)
        let symbols = try await lister.symbols(market: .spot)
        XCTAssertEqual(symbols.count, 5)
    }

    // MARK: - Downloads

    func testRealArchivesDownloadVerifiedAndComeFromTheCacheTheSecondTime() async throws {
        let f = fetcher()
        let addresses = try ["2020-01-01", "2020-01-02", "2020-01-03"].map { try address($0) } + [try address("2026-05-08", "1h"), try address("2026-05-09", "1h")]
        let collector = Collector()
        await f.fetchAll(addresses, parallelism: 3) { a, r in await collector.add(a, r) }
        let first = await collector.results
        XCTAssertEqual(first.count, 5)
        for (a, r) in first {
            let archive = try ready(try r.get())
            XCTAssertFalse(archive.fromCache)
            XCTAssertEqual(archive.path, f.cachedPath(a))
            let published = try String(contentsOf: tree.appendingPathComponent(a.checksumPath), encoding: .utf8)
            XCTAssertEqual(archive.sha256, String(published.prefix(64)))
            let (_, report) = try KlineArchiveDecoder.decode(path: archive.path)
            XCTAssertEqual(report.rows, a.interval.name == "1m" ? 1440 : 24)
        }
        for a in addresses {
            let again = try ready(try await f.fetch(a))
            XCTAssertTrue(again.fromCache)
            let zips = try await requests(a.remotePath)
            XCTAssertEqual(zips, 1, "\(a): downloaded once")
        }
    }

    /// nginx over TLS serving the tree (HTTP/2 unless `http1Only`), its CA trusted for the test,
    /// logging which connection carried each request to `<dir>/access.log`; stopped at teardown.
    func startTLSFileServer(http1Only: Bool = false) throws -> (server: ServerProcess, dir: String) {
        let dir = tree.path + (http1Only ? "-h1" : "-h2")
        let nginx = try ServerProcess.required(script: "Tests/servers/tls_proxy.py",
                                               arguments: ["--root", tree.path, "--dir", dir] + (http1Only ? ["--http1-only"] : []))
        setenv("CURL_CA_BUNDLE", dir + "/ca.pem", 1)
        addTeardownBlock {
            unsetenv("CURL_CA_BUNDLE")
            nginx.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
        return (nginx, dir)
    }

    /// data.binance.vision speaks HTTP/2 (issue 35): concurrent downloads from it are streams of
    /// one connection, not a connection each. With `source.http: 1.1` the same downloads keep to
    /// HTTP/1.1, a connection each.
    func testConcurrentDownloadsFromAnHTTP2ServerShareOneConnection() async throws {
        let (nginx, dir) = try startTLSFileServer()
        let (protocols, connections) = try await fetchLogged(base: "https://127.0.0.1:\(nginx.port)/", log: dir + "/access.log", http2: true)
        XCTAssertEqual(protocols, ["HTTP/2.0"])
        XCTAssertEqual(connections, 1, "10 requests, 5 at a time, on one connection")
        try FileManager.default.removeItem(atPath: dir + "/access.log")
        kill(pid_t(try String(contentsOfFile: dir + "/nginx.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))!, SIGUSR1)  // reopen the log
        let (protocols1, connections1) = try await fetchLogged(base: "https://127.0.0.1:\(nginx.port)/", log: dir + "/access.log", http2: false)
        XCTAssertEqual(protocols1, ["HTTP/1.1"])
        XCTAssertGreaterThan(connections1, 1)
    }

    /// A server over TLS that speaks only HTTP/1.1, 100 ms away: downloads that waited to learn
    /// whether the first connection multiplexes must then open connections of their own, not
    /// take turns on that one.
    func testConcurrentDownloadsFromAnHTTP1OnlyTLSServerOpenConnectionsOfTheirOwn() async throws {
        let (nginx, dir) = try startTLSFileServer(http1Only: true)
        let far = try ServerProcess.required(script: "Tests/servers/latency_proxy.py", arguments: ["--upstream", "\(nginx.port)", "--delay-ms", "50"])
        defer { far.stop() }
        let (protocols, connections) = try await fetchLogged(base: "https://127.0.0.1:\(far.port)/", log: dir + "/access.log", http2: true)
        XCTAssertEqual(protocols, ["HTTP/1.1"])
        XCTAssertGreaterThan(connections, 2, "10 requests, 5 at a time, took turns on \(connections) connection(s)")
    }

    /// Fetches the tree's 5 archives, 5 at a time, into a fresh cache; the protocols and number of
    /// connections the server's log shows.
    func fetchLogged(base: String, log: String, http2: Bool) async throws -> (protocols: Set<String>, connections: Int) {
        let cache = tree.path + "-h2-cache"
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let f = ArchiveFetcher(location: .http(base: base), cacheDirectory: cache, retry: fast, timeouts: .init(connect: 2, total: 20), http2: http2)
        let addresses = try ["2020-01-01", "2020-01-02", "2020-01-03"].map { try address($0) } + [try address("2026-05-08", "1h"), try address("2026-05-09", "1h")]
        let collector = Collector()
        await f.fetchAll(addresses, parallelism: 5) { a, r in await collector.add(a, r) }
        for (a, r) in await collector.results {
            let archive = try ready(try r.get())
            let published = try String(contentsOf: tree.appendingPathComponent(a.checksumPath), encoding: .utf8)
            XCTAssertEqual(archive.sha256, String(published.prefix(64)), "\(a.remotePath)")
        }
        var lines: [[Substring]] = []
        for _ in 0..<50 {  // nginx writes a request's line once it is done
            lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ") }
            if lines.count >= 10 { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertEqual(lines.count, 10, "a zip and its CHECKSUM for each of the 5 archives")
        return (Set(lines.map { String($0[1]) }), Set(lines.map { $0[0] }).count)
    }

    func testRepublishedArchiveIsDownloadedAgain() async throws {
        let f = fetcher()
        let a = try address("2020-01-02")
        _ = try ready(try await f.fetch(a))
        // Binance re-publishes: new bytes, new CHECKSUM (here: the 01-03 archive under this name).
        let other = try Data(contentsOf: tree.appendingPathComponent(try address("2020-01-03").remotePath))
        try other.write(to: tree.appendingPathComponent(a.remotePath))
        let sha = try ArchiveFetcher.sha256(ofFile: tree.appendingPathComponent(a.remotePath).path)
        try "\(sha)  \(a.fileName)\n".write(to: tree.appendingPathComponent(a.checksumPath), atomically: true, encoding: .utf8)
        let again = try ready(try await f.fetch(a))
        XCTAssertFalse(again.fromCache)
        XCTAssertEqual(again.sha256, sha)
        let zips = try await requests(a.remotePath)
        XCTAssertEqual(zips, 2)
    }

    func testServerErrorsAndResetsAreRetried() async throws {
        let a = try address("2020-01-01")
        for fault: Any in [500, 503, "reset", "truncate"] {
            try await server.control(["reset": true])
            try await server.control(["path": a.remotePath, "fault": fault, "times": 2])
            let f = fetcher()
            try? FileManager.default.removeItem(atPath: f.cachedPath(a))
            let archive = try ready(try await f.fetch(a))
            let seen = try await requests(a.remotePath)
            XCTAssertEqual(seen, 3, "\(fault): two failures, then success")
            // (libcurl itself re-sends once when a reused connection is reset before any answer.)
            XCTAssertTrue((2...3).contains(archive.attempts), "\(fault): \(archive.attempts) attempts")
            XCTAssertNotNil(archive.sha256)
        }
        try await server.control(["reset": true])
        try await server.control(["path": a.remotePath, "fault": 500, "times": 10])
        let f = fetcher()
        try? FileManager.default.removeItem(atPath: f.cachedPath(a))
        await assertHTTPError(try await f.fetch(a), status: 500, attempts: 4)  // maxAttempts
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.cachedPath(a)), "nothing half-written in the cache")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: (f.cachedPath(a) as NSString).deletingLastPathComponent).filter { $0.contains(".part-") }
        XCTAssertEqual(leftovers, [])
    }

    /// A failed attempt closes its file: after three failing fetches (4 attempts each) this
    /// process holds no descriptor of a partial download (sockets come and go with libcurl's
    /// connections, so only files under the cache are counted).
    func testFailedDownloadAttemptsLeakNoDescriptor() async throws {
        let a = try address("2020-01-01")
        let f = fetcher()
        try await server.control(["path": a.remotePath, "fault": "truncate", "times": 100])
        for _ in 0..<3 {
            do {
                _ = try await f.fetch(a)
                XCTFail("a truncated body was accepted")
            } catch let SourceError.transport(url, _, attempts) {
                // The truncation, retried to the policy's end: not any error at all.
                XCTAssertTrue(url.hasSuffix(a.remotePath), url)
                XCTAssertEqual(attempts, 4)
            }
        }
        // A leak holds its descriptor for ever; a failed attempt's file may be closed a moment
        // after the fetch returns (its sink goes with the transfer's last reference), so wait
        // up to 2 s before calling it one.
        func openFiles() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")
                .compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0) }
                .filter { $0.hasPrefix(tree.path + "-cache") }
        }
        var open = try openFiles()
        for _ in 0..<40 where !open.isEmpty {
            try await Task.sleep(nanoseconds: 50_000_000)
            open = try openFiles()
        }
        XCTAssertEqual(open, [])
    }

    func testRetryAfterIsHonouredFor429And418And503() async throws {
        let a = try address("2020-01-02")
        for status in [429, 418, 503] {
            try await server.control(["reset": true])
            try await server.control(["path": a.remotePath, "fault": status, "times": 1, "retry_after": 1])
            let f = fetcher()
            try? FileManager.default.removeItem(atPath: f.cachedPath(a))
            _ = try ready(try await f.fetch(a))
            let times = ((try await server.stats())["times"] as! [String: [Double]])[a.remotePath]!
            XCTAssertEqual(times.count, 2)
            XCTAssertGreaterThanOrEqual(times[1] - times[0], 0.95, "\(status): waited for Retry-After")
        }
        // A Retry-After longer than the policy accepts fails at once, saying so.
        try await server.control(["reset": true])
        try await server.control(["path": a.remotePath, "fault": 429, "times": 1, "retry_after": 3600])
        let f = fetcher(retry: RetryPolicy(maxAttempts: 4, baseDelay: 0.05, maxRetryAfter: 60))
        try? FileManager.default.removeItem(atPath: f.cachedPath(a))
        await assertHTTPError(try await f.fetch(a), status: 429, attempts: 1)
    }

    func testStalledBodyTimesOutAndIsRetried() async throws {
        let a = try address("2020-01-03")
        try await server.control(["path": a.remotePath, "fault": "stall", "times": 1, "seconds": 60])
        let started = Date()
        let archive = try ready(try await fetcher(lowSpeedSeconds: 1).fetch(a))
        XCTAssertEqual(archive.attempts, 2)
        XCTAssertLessThan(Date().timeIntervalSince(started), 30, "the low-speed timeout cut the 60 s stall short")
    }

    /// The archive takes its cache name only once its hash matched the CHECKSUM (issue 32): while
    /// the CHECKSUM is slow to come, the downloaded bytes wait under a temporary name, so a crash
    /// then leaves no unverified file where the cache is trusted.
    func testADownloadIsNamedInTheCacheOnlyAfterItsChecksumMatched() async throws {
        let a = try address("2020-01-03")
        try await server.control(["path": a.remotePath + ".CHECKSUM", "fault": "delay", "seconds": 2, "times": 1])
        let f = fetcher()
        let fetch = Task { try await f.fetch(a) }
        let dir = (f.cachedPath(a) as NSString).deletingLastPathComponent
        var sawPart = false
        let deadline = Date().addingTimeInterval(1.8)
        while Date() < deadline {
            XCTAssertFalse(FileManager.default.fileExists(atPath: f.cachedPath(a)), "named before its CHECKSUM came")
            sawPart = sawPart || ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).contains { $0.contains(".part-") }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertTrue(sawPart, "the download was under way while the CHECKSUM was awaited")
        let fetched = try await fetch.value
        XCTAssertNotNil(try ready(fetched).sha256)
        XCTAssertTrue(FileManager.default.fileExists(atPath: f.cachedPath(a)))
    }

    func testChecksumFaults() async throws {
        let a = try address("2020-01-01")
        // Wrong once: the download is retried from scratch and verifies.
        try await server.control(["path": a.remotePath, "fault": "wrong_checksum", "times": 1])
        let f = fetcher()
        do {
            _ = try await f.fetch(a)
            XCTFail("the CHECKSUM is fetched once per fetch; a wrong one fails both rounds")
        } catch let SourceError.checksumMismatch(_, expected, actual) {
            XCTAssertEqual(expected, String(repeating: "0", count: 64))
            XCTAssertEqual(actual, "dd579c62368ded93d3f01a1904575b932279e32936e181c062763e605793c1c2")
        }
        let zips = try await requests(a.remotePath)
        XCTAssertEqual(zips, 2, "retried once from scratch")
        XCTAssertFalse(FileManager.default.fileExists(atPath: f.cachedPath(a)))
        let rerun = try await f.fetch(a)
        XCTAssertNotNil(try ready(rerun).sha256, "a re-run with a good CHECKSUM succeeds")

        let b = try address("2020-01-02")
        try await server.control(["path": b.remotePath, "fault": "missing_checksum", "times": 2])
        do {
            _ = try await f.fetch(b)
            XCTFail()
        } catch let SourceError.checksumMissing(url) {
            XCTAssertTrue(url.hasSuffix(b.checksumPath))
        }
        let unverified = try ready(try await fetcher(checksumRequired: false).fetch(b))
        XCTAssertNil(unverified.sha256, "marked unverified")
    }

    func testNotPublishedAndOtherClientErrors() async throws {
        let missing = try address("2020-01-04")
        let result = try await fetcher().fetch(missing)
        XCTAssertEqual(result, .notPublished(missing.remotePath))
        let zips = try await requests(missing.remotePath)
        XCTAssertEqual(zips, 1, "404 is not retried")
        let a = try address("2020-01-01")
        try await server.control(["path": a.remotePath, "fault": 403, "times": 5])
        await assertHTTPError(try await fetcher().fetch(a), status: 403)
    }

    func testLocalMirrorsNeedNoHTTP() async throws {
        server.stop()
        for spec in ["file://" + tree.path, tree.path] {
            let f = ArchiveFetcher(location: SourceLocation(spec), cacheDirectory: "/nonexistent")
            let a = try address("2020-01-02")
            let archive = try ready(try await f.fetch(a))
            XCTAssertEqual(archive.path, tree.appendingPathComponent(a.remotePath).path)
            XCTAssertEqual(archive.sha256, "66c701b381d5c2482343ba1c7f600e55d3f5c18f0117ff0789d043a21b62bab6")
            let missing = try address("2021-01-01")
            let result = try await f.fetch(missing)
            XCTAssertEqual(result, .notPublished(missing.remotePath))
        }
        // A CHECKSUM that exists but cannot be read is an error, not a missing CHECKSUM (which
        // `checksum: optional` would accept).
        let a = try address("2020-01-03")
        let sum = tree.appendingPathComponent(a.checksumPath)
        try FileManager.default.removeItem(at: sum)
        try FileManager.default.createDirectory(at: sum, withIntermediateDirectories: false)
        let lenient = ArchiveFetcher(location: .directory(path: tree.path), cacheDirectory: "/nonexistent", checksumRequired: false)
        for attempt in [{ _ = try await lenient.fetch(a) }, { _ = try await lenient.publishedChecksum(a) }] as [() async throws -> Void] {
            do {
                try await attempt()
                XCTFail("an unreadable CHECKSUM was taken as absent")
            } catch let SourceError.io(path, reason) {
                XCTAssertEqual(path, sum.path)
                XCTAssertTrue(reason.hasPrefix("cannot read"), reason)
            }
        }
    }

    // MARK: - Stitching

}

/// The source's pure logic: addresses, listing pages, the plan's calendar. No server and no
/// ../shared needed, so these run everywhere.
final class BinanceSourceUnitTests: XCTestCase {
    func address(_ day: String, _ interval: String = "1m") throws -> ArchiveAddress {
        let p = day.split(separator: "-").map { Int($0)! }
        return try ArchiveAddress(market: .spot, symbol: "BTCUSDT", interval: KlineInterval(interval)!, period: ArchivePeriod(year: p[0], month: p[1], day: p[2])!)
    }

    func testAddressesAndTheirRules() throws {
        let a = try ArchiveAddress(market: .futuresUM, symbol: "BTCUSDT", interval: KlineInterval("1h")!, period: ArchivePeriod(year: 2024, month: 1)!)
        XCTAssertEqual(a.remotePath, "data/futures/um/monthly/klines/BTCUSDT/1h/BTCUSDT-1h-2024-01.zip")
        XCTAssertEqual(try address("2020-01-02").remotePath, "data/spot/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2020-01-02.zip")
        XCTAssertThrowsError(try ArchiveAddress(market: .futuresCM, symbol: "BTCUSD_PERP", interval: KlineInterval("1s")!, period: ArchivePeriod(year: 2024, month: 1)!))
        XCTAssertThrowsError(try ArchiveAddress(market: .spot, symbol: "BTCUSDT", interval: KlineInterval("1w")!, period: ArchivePeriod(year: 2024, month: 1, day: 1)!))
        for bad in ["../etc", "btcusdt", "A", "BTC/USDT", "BTC USDT", String(repeating: "A", count: 41)] {
            XCTAssertThrowsError(try validateSymbol(bad), bad) { XCTAssertTrue("\($0)".contains("invalid symbol"), "\($0)") }
        }
        XCTAssertNoThrow(try validateSymbol("BTCUSD_260925"))
        // Funding-rate and metrics archives: no interval folder; monthly and daily respectively.
        let funding = try FuturesArchiveAddress(market: .futuresUM, symbol: "BTCUSDT", dataset: .fundingRate, period: ArchivePeriod(year: 2026, month: 4)!)
        XCTAssertEqual(funding.remotePath, "data/futures/um/monthly/fundingRate/BTCUSDT/BTCUSDT-fundingRate-2026-04.zip")
        XCTAssertEqual(funding.checksumPath, funding.remotePath + ".CHECKSUM")
        let metrics = try FuturesArchiveAddress(market: .futuresCM, symbol: "BTCUSD_PERP", dataset: .metrics, period: ArchivePeriod(year: 2026, month: 6, day: 24)!)
        XCTAssertEqual(metrics.remotePath, "data/futures/cm/daily/metrics/BTCUSD_PERP/BTCUSD_PERP-metrics-2026-06-24.zip")
        XCTAssertEqual(metrics.futuresMarket, .cm)
        XCTAssertThrowsError(try FuturesArchiveAddress(market: .spot, symbol: "BTCUSDT", dataset: .fundingRate, period: ArchivePeriod(year: 2026, month: 4)!))
        XCTAssertThrowsError(try FuturesArchiveAddress(market: .futuresUM, symbol: "BTCUSDT", dataset: .metrics, period: ArchivePeriod(year: 2026, month: 4)!))
        XCTAssertThrowsError(try FuturesArchiveAddress(market: .futuresUM, symbol: "BTCUSDT", dataset: .fundingRate, period: ArchivePeriod(year: 2026, month: 4, day: 1)!))
    }

    func testListingPageParsing() throws {
        let xml = """
        <?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>data.binance.vision</Name>\
        <Prefix>data/spot/monthly/klines/</Prefix><Marker></Marker><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>\
        <NextMarker>data/spot/monthly/klines/1INCHBTC/</NextMarker><CommonPrefixes><Prefix>data/spot/monthly/klines/1INCHBTC/</Prefix></CommonPrefixes>\
        <Contents><Key>data/a&amp;b.zip</Key><Size>1</Size></Contents></ListBucketResult>
        """
        let page = try ListingPage(xml: xml)
        XCTAssertEqual(page.prefixes, ["data/spot/monthly/klines/1INCHBTC/"])
        XCTAssertEqual(page.keys, ["data/a&b.zip"])
        XCTAssertTrue(page.isTruncated)
        XCTAssertEqual(page.nextMarker, "data/spot/monthly/klines/1INCHBTC/")
        XCTAssertThrowsError(try ListingPage(xml: "<html>not a listing</html>"))
    }

    func testCalendarOfThePlan() {
        XCTAssertEqual(PeriodPlanner.months(from: ArchivePeriod(year: 2023, month: 11)!, to: ArchivePeriod(year: 2024, month: 2)!).map(\.description),
                       ["2023-11", "2023-12", "2024-01", "2024-02"])
        XCTAssertEqual(PeriodPlanner.months(back: 2, from: ArchivePeriod(year: 2024, month: 1)!).description, "2023-11")
        XCTAssertEqual(PeriodPlanner.months(back: 0, from: ArchivePeriod(year: 2024, month: 12)!).description, "2024-12")
        XCTAssertEqual(PeriodPlanner.days(of: ArchivePeriod(year: 2024, month: 2)!).map(\.description).last, "2024-02-29")
        XCTAssertEqual(PeriodPlanner.today(now: 1_704_067_200 + 86399).description, "2024-01-01")
    }
}

actor Collector {
    var results: [(ArchiveAddress, Result<FetchResult, Error>)] = []
    func add(_ a: ArchiveAddress, _ r: Result<FetchResult, Error>) { results.append((a, r)) }
}

struct NotReady: Error, CustomStringConvertible {
    let result: String
    var description: String { "the fetch did not give a ready archive: \(result)" }
}

/// Answers from outside are checked, never trusted with a force unwrap.
final class RestParseTests: XCTestCase {
    func kline(_ open: String, _ close: String = "1704067259999") -> [UInt8] {
        Array(#"[[\#(open),"1.0","2.0","0.5","1.5","10",\#(close),"15",3,"5","7.5","0"]]"#.utf8)
    }

    func testAKlineParsesExactly() throws {
        let k = try RestClient.parse(kline("1704067200000"), url: "u")
        XCTAssertEqual(k, [RestKline(openTime: 1_704_067_200_000, closeTime: 1_704_067_259_999,
                                     csvLine: "1704067200000,1.0,2.0,0.5,1.5,10,1704067259999,15,3,5,7.5,0")])
    }

    /// An open time past Int64 (2^63) or negative is malformed: an error naming the field.
    func testTimesOutOfRangeAreMalformedNotACrash() {
        for (open, close) in [("9223372036854775808", "1"), ("-1", "1"), ("1", "18446744073709551615")] {
            XCTAssertThrowsError(try RestClient.parse(kline(open, close), url: "https://api/klines")) { error in
                XCTAssertTrue("\(error)".contains("field"), "\(open) \(close): \(error)")
            }
        }
    }

    /// The funding history: times as integers, rates kept as sent; anything else is malformed.
    func testFundingHistoryParsesExactlyAndRefusesWhatItIsNot() throws {
        let body = Array(#"[{"symbol":"BTCUSDT","fundingTime":1777507200004,"fundingRate":"-0.00004220","markPrice":"1.0"}]"#.utf8)
        XCTAssertEqual(try RestClient.parseFunding(body, url: "u"), [RestFunding(fundingTime: 1_777_507_200_004, rate: "-0.00004220")])
        for bad in [#"{"code":-1121}"#, #"[{"fundingTime":"1","fundingRate":"0.1"}]"#, #"[{"fundingTime":1,"fundingRate":0.1}]"#,
                    #"[{"fundingTime":9223372036854775808,"fundingRate":"0.1"}]"#, #"[{"fundingTime":1,"fundingRate":"1e5x"}]"#] {
            XCTAssertThrowsError(try RestClient.parseFunding(Array(bad.utf8), url: "https://fapi/fundingRate"), bad) { error in
                XCTAssertTrue("\(error)".contains("https://fapi/fundingRate: unexpected answer"), "\(bad): \(error)")
            }
        }
    }

    /// Today's date from an epoch, on both sides of midnight and of a leap day.
    func testTodayFromAnEpoch() {
        XCTAssertEqual(PeriodPlanner.today(now: 1_709_164_799), ArchivePeriod(year: 2024, month: 2, day: 28))
        XCTAssertEqual(PeriodPlanner.today(now: 1_709_164_800), ArchivePeriod(year: 2024, month: 2, day: 29))
        XCTAssertEqual(PeriodPlanner.today(now: -1), ArchivePeriod(year: 1970, month: 1, day: 1), "before the first period")
        XCTAssertEqual(PeriodPlanner.today(now: .max), ArchivePeriod(year: 9999, month: 12, day: 31), "after the last")
    }
}
