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
