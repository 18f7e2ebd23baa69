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

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "What the manifest says: counts, a grid of keys x months, failed units; with --check-remote, stale (re-published) units.",
        discussion: "Exit code 1 when any unit failed.")
    @OptionGroup var options: JobOptions
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Read the state files of all N shards of the job together.") var shards: Int?
    @Flag(name: .customLong("check-remote"), help: "Ask the source for each done unit's CHECKSUM and count re-published archives as stale.") var checkRemote = false
    @Flag(help: "Show only what the state records, without listing the source for what is still to do.") var offline = false
    @Option(help: "Also write the coverage as one self-contained HTML page to this file.") var html: String?

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
            if !stale.isEmpty, shards == nil { try StateRecorder.republished(ids: stale, manifest: spec.manifest) }
        }
        var keys = try (spec.symbols ?? []).flatMap { try spec.keys(symbol: $0) }
        if !offline {
            // What a run would do now: units planned but not recorded yet (symbols not discovered
            // when a run stopped, months published since) count as pending.
            let planned = try await Planner(spec: spec, logger: options.logger("binance-import")).plan(today: try today(), state: manifest)
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
        let idHoles = TradeContinuity.holes(manifest.units.values)
        let grid = CoverageGrid(manifest: manifest, months: spec.months(today: try today()), keys: keys)
        // When the next run lists settled periods again (a late archive of an old month waits for it).
        if StateDatabase.isDatabase(Manifest.databasePath(spec.manifest)) {
            let last = try StateDatabase(path: Manifest.databasePath(spec.manifest), create: false).meta(StateRecorder.deepCheckMetaName).flatMap { Int64($0) }
            if last != nil {
                notes.append(DeepCheck(lastChecked: last, today: try today(), everyDays: spec.recheckDays).line)
            }
        }
        if !outsideKeys.isEmpty {
            notes.append("state of keys outside the job (from a run with --symbols), not counted: \(outsideKeys.joined(separator: ", ")); drop them with: binance-import forget \(options.job) --symbols \(Set(outsideKeys.compactMap { BucketKey($0)?.symbol }).sorted().joined(separator: ","))")
        }
        if let html {
            let page = CoveragePage(job: spec.name, manifest: manifest, grid: grid, generated: UTCCalendar.iso8601(Int64(Date().timeIntervalSince1970)))
            do {
                try Data(page.html.utf8).write(to: URL(fileURLWithPath: html), options: .atomic)
            } catch {
                throw JobFileError(file: "command line", key: "--html", reason: "cannot write \(html): \(error.localizedDescription)")
            }
        }
        if json {
            let object: [String: Any] = ["job": spec.name, "manifest": spec.manifest, "counts": counts, "stale": stale.sorted(), "notes": notes,
                                         "outside_job": outsideKeys,
                                         "gaps": Dictionary(grouping: (manifest.gaps ?? []).filter { jobKeys.isEmpty || jobKeys.contains($0.key) }, by: \.key).mapValues { list in
                                             list.map { ["first": UTCCalendar.iso8601($0.first), "last": UTCCalendar.iso8601($0.last), "state": $0.state.rawValue,
                                                         "rows": $0.rows ?? 0] as [String: Any] }
                                         },
                                         "failed": Dictionary(uniqueKeysWithValues: failed.map { ($0.id, $0.error ?? "") }),
                                         "id_holes": idHoles,
                                         "provenance": try provenanceJSON(manifest, keys: jobKeys),
                                         "months": grid.months.map(\.description),
                                         "grid": grid.rows.mapValues { $0.map(\.rawValue) }]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        } else {
            print("job \(spec.name) (\(spec.manifest)): \(manifest.units.count) units\(offline ? " recorded" : "")")
            for status in ["done", "pending", "writing", "failed", "not_published", "superseded", "stale"] where (counts[status] ?? 0) > 0 || status == "done" || status == "failed" {
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
            for (key, lines) in idHoles.sorted(by: { $0.key < $1.key }) {
                print("ID holes: \(key)")
                for line in lines.prefix(30) { print("  \(line)") }
            }
            for life in Universe(manifest: manifest, info: nil).lives where life.delistedOn != nil && (jobKeys.isEmpty || keys.contains { $0.hasPrefix(life.symbol + "/") }) {
                print("\(life.symbol): delisted on \(life.delistedOn!) (its rows stop on \(life.lastDay ?? "-"); binance-import universe asks exchangeInfo)")
            }
            for note in notes { print("note: \(note)") }
        }
        if !failed.isEmpty || !idHoles.isEmpty { throw ExitCode(1) }
    }
}

