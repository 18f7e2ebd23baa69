import BinanceSource
import CurlHTTP
import Foundation
import FuturesArchive
import KlineArchive
import MarketStoreModel
import Yams

/// A job file (`jobs/*.yml`), validated. See the README's job file reference.
public struct JobSpec: Sendable {
    public var file: String
    public var name: String
    public var baseURL: String
    public var listingURL: String
    public var cacheDirectory: String
    public var checksumRequired: Bool
    public var deleteArchivesAfterWrite: Bool
    public var market: Market
    /// Explicit symbols, or nil to discover them.
    public var symbols: [String]?
    public var discoverQuote: String?
    public var discoverMatch: String?
    /// `discover.include_delisted` (default true): the archive tree keeps delisted symbols; false
    /// keeps only those Binance's exchangeInfo calls TRADING.
    public var includeDelisted = true
    public var intervals: [KlineInterval]
    public var from: ArchivePeriod
    /// Where the job ends (`to:`).
    public var to: JobEnd
    public var columns: [KlineColumn]
    public var floatType: FloatType
    public var attributeGroup: String
    public var target: ImportTarget
    /// The target was given by `--target` (its mistakes are the command line's, not the file's).
    public var targetFromCommandLine = false
    public var chunkRows: Int
    public var downloads: Int
    /// Keys planned at once (`concurrency.listings`): their listing requests overlap.
    public var listings = 32
    /// Downloads share one connection as HTTP/2 streams where the server offers it
    /// (`source.http: 2`, the default); `1.1` keeps a session and a kept-alive HTTP/1.1
    /// connection per download (for a proxy that mishandles HTTP/2).
    public var http2 = true
    /// `gaps: rest`: each gap the archives leave is asked of REST (filled, or an exchange gap).
    public var confirmGaps = false
    /// Days between deep checks (`recheck_days`): every key's monthly folder listed again, even
    /// when the state says its months are settled.
    public var recheckDays = 7
    public var validation: ValidationPolicy
    public var manifest: String
    /// `to: now`: after the archives, REST klines up to the last closed candle.
    public var toNow: Bool { to == .now }
    /// What the job loads (`dataset:`): everything that differs between datasets is its.
    public var dataset: any Dataset = KlineDataset.klines
    /// The market's REST base URL (`source.rest_url`), Binance's by default.
    public var restURL: String
    /// The share of the REST weight limit a run allows itself (`rest.weight_share`, default 0.5).
    public var restWeightShare = 0.5
    /// The REST weight limit per minute (`rest.weight_limit`, Binance's by default).
    public var restWeightLimit: Int
    /// Set by `--shard K/N`: this run takes that shard's symbols and keeps its own state files.
    public var shard: Shard?
    /// `target.ca_file`: CA certificates to trust for the MarketStore target (a proxy with a
    /// private CA) instead of the system's; the other hosts keep the system's.
    public var caFile: String?
    /// `target.stall_seconds`: a write to MarketStore on which no byte moves either way for this
    /// long is aborted (a hung server); a slow write that keeps moving runs on. Default 20.
    public var stallSeconds = 20

    package static let topKeys: Set<String> = ["name", "source", "market", "dataset", "symbols", "discover", "intervals", "from", "to", "columns", "dtype",
                                       "attribute_group", "target", "write", "concurrency", "validation", "manifest", "rest", "recheck_days", "gaps"]

