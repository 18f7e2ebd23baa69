import ArgumentParser
import BinanceSource
import Columnar
import DurableFiles
import Follow
import Foundation
import ImportPipeline
import JobModel
import JobState
import KlineArchive
import Logging
import MarketStore
import MarketStoreDirectory
import MarketStoreModel

/// Options shared by the commands that take a job file.
struct JobOptions: ParsableArguments {
    @Argument(help: "The job file (jobs/*.yml).")
    var job: String

    @Option(help: "First month (YYYY-MM), overriding the job file.")
    var from: String?

    @Option(help: "Last month (YYYY-MM), latest (up to yesterday) or now (archives, then REST up to the last closed candle), overriding the job file.")
    var to: String?

    @Option(help: "Symbols, comma-separated, overriding the job file.")
    var symbols: String?

    @Option(help: "Target: a MarketStore URL (http://host:5993/rpc) or a directory, overriding the job file.")
    var target: String?

    @Option(help: "Shard K of N (K/N, K from 0): the symbols whose stable hash modulo N is K, with state files of its own; see the README.")
    var shard: String?

    @Option(name: .customLong("log-format"), help: "human (default) or json.")
    var logFormat: String = "human"

    func load() throws -> JobSpec {
        var spec = try JobSpec.load(path: job)
        try spec.override(from: from, to: to, symbols: symbols, target: target, shard: shard)
        return spec
    }

    func logger(_ label: String) -> Logger {
        let json = logFormat == "json"
        LoggingSystem.bootstrap { name in StderrLogHandler(label: name, json: json) }
        return Logger(label: label)
    }

    func validate() throws {
        guard ["human", "json"].contains(logFormat) else { throw ValidationError("--log-format must be human or json") }
    }
}

/// Today's UTC date; BINANCE_IMPORT_NOW=YYYY-MM-DDTHH:MM:SSZ (the local clock, for `to: now`) or
/// BINANCE_IMPORT_TODAY=YYYY-MM-DD pins it (tests, back-fills as of a date). REST work reads the
/// server's clock, never this one.
func today() throws -> ArchivePeriod {
    if let now = ProcessInfo.processInfo.environment["BINANCE_IMPORT_NOW"] {
        guard let date = try? Date(now, strategy: .iso8601) else { throw ValidationError("BINANCE_IMPORT_NOW must be like 2024-02-05T10:30:00Z, not \(now)") }
        return PeriodPlanner.today(now: Int64(date.timeIntervalSince1970))
    }
    if let pinned = ProcessInfo.processInfo.environment["BINANCE_IMPORT_TODAY"] {
        let p = pinned.split(separator: "-").compactMap { Int($0) }
        guard p.count == 3, let day = ArchivePeriod(year: p[0], month: p[1], day: p[2]) else {
            throw ValidationError("BINANCE_IMPORT_TODAY must be YYYY-MM-DD, not \(pinned)")
        }
        return day
    }
    return PeriodPlanner.today(now: Int64(Date().timeIntervalSince1970))
}