/// Each key's provenance as JSON objects (snake_case, as `card --json`).
func provenanceJSON(_ manifest: Manifest, keys: Set<String>) throws -> [String: Any] {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    let all = Provenance.byKey(manifest).filter { keys.isEmpty || keys.contains($0.key) }
    return try JSONSerialization.jsonObject(with: encoder.encode(all)) as? [String: Any] ?? [:]
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
        if !dryRun, !ids.isEmpty { try StateRecorder.forget(ids: ids, manifest: spec.manifest) }
        print("\(dryRun ? "would drop" : "dropped") \(ids.count) units of \(names.sorted().joined(separator: ", ")) from \(Manifest.databasePath(spec.manifest))")
        for name in names.sorted() where spec.symbols?.contains(name) == true {
            print("warning: \(name) is still in the job: the next run imports its units again (remove it from \(job) to stop that)")
        }
    }
}

struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Destroy a key in the target and re-import it whole with the next run (a trades key a re-published archive changed).",
        discussion: "MarketStore's variable-length buckets append and have no delete of a range: a trade a re-published archive changed can only be "
            + "replaced by writing the key again. Lists what it would do unless --yes is given. Takes the job's lock.")
    @OptionGroup var options: JobOptions
    @Option(help: "The key to rebuild, e.g. BTCUSDT/1Sec/TRADES.") var key: String
    @Flag(help: "Destroy the key (nothing is changed without it).") var yes = false

    func run() async throws {
        let spec = try options.load()
        let units = KeyRebuild.units(of: key, in: try Manifest.load(path: spec.manifest, job: spec.name))
        let rows = units.reduce(0) { $0 + ($1.rows ?? 0) }
        guard yes else {
            print("would destroy \(key) in \(spec.target.display) (\(rows) rows recorded) and re-import its \(units.count) units with the next run")
            print("nothing changed: give --yes to do it")
            throw ExitCode(2)
        }
        let marked = try await KeyRebuild.run(spec: spec, key: key)
        print("destroyed \(key) in \(spec.target.display); its \(marked.count) units are re-imported whole by the next run: binance-import run \(options.job)")
    }
}

struct Card: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Where a key's rows came from: each archive (SHA-256, Last-Modified, rows, adjustments), each REST range, and earlier versions of re-published archives.")
    @OptionGroup var options: JobOptions
    @Option(help: "The key, e.g. BTCUSDT/1Min/OHLCV.") var key: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let spec = try options.load()
        let manifest = try Manifest.load(path: spec.manifest, job: spec.name)
        guard manifest.units.values.contains(where: { $0.key == key }) else {
            let keys = Set(manifest.units.values.map(\.key)).filter { !$0.isEmpty }.sorted()
            throw JobFileError(file: "command line", key: "--key", reason: "the state of \(spec.name) has no unit of \(key) (keys: \(keys.prefix(10).joined(separator: ", "))\(keys.count > 10 ? ", ..." : ""))")
        }
        let card = Provenance.of(key: key, in: manifest)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(card), as: UTF8.self))
        } else {
            print(card.text)
        }
    }
}

struct UniverseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "universe",
        abstract: "The job's symbols by date, delisted ones included: each one's first and last day of rows, its status and onboard and delivery dates (exchangeInfo), when it was delisted.",
        discussion: "--at DATE lists the symbols trading that day (survivorship-free backtests). --offline does not ask exchangeInfo: a symbol whose rows stopped more than 3 days before the job's newest is then taken as delisted (said as inferred).")
    @OptionGroup var options: JobOptions
    @Option(help: "A day (YYYY-MM-DD): only the symbols trading that day.") var at: String?
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Do not ask Binance's exchangeInfo.") var offline = false

    func run() async throws {
        let spec = try options.load()
        if let at, ArchivePeriod(day: at) == nil { throw ValidationError("--at must be a day YYYY-MM-DD, not \(at)") }
        let manifest = try Manifest.load(path: spec.manifest, job: spec.name)
        let info = offline ? nil : try await spec.restClient().exchangeInfo()
        let universe = Universe(manifest: manifest, info: info)
        let lives = at.map { universe.trading(on: $0) } ?? universe.lives
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(lives), as: UTF8.self))
            return
        }
        for life in lives {
            var line = "\(life.symbol): \(life.firstDay ?? "-") .. \(life.lastDay ?? "-")"
            if let status = life.status { line += ", \(status)" }
            if let onboard = life.onboard { line += ", onboard \(onboard)" }
            if let delivery = life.delivery { line += ", delivery \(delivery)" }
            if let delisted = life.delistedOn { line += ", delisted on \(delisted)\(life.delistedBy == "inferred" ? " (inferred: its rows stopped)" : "")" }
            print(line)
        }
        print("\(lives.count) symbol(s)\(at.map { " trading on \($0)" } ?? "")")
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
            print(([UTCCalendar.iso8601(r.epochs[i])] + r.columns.map { $0.text(at: i) }).joined(separator: "\t"))
        }
    }
}