    /// Reads and validates a job file.
    public static func load(path: String) throws -> JobSpec {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw JobFileError(file: path, key: "", reason: "cannot read the job file: no such file")
        }
        if isDirectory.boolValue { throw JobFileError(file: path, key: "", reason: "cannot read the job file: it is a directory (give a .yml file, such as jobs/demo.yml)") }
        guard access(path, R_OK) == 0 else { throw JobFileError(file: path, key: "", reason: "cannot read the job file: permission denied") }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw JobFileError(file: path, key: "", reason: "cannot read the job file: it is not UTF-8 text")
        }
        return try parse(yaml: text, file: path)
    }

    public static func parse(yaml: String, file: String) throws -> JobSpec {
        func fail(_ key: String, _ reason: String) -> JobFileError { JobFileError(file: file, key: key, reason: reason) }
        // libyaml's own words for a tab ("found character that cannot start any token") do not say what to change.
        for (n, line) in yaml.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where line.prefix(while: { $0 == " " || $0 == "\t" }).contains("\t") {
            throw fail("", "line \(n + 1): a tab in the indentation; YAML does not allow tabs for indentation, use spaces")
        }
        let loaded: Any?
        do { loaded = try Yams.load(yaml: yaml) } catch { throw fail("", "not valid YAML: \(error)") }
        guard let root = loaded as? [String: Any] else { throw fail("", "the job file must be a mapping of keys") }
        try checkKeys(root, allowed: topKeys, prefix: "", fail)

        func string(_ dict: [String: Any], _ key: String, _ full: String, default value: String? = nil) throws -> String {
            guard let v = dict[key] else {
                if let value { return value }
                throw fail(full, "missing (required)")
            }
            if let s = v as? String { return s }
            if let i = v as? Int { return String(i) }
            if let date = v as? Date {  // YAML reads 2024-01-15 as a timestamp
                let day = String(date.formatted(.iso8601).prefix(10))
                if ["from", "to"].contains(full) { throw fail(full, "must be a month YYYY-MM, not the day \(day)") }
                throw fail(full, "must be a string, not the date \(day) (quote it)")
            }
            throw fail(full, "must be a string, not \(v)")
        }
        func section(_ key: String) throws -> [String: Any] {
            guard let v = root[key] else { return [:] }
            guard let d = v as? [String: Any] else { throw fail(key, "must be a mapping") }
            return d
        }
        func int(_ dict: [String: Any], _ key: String, _ full: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
            guard let v = dict[key] else { return value }
            guard let i = v as? Int, range.contains(i) else { throw fail(full, "must be an integer in \(range.lowerBound)...\(range.upperBound), not \(v)") }
            return i
        }

        let name = try string(root, "name", "name")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw fail("name", "use letters, digits, '-', '_' and '.' only")
        }
        let source = try section("source")
        try checkKeys(source, allowed: ["base_url", "cache_dir", "checksum", "listing_url", "delete_after_write", "rest_url", "http"], prefix: "source.", fail)
        let http = try string(source, "http", "source.http", default: "2")
        guard ["2", "1.1"].contains(http) else { throw fail("source.http", "must be 2 (HTTP/2 where the server offers it) or 1.1, not \(http)") }
        let checksum = try string(source, "checksum", "source.checksum", default: "required")
        guard ["required", "optional"].contains(checksum) else { throw fail("source.checksum", "must be required or optional, not \(checksum)") }
        var deleteAfter = false
        if let v = source["delete_after_write"] {
            guard let b = v as? Bool else { throw fail("source.delete_after_write", "must be true or false") }
            deleteAfter = b
        }

        let marketName = try string(root, "market", "market")
        guard let market = Market(rawValue: marketName) else { throw fail("market", "must be spot, futures/um or futures/cm, not \(marketName)") }
        let datasetName = try string(root, "dataset", "dataset", default: "klines")
        guard let dataset = Datasets.named(datasetName) else {
            throw fail("dataset", "must be one of \(Datasets.all.map(\.name).joined(separator: ", ")), not \(datasetName)")
        }
        guard dataset.exists(on: market) else {
            throw fail("dataset", "\(datasetName)\(dataset.fixedSchema == nil ? "" : " archives") exist for futures/um and futures/cm only, not \(marketName)")
        }
        if let fixed = dataset.fixedSchema {
            // One cadence and one schema per dataset: nothing to choose, so a key that would choose
            // is a mistake to say, not to ignore.
            for key in ["intervals", "columns"] + (dataset.defaultFloatType == nil ? ["dtype"] : []) where root[key] != nil {
                throw fail(key, "\(datasetName) archives have no \(key): \(fixed); remove the key")
            }
        }
        if root["gaps"] as? String == "rest", let refusal = dataset.restGapsRefusal { throw fail("gaps", "gaps: rest \(refusal) (use gaps: report)") }
        let restSection = try section("rest")
        try checkKeys(restSection, allowed: ["weight_share", "weight_limit"], prefix: "rest.", fail)
        var share = 0.5
        if let v = restSection["weight_share"] {
            guard let d = (v as? Double) ?? (v as? Int).map(Double.init), d > 0, d <= 1 else { throw fail("rest.weight_share", "must be a number in (0, 1], not \(v)") }
            share = d
        }

        var symbols: [String]?
        var quote: String?, match: String?, includeDelisted = true
        switch (root["symbols"], root["discover"]) {
        case let (list?, nil):
            if let mapping = list as? [String: Any], mapping["discover"] != nil {
                throw fail("symbols", "discover: is a top-level key, not under symbols: (write discover: {quote: USDT} instead of symbols:)")
            }
            guard let l = list as? [Any], !l.isEmpty else { throw fail("symbols", "must be a non-empty list") }
            let listed = try l.map { item in
                guard let s = item as? String else { throw fail("symbols", "\(item) is not a symbol") }
                do { try validateSymbol(s) } catch { throw fail("symbols", "\(error)") }
                return s
            }
            if let twice = firstRepeated(listed) { throw fail("symbols", "\(twice) is listed twice") }
            symbols = listed
        case let (nil, discover?):
            guard let d = discover as? [String: Any] else { throw fail("discover", "must be a mapping {quote, match}") }
            try checkKeys(d, allowed: ["quote", "match", "include_delisted"], prefix: "discover.", fail)
            quote = try d["quote"].map { _ in try string(d, "quote", "discover.quote") }
            match = try d["match"].map { _ in try string(d, "match", "discover.match") }
            if let v = d["include_delisted"] {
                guard let b = v as? Bool else { throw fail("discover.include_delisted", "must be true or false") }
                includeDelisted = b
            }
        case (nil, nil): throw fail("symbols", "missing: give symbols: [...] or discover: {quote: USDT}")
        default: throw fail("symbols", "give either symbols or discover, not both")
        }

        let choosesIntervals = dataset.fixedSchema == nil
        guard let intervalList = choosesIntervals ? root["intervals"] as? [Any] : [], !choosesIntervals || !intervalList.isEmpty else {
            throw fail("intervals", "must be a non-empty list such as [1m]")
        }
        let intervals = try intervalList.map { item -> KlineInterval in
            let text = "\(item)"
            guard let interval = KlineInterval(text) else {
                let valid = KlineInterval.all.map(\.name).joined(separator: ", ")
                let hint = KlineInterval.suggestion(for: text).map { "; did you mean \($0.name)?" } ?? ""
                throw fail("intervals", "unknown interval \(text) (valid: \(valid))\(hint)")
            }
            if interval.name == "1s" && market != .spot { throw fail("intervals", "1s klines exist for spot only, not \(market.rawValue)") }
            guard Timeframe.byBinanceInterval[interval.name] != nil else {
                throw fail("intervals", "\(interval.name): MarketStore cannot serve this timeframe back; use one of \(Timeframe.byBinanceInterval.keys.sorted().joined(separator: ", "))")
            }
            return interval
        }
        if let twice = firstRepeated(intervals.map(\.name)) { throw fail("intervals", "\(twice) is listed twice") }

        let fromText = try string(root, "from", "from")
        guard let from = parseMonth(fromText) else { throw fail("from", "must be a month YYYY-MM, not \(fromText)") }
        let toText = try string(root, "to", "to", default: "latest")
        guard let to = JobEnd(toText) else { throw fail("to", "must be a month YYYY-MM, latest or now, not \(toText)") }
        if case let .month(t) = to, (from.year, from.month) > (t.year, t.month) { throw fail("from", "\(fromText) is after to: \(toText)") }
        if let reason = dataset.refusal(of: to, on: market) { throw fail("to", reason) }

        var columns = KlineColumn.ohlcv
        if let list = root["columns"] {
            guard let l = list as? [Any], !l.isEmpty else { throw fail("columns", "must be a non-empty list") }
            columns = try l.map { item in
                guard let c = KlineColumn(name: "\(item)") else {
                    throw fail("columns", "unknown column \(item); known: \(KlineColumn.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return c
            }
            if let twice = firstRepeated(columns.map(\.rawValue)) { throw fail("columns", "\(twice) is listed twice") }
        }
        let dtype = try string(root, "dtype", "dtype", default: (dataset.defaultFloatType ?? .float32).rawValue)
        guard let floatType = FloatType(rawValue: dtype) else { throw fail("dtype", "must be float32 or float64, not \(dtype)") }
        let group = try string(root, "attribute_group", "attribute_group", default: dataset.defaultAttributeGroup)
        guard !group.isEmpty, !group.contains("/"), !group.contains(":"), !group.contains(",") else { throw fail("attribute_group", "must be a plain name such as OHLCV") }

        let targetSection = try section("target")
        try checkKeys(targetSection, allowed: ["marketstore", "directory", "ca_file", "stall_seconds"], prefix: "target.", fail)
        let target: ImportTarget
        switch (targetSection["marketstore"], targetSection["directory"]) {
        case let (url as String, nil):
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw fail("target.marketstore", "must be an http(s) URL such as http://127.0.0.1:5993/rpc") }
            target = .marketstore(url: url)
        case let (nil, dir as String): target = .directory(path: dir)
        case (nil, nil):
            // The default target: MARKETSTORE_URL, which may carry credentials that then stay
            // out of job files (git) and command lines (ps).
            guard let url = ProcessInfo.processInfo.environment["MARKETSTORE_URL"], !url.isEmpty else {
                throw fail("target", "missing: give marketstore: URL or directory: PATH, or set MARKETSTORE_URL")
            }
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw fail("target", "MARKETSTORE_URL must be an http(s) URL such as http://127.0.0.1:5993/rpc, not \(redactCredentials(url))")
            }
            target = .marketstore(url: url)
        default: throw fail("target", "give either marketstore or directory")
        }
        let caFile = try targetSection["ca_file"].map { _ in try string(targetSection, "ca_file", "target.ca_file") }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) { throw fail("target.ca_file", "cannot read \(caFile)") }
        let write = try section("write")
        try checkKeys(write, allowed: ["chunk_rows"], prefix: "write.", fail)
        let concurrency = try section("concurrency")
        try checkKeys(concurrency, allowed: ["downloads", "listings"], prefix: "concurrency.", fail)
        let listings = try int(concurrency, "listings", "concurrency.listings", default: 32, range: 1...256)
        let validationText = try string(root, "validation", "validation", default: "report")
        guard let validation = ValidationPolicy(rawValue: validationText) else { throw fail("validation", "must be report or strict, not \(validationText)") }

        let baseURL = try string(source, "base_url", "source.base_url", default: SourceLocation.defaultBase)
        var spec = JobSpec(
            file: file, name: name,
            baseURL: baseURL,
            listingURL: try string(source, "listing_url", "source.listing_url", default: SourceLocation.defaultListing),
            cacheDirectory: try string(source, "cache_dir", "source.cache_dir", default: ".cache/binance"),
            checksumRequired: checksum == "required", deleteArchivesAfterWrite: deleteAfter,
            market: market, symbols: symbols, discoverQuote: quote, discoverMatch: match,
            intervals: intervals, from: from, to: to, columns: columns, floatType: floatType, attributeGroup: group,
            target: target,
            chunkRows: try int(write, "chunk_rows", "write.chunk_rows", default: 50000, range: 100...5_000_000),
            // Over a network, archives in flight hide the round trip (make bench-wan); from a
            // local mirror they only contend for the cores.
            downloads: try int(concurrency, "downloads", "concurrency.downloads", default: SourceLocation(baseURL).isHTTP ? 16 : 4, range: 1...64),
            validation: validation,
            manifest: try string(root, "manifest", "manifest", default: "state/\(name).manifest.db"),
            dataset: dataset,
            restURL: try string(source, "rest_url", "source.rest_url", default: RestMarket(market).defaultBaseURL),
            restWeightShare: share,
            restWeightLimit: try int(restSection, "weight_limit", "rest.weight_limit", default: RestMarket(market).defaultWeightLimit, range: 1...1_000_000))
        spec.caFile = caFile
        spec.includeDelisted = includeDelisted
        spec.stallSeconds = try int(targetSection, "stall_seconds", "target.stall_seconds", default: 20, range: 1...600)
        spec.listings = listings
        spec.http2 = http == "2"
        spec.recheckDays = try int(root, "recheck_days", "recheck_days", default: 7, range: 0...3650)
        let gaps = try string(root, "gaps", "gaps", default: "report")
        guard ["report", "rest"].contains(gaps) else { throw fail("gaps", "must be report (list them) or rest (ask Binance's REST klines about each), not \(gaps)") }
        spec.confirmGaps = gaps == "rest"
        return spec
    }

    /// The MarketStore key of a symbol's interval: `BTCUSDT/1Min/OHLCV`.
    public func key(symbol: String, interval: KlineInterval) throws -> String {
        "\(symbol)/\(try Timeframe.forBinanceInterval(interval.name))/\(attributeGroup)"
    }

    /// The keys of a symbol: one per interval (klines), or the dataset's one (`BTCUSDT/1H/FUNDING`).
    public func keys(symbol: String) throws -> [String] { try dataset.keys(symbol: symbol, in: self) }

    /// The dataset's name as the job file gives it.
    public var datasetName: String { dataset.name }

    /// The months of the job up to `today`'s month (`to: latest` ends there).
    public func months(today: ArchivePeriod) -> [ArchivePeriod] {
        let current = ArchivePeriod(year: today.year, month: today.month)!
        guard case let .month(last) = to else { return PeriodPlanner.months(from: from, to: current) }
        return PeriodPlanner.months(from: from, to: min(last, current))
    }

    package static func checkKeys(_ dict: [String: Any], allowed: Set<String>, prefix: String, _ fail: (String, String) -> JobFileError) throws {
        for key in dict.keys.sorted() where !allowed.contains(key) {
            let nearest = allowed.map { ($0, editDistance($0, key)) }.filter { $0.1 <= max(2, key.count / 3) }.min { ($0.1, $0.0) < ($1.1, $1.0) }
            let hint = nearest.map { "did you mean \(prefix)\($0.0)? " } ?? ""
            throw fail(prefix + key, "unknown key; \(hint)(known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    /// The first value that appears a second time: a job that lists one twice would plan and
    /// write its units twice.
    package static func firstRepeated(_ values: [String]) -> String? {
        var seen = Set<String>()
        return values.first { !seen.insert($0).inserted }
    }

    /// `YYYY-MM` as a month.
    public static func parseMonth(_ text: String) -> ArchivePeriod? {
        let parts = text.split(separator: "-")
        guard parts.count == 2, parts[0].count == 4, parts[1].count == 2, let y = Int(parts[0]), let m = Int(parts[1]) else { return nil }
        return ArchivePeriod(year: y, month: m)
    }

    /// Command-line overrides (`--from`, `--to`, `--symbols`, `--target`), checked like the file.
    public mutating func override(from: String?, to: String?, symbols: String?, target: String?, shard: String? = nil) throws {
        func fail(_ key: String, _ reason: String) -> JobFileError { JobFileError(file: "command line", key: key, reason: reason) }
        if let shard {
            guard let s = Shard(shard) else { throw fail("--shard", "must be K/N with 0 <= K < N, not \(shard)") }
            self.shard = s
            manifest = s.manifestPath(manifest)
        }
        if let from {
            guard let p = Self.parseMonth(from) else { throw fail("--from", "must be YYYY-MM, not \(from)") }
            self.from = p
        }
        if let to {
            guard let end = JobEnd(to) else { throw fail("--to", "must be YYYY-MM, latest or now, not \(to)") }
            if let reason = dataset.refusal(of: end, on: market) { throw fail("--to", reason) }
            self.to = end
        }
        if case let .month(t) = self.to, (self.from.year, self.from.month) > (t.year, t.month) { throw fail("--from", "\(self.from) is after \(t)") }
        if let symbols {
            let list = symbols.split(separator: ",").map(String.init)
            for s in list {
                do { try validateSymbol(s) } catch { throw fail("--symbols", "\(error)") }
            }
            guard !list.isEmpty else { throw fail("--symbols", "empty") }
            if let twice = Self.firstRepeated(list) { throw fail("--symbols", "\(twice) is listed twice") }
            self.symbols = list
        }
        if let target {
            self.target = try ImportTarget.parse(commandLine: target)
            targetFromCommandLine = true
        }
    }
}

/// Levenshtein distance, for "did you mean" hints on short names.
package func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(1, a.count) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(1, b.count) where !b.isEmpty {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}