/// Runs a job and turns the outcome into the exit code: 0 all done; 1 some units failed;
/// 2 bad usage or job file; 3 target unreachable or refused everything.
func runJob(_ options: JobOptions, dryRun: Bool, force: Bool, nightly: Bool, forceDirectory: Bool = false, metricsFile: String? = nil,
            confirmGaps: Bool = false) async throws {
    var spec = try options.load()
    if confirmGaps {  // --confirm-gaps: gaps: rest for this run
        if let refusal = spec.dataset.restGapsRefusal { throw JobFileError(file: "command line", key: "--confirm-gaps", reason: "it " + refusal) }
        spec.confirmGaps = true
    }
    let logger = options.logger("binance-import")
    var run = RunOptions(today: try today())
    run.dryRun = dryRun
    run.force = force
    run.forceDirectory = forceDirectory
    run.liveProgress = isatty(2) == 1 && options.logFormat == "human" && !nightly
    let stop = StopRequest()
    let runner = ImportRunner(spec: spec, logger: logger, stop: stop)
    let runOptions = run
    let summary = dryRun ? try await runner.run(runOptions)
        : try await withStopOnSignals(stop, logger: logger, saying: "stopping cleanly (no new work; what is being written is finished and recorded)") {
            try await runner.run(runOptions)
        }
    if dryRun { return }
    let report = ((spec.manifest as NSString).deletingPathExtension as NSString).deletingPathExtension + ".report.json"
    do {
        try summary.json().write(to: URL(fileURLWithPath: report))
    } catch {
        logger.warning("could not write the report \(report): \(error.localizedDescription)")
    }
    if let metricsFile {
        // Whole or not at all (a temporary name, then rename), as the textfile collector needs.
        do {
            let dir = (metricsFile as NSString).deletingLastPathComponent
            if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            try writeFileDurably(Array(summary.metrics().utf8), to: metricsFile)
        } catch {
            logger.warning("could not write the metrics file \(metricsFile): \(error)")
        }
    }
    if nightly || options.logFormat == "json" {
        print(String(decoding: try summary.json(), as: UTF8.self))
    } else {
        print(summary.table)
        print("report: \(report)")
        if summary.interrupted { print("stopped by a signal: re-run the same command to resume; done units are skipped") }
        if summary.failed > 0 { print("re-run the same command to retry the failed units; done units are skipped") }
    }
    if summary.exitCode != 0 { throw ExitCode(summary.exitCode) }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Plan, download, decode, validate, write and record a job.",
        discussion: "A re-run skips done units whose archive is unchanged, retries failed ones and re-imports re-published ones.")
    @OptionGroup var options: JobOptions
    @Flag(name: .customLong("dry-run"), help: "Print the plan and touch nothing.") var dryRun = false
    @Flag(help: "Re-import units the manifest says are done.") var force = false
    @Flag(name: .customLong("force-directory"), help: "Write into a data directory even if a running server seems to use it.") var forceDirectory = false
    @Flag(name: .customLong("confirm-gaps"), help: "Ask Binance's REST klines about each gap the archives leave, as gaps: rest does.") var confirmGaps = false
    @Option(name: .customLong("metrics-file"), help: "Write the run's counters to this file in Prometheus' text format (node_exporter's textfile collector).")
    var metricsFile: String?

    func run() async throws {
        try await runJob(options, dryRun: dryRun, force: force, nightly: false, forceDirectory: forceDirectory, metricsFile: metricsFile, confirmGaps: confirmGaps)
    }
}

struct Nightly: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import up to yesterday (UTC), starting where the manifest stands; for CI.",
        discussion: "Prints a JSON summary; exit code 0 all done, 1 some units failed, 2 bad job file, 3 target unreachable.")
    @OptionGroup var options: JobOptions
    @Option(name: .customLong("metrics-file"), help: "Write the run's counters to this file in Prometheus' text format (node_exporter's textfile collector).")
    var metricsFile: String?
    @Flag(name: .customLong("confirm-gaps"), help: "Ask Binance's REST klines about each gap the archives leave, as gaps: rest does.") var confirmGaps = false

    func run() async throws {
        var o = options
        if o.to == nil { o.to = "latest" }
        try await runJob(o, dryRun: false, force: false, nightly: true, metricsFile: metricsFile, confirmGaps: confirmGaps)
    }
}

struct Follow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Catch up (archives, then REST to the last closed kline), then write closed klines from Binance's streams as they come.",
        discussion: "Serves /healthz and /metrics. Stops cleanly on SIGINT/SIGTERM (within 10 s). Server targets only.")
    @OptionGroup var options: JobOptions
    @Option(name: .customLong("flush-interval"), help: "Seconds between writes of the klines received (default 1).") var flushInterval: Double = 1
    @Option(name: .customLong("metrics-addr"), help: "Where /healthz and /metrics listen (default 127.0.0.1:9108; port 0: any).") var metricsAddr = "127.0.0.1:9108"
    @Option(name: .customLong("stale-after"), help: "Seconds without a closed kline of a key before /healthz says unhealthy (default: two intervals).")
    var staleAfter: Double?
    @Option(name: .customLong("stream-url"), help: "The streams' base URL (default: Binance's of the market).") var streamURL: String?

    func run() async throws {
        let spec = try options.load()
        let logger = options.logger("binance-import")
        var follow = FollowOptions(today: try today())
        guard flushInterval > 0 else { throw ValidationError("--flush-interval must be positive") }
        follow.flushInterval = flushInterval
        guard let colon = metricsAddr.lastIndex(of: ":"), let port = Int(metricsAddr[metricsAddr.index(after: colon)...]) else {
            throw ValidationError("--metrics-addr must be HOST:PORT, not \(metricsAddr)")
        }
        follow.metricsHost = String(metricsAddr[..<colon])
        follow.metricsPort = port
        follow.staleAfter = staleAfter
        follow.streamURL = streamURL
        let stop = StopRequest()
        let follower = Follower(spec: spec, logger: logger, stop: stop)
        let settings = follow
        let code = try await withStopOnSignals(stop, logger: logger, saying: "stopping (the klines received are written and recorded)") {
            try await follower.run(settings)
        }
        if code != 0 { throw ExitCode(code) }
    }
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What the manifest says: counts, a grid of keys x months, failed units; with --check-remote, stale (re-published) units.",
        discussion: "Exit code 1 when any unit failed.")
    @OptionGroup var options: JobOptions
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Read the state files of all N shards of the job together.") var shards: Int?
    @Flag(name: .customLong("check-remote"), help: "Ask the source for each done unit's CHECKSUM and count re-published archives as stale.") var checkRemote = false
    @Flag(help: "Show only what the state records, without listing the source for what is still to do.") var offline = false

    func run() async throws {
        let spec = try options.load()
        var manifest = try Manifest.load(path: spec.manifest, job: spec.name)
        var notes: [String] = []
        if shards == nil, options.shard == nil, !Manifest.shardFiles(of: spec.manifest).isEmpty {
            notes.append("this job also has shard state files (\(Manifest.shardFiles(of: spec.manifest).joined(separator: ", "))): give --shards N to read them together")
        }
        if let shards {
            // Every shard's state file, read together.
            guard (1...10_000).contains(shards), options.shard == nil else { throw ValidationError("--shards N (1 to 10000) reads all shards; give it without --shard") }
            for k in 0..<shards {
                guard let shard = Shard("\(k)/\(shards)") else { throw ValidationError("--shards \(shards): no shard \(k)") }
                let path = shard.manifestPath(spec.manifest)
                manifest.units.merge(try Manifest.load(path: path, job: spec.name).units) { _, shard in shard }
            }
        }
        var stale: [String] = []
        if checkRemote {
            let fetcher = ArchiveFetcher(location: SourceLocation(spec.baseURL), cacheDirectory: spec.cacheDirectory)
            for record in manifest.units.values where record.status == .done && !record.isREST {
                guard let sha = record.sha256, let address = spec.publishedArchive(ofRemotePath: record.remotePath) else { continue }
                if let published = try await fetcher.publishedChecksum(address), published != sha { stale.append(record.id) }
            }
            // Recorded, so the next run looks at these keys even between deep checks.
            if !stale.isEmpty, shards == nil { try Manifest.markRepublished(ids: stale, manifest: spec.manifest) }
        }
        var keys = try (spec.symbols ?? []).flatMap { try spec.keys(symbol: $0) }
        if !offline {
            // What a run would do now: units planned but not recorded yet (symbols not discovered
            // when a run stopped, months published since) count as pending.
            let planned = try await ImportRunner(spec: spec, logger: options.logger("binance-import")).plan(today: try today(), state: manifest)
            keys = planned.keys
            for unit in planned.units where manifest.units[unit.id] == nil {
                manifest.units[unit.id] = UnitRecord(id: unit.id, status: .pending, key: unit.key, remotePath: unit.id)
            }
        }
        // Units of keys outside the job (a one-off --symbols run) are listed apart and do not
        // make the job's status fail.
        let jobKeys = Set(keys)
        let outside = keys.isEmpty ? [] : manifest.units.values.filter { !jobKeys.contains($0.key) && !$0.key.isEmpty }
        let outsideKeys = Set(outside.map(\.key)).sorted()
        for record in outside { manifest.units[record.id] = nil }
        var counts: [String: Int] = [:]
        for status in ["done", "pending", "failed", "not_published", "superseded"] { counts[status] = 0 }
        for record in manifest.units.values { counts[record.status.rawValue, default: 0] += 1 }
        if checkRemote { counts["stale"] = stale.count }
        let failed = manifest.units.values.filter { $0.status == .failed }.sorted { $0.id < $1.id }
        let grid = CoverageGrid(manifest: manifest, months: spec.months(today: try today()), keys: keys)
        if !outsideKeys.isEmpty {
            notes.append("state of keys outside the job (from a run with --symbols), not counted: \(outsideKeys.joined(separator: ", ")); drop them with: binance-import forget \(options.job) --symbols \(Set(outsideKeys.compactMap { BucketKey($0)?.symbol }).sorted().joined(separator: ","))")
        }
        if json {
            let object: [String: Any] = ["job": spec.name, "manifest": spec.manifest, "counts": counts, "stale": stale.sorted(), "notes": notes,
                                         "outside_job": outsideKeys,
                                         "gaps": Dictionary(grouping: (manifest.gaps ?? []).filter { jobKeys.isEmpty || jobKeys.contains($0.key) }, by: \.key).mapValues { list in
                                             list.map { ["first": UTCCalendar.iso8601($0.first), "last": UTCCalendar.iso8601($0.last), "state": $0.state.rawValue,
                                                         "rows": $0.rows ?? 0] as [String: Any] }
                                         },
                                         "failed": Dictionary(uniqueKeysWithValues: failed.map { ($0.id, $0.error ?? "") }),
                                         "months": grid.months.map(\.description),
                                         "grid": grid.rows.mapValues { $0.map(\.rawValue) }]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        } else {
            print("job \(spec.name) (\(spec.manifest)): \(manifest.units.count) units\(offline ? " recorded" : "")")
            for status in ["done", "pending", "failed", "not_published", "superseded", "stale"] where (counts[status] ?? 0) > 0 || status == "done" || status == "failed" {
                print("  \(status): \(counts[status]!)")
            }
            let rows = manifest.units.values.filter { $0.status == .done }.reduce(0) { $0 + ($1.rows ?? 0) }
            print("  rows done: \(rows)")
            print()
            print(grid.text)
            print()
            for record in failed.prefix(50) { print("failed: \(record.id): \(record.error ?? "")") }
            if failed.count > 50 { print("... and \(failed.count - 50) more failed units (status --json lists them all)") }
            for id in stale.sorted() { print("stale (re-published; the next run re-imports it): \(id)") }
            let gaps = (manifest.gaps ?? []).filter { jobKeys.isEmpty || jobKeys.contains($0.key) }
            if !gaps.isEmpty {
                let byState = Dictionary(grouping: gaps, by: \.state.rawValue).mapValues(\.count)
                print("gaps in the archives: " + byState.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
                for gap in gaps.prefix(30) { print("  \(gap.key) \(gap.summary)") }
                if gaps.count > 30 { print("  ... and \(gaps.count - 30) more (status --json lists them all)") }
            }
            for note in notes { print("note: \(note)") }
        }
        if !failed.isEmpty { throw ExitCode(1) }
    }
}

struct Forget: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Drop units from the job's state (a one-off --symbols run, a symbol removed from the job); the target is not changed.",
        discussion: "Lists what it would drop with --dry-run. Takes the job's lock.")
    @Argument(help: "The job file.") var job: String
    @Option(help: "Symbols whose units to drop, comma-separated.") var symbols: String
    @Flag(name: .customLong("dry-run"), help: "List the units, drop nothing.") var dryRun = false

    func run() async throws {
        let spec = try JobSpec.load(path: job)
        let names = Set(symbols.split(separator: ",").map(String.init))
        guard !names.isEmpty else { throw ValidationError("--symbols names no symbol") }
        let manifest = try Manifest.load(path: spec.manifest, job: spec.name)
        let ids = manifest.units.values.filter { names.contains(BucketKey($0.key)?.symbol ?? "") }.map(\.id).sorted()
        for id in ids.prefix(200) { print("\(dryRun ? "would drop" : "drop"): \(id)") }
        if ids.count > 200 { print("... and \(ids.count - 200) more") }
        if !dryRun, !ids.isEmpty { try Manifest.forget(ids: ids, manifest: spec.manifest) }
        print("\(dryRun ? "would drop" : "dropped") \(ids.count) units of \(names.sorted().joined(separator: ", ")) from \(Manifest.databasePath(spec.manifest))")
        for name in names.sorted() where spec.symbols?.contains(name) == true {
            print("warning: \(name) is still in the job: the next run imports its units again (remove it from \(job) to stop that)")
        }
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Read every done unit back from the target and compare rows and column digests with the manifest.")
    @OptionGroup var options: JobOptions

    func run() async throws {
        let spec = try options.load()
        let state = try Manifest.load(path: spec.manifest, job: spec.name)
        let failed = state.units.values.filter { $0.status == .failed }.count
        let pending = state.units.values.filter { $0.status == .pending }.count
        let (checked, differences) = try await JobVerifier(spec: spec).verify()
        for d in differences { print("DIFFERENT \(d)") }
        if checked == 0 {
            print("nothing to verify: no unit is done (\(failed) failed, \(pending) pending)")
        } else {
            print("verified \(checked) units: \(differences.isEmpty ? "all match" : "\(differences.count) differ") (in \(spec.target.display))"
                  + (failed + pending > 0 ? "; not verified: \(failed) failed, \(pending) pending" : ""))
        }
        if !differences.isEmpty || failed > 0 { throw ExitCode(1) }
    }
}

struct Show: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print rows of a key from the target (a MarketStore server or a data directory).")
    @Argument(help: "SYMBOL/Timeframe/AttributeGroup, e.g. BTCUSDT/1Min/OHLCV") var key: String
    @Option(help: "A MarketStore URL or a data directory.") var target: String = "http://127.0.0.1:5993/rpc"
    @Option(help: "First epoch (UTC seconds) or YYYY-MM-DD (from the start of that day).") var from: String?
    @Option(help: "Last epoch (UTC seconds) or YYYY-MM-DD (through the end of that day).") var to: String?
    @Option(help: "Rows to print (the last N).") var limit: Int = 10

    /// An epoch, or a day: its first second (`endOfDay`: its last).
    func epoch(_ text: String?, endOfDay: Bool = false) throws -> Int64? {
        guard let text else { return nil }
        if let e = Int64(text) { return e }
        guard let day = ArchivePeriod(day: text) else { throw ValidationError("bad time \(text): give UTC seconds or YYYY-MM-DD") }
        return endOfDay ? day.end - 1 : day.start
    }

    func run() async throws {
        guard BucketKey(key) != nil else { throw ValidationError("KEY must be SYMBOL/Timeframe/AttributeGroup") }
        let reader = TargetReader(target: try ImportTarget.parse(commandLine: target))
        let keys = try await reader.keys()
        guard keys.contains(key) else {
            let shown = keys.prefix(20).joined(separator: ", ") + (keys.count > 20 ? ", ... (\(keys.count) keys)" : "")
            print("no key \(key) in \(reader.target.display) (\(keys.isEmpty ? "it holds no key" : "keys there: \(shown)"))")
            throw ExitCode(1)
        }
        let results: [QueryResult]
        do {
            results = try await reader.read(key: key, from: try epoch(from), to: try epoch(to, endOfDay: true), limit: limit)
        } catch let MarketStoreError.transport(reason) {
            throw TargetUnavailable(description: "MarketStore at \(reader.target.display) is unreachable: \(reason)")
        }
        guard let r = results.first, r.count > 0 else {
            print("no rows of \(key) in \(reader.target.display) between \(from ?? "the first") and \(to ?? "the last")")
            return
        }
        print((["UTC"] + r.names).joined(separator: "\t"))
        for i in 0..<r.count {
            print(([UTCCalendar.iso8601(r.epochs[i])] + r.columns.map { c -> String in
                switch c {
                case let .float32(v): return "\(v[i])"
                case let .float64(v): return "\(v[i])"
                case let .int64(v): return "\(v[i])"
                }
            }).joined(separator: "\t"))
        }
    }
}

/// swift-log output: human lines, or one JSON object per line (`--log-format json`), on stderr.
struct StderrLogHandler: LogHandler {
    let label: String
    let json: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let time = Date().formatted(.iso8601)
        let text: String
        if json {
            let object: [String: String] = ["time": time, "level": level.rawValue, "message": message.description]
            text = String(decoding: (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
        } else {
            text = "\(time) \(level.rawValue.uppercased()) \(message)"
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
