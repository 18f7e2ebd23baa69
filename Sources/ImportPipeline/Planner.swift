import BinanceSource
import Columnar
import Foundation
import JobModel
import JobState
import KlineArchive
import Logging

/// The plan stage: the job, its source's listing and a snapshot of the state -> what a run will
/// do. It writes nothing: what a plan decides that the state keeps is its `PlanDecisions`,
/// recorded by the run. A run, `status` (what is still to do) and `follow` (its symbols) plan
/// through it. Each dataset's plan is an extension (KlineRun, FuturesImport).
package struct Planner: Sendable {
    package let spec: JobSpec
    package let logger: Logger
    /// Set by a signal: no new listings.
    package let stop: StopRequest
    /// Where listings come from instead of the job's source (a fake in tests).
    package let listing: (any FolderListing)?
    /// Where archives come from instead of the job's source and cache (a fake in tests).
    package let archives: (any ArchiveSource)?

    package init(spec: JobSpec, logger: Logger, stop: StopRequest = StopRequest(), listing: (any FolderListing)? = nil,
                 archives: (any ArchiveSource)? = nil) {
        (self.spec, self.logger, self.stop, self.listing, self.archives) = (spec, logger, stop, listing, archives)
    }

    package var location: SourceLocation { SourceLocation(spec.baseURL) }

    package func makeLister() -> ArchiveLister {
        if let listing { return ArchiveLister(listing: listing, location: location) }
        return ArchiveLister(location: location, listingURL: spec.listingURL)
    }

    package func makeFetcher() -> any ArchiveSource {
        archives ?? ArchiveFetcher(location: location, cacheDirectory: spec.cacheDirectory, checksumRequired: spec.checksumRequired, http2: spec.http2)
    }

    /// The job's symbols: listed in the file, or discovered from the source; a shard's share of them.
    package func symbols() async throws -> [String] {
        var all = spec.symbols ?? []
        if spec.symbols == nil {
            let lister = makeLister()
            all = try await spec.dataset.listSymbols(lister, market: spec.market, quote: spec.discoverQuote, match: spec.discoverMatch)
            if !spec.includeDelisted {
                // The archive tree keeps every symbol that ever traded; exchangeInfo says which trade now.
                let info = try await spec.restClient().exchangeInfo()
                all = all.filter { info[$0]?.status == "TRADING" }
            }
            if all.isEmpty { throw JobFileError(file: spec.file, key: "discover", reason: "no symbol of \(spec.market.rawValue) matches") }
        }
        guard let shard = spec.shard else { return all }
        return all.filter(shard.owns)
    }

    /// The state speaks of one target and schema: a run with others would skip units whose rows
    /// are not there. Refused before any work, unless forced (then bound anew once whole).
    package func bindState(_ options: RunOptions, state: StateRecorder, summary: RunSummary) async throws -> PlannedBinding {
        let binding = StateBinding(spec)
        let recorded = try await state.binding()
        if let recorded, recorded != binding, !options.force, !options.dryRun {
            throw JobFileError(file: summary.manifest, key: "", reason: "this state records units done in \(recorded), but this run writes to \(binding). "
                + "Its done units say nothing of that target: re-import everything there with --force, "
                + "or give the job another manifest: (one state per target)")
        }
        return PlannedBinding(binding: binding, recorded: recorded)
    }

    /// Whether this run lists every key's folders again (`recheck_days`; the run records that it
    /// did): a deep check finds archives published or re-published for periods the state calls
    /// settled; in between, a settled key costs one listing a night. A dry run reads the same record.
    package func deepCheck(_ options: RunOptions, state: StateRecorder) async throws -> DeepCheck {
        DeepCheck(lastChecked: try await state.deepCheckedDay(), today: options.today, everyDays: spec.recheckDays)
    }

    /// The units of `planned` to import: all with `--force`, otherwise less the done units whose
    /// archives did not change; the decisions to record (the fingerprints of those whose listing
    /// changed but not their CHECKSUM).
    package func unitsToImport<Unit: WorkUnit>(_ planned: [Unit], index: [String: UnitIndexEntry], fetcher: any ArchiveSource, state: StateRecorder,
                                       force: Bool, deepCheck: DeepCheck, summary: inout RunSummary) async -> (work: [Unit], decisions: PlanDecisions) {
        var work: [Unit] = []
        var decisions = PlanDecisions(deepCheck: deepCheck)
        for unit in planned {
            if !force, let entry = index[unit.id], entry.status == .done, await isUnchanged(unit, entry, fetcher: fetcher, state: state) {
                if entry.listing != unit.listing { decisions.refreshedListings.append((unit.id, unit.listing)) }
                summary.skipped += 1
                continue
            }
            work.append(unit)
        }
        return (work, decisions)
    }

    /// The job as a run would plan it now (listing the source, discovering symbols), against
    /// the recorded state: for `status`, which shows what is still to do, not only what is recorded.
    package func plan(today: ArchivePeriod, state: Manifest) async throws -> (keys: [String], units: [any WorkUnit]) {
        try checkSource()
        let index = state.units.mapValues { UnitIndexEntry(status: $0.status, listing: $0.listing, lacking: $0.lacking) }
        return try await spec.pipelineDataset().plan(self, today: today, index: index)
    }

    /// A local mirror that does not exist, or is not a mirror of the data tree, is a job file
    /// error: it would list as empty and every unit would look unpublished.
    package func checkSource() throws {
        guard case let .directory(root) = location else { return }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw JobFileError(file: spec.file, key: "source.base_url", reason: "the mirror directory \(root) does not exist")
        }
        let data = (root as NSString).appendingPathComponent("data")
        guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw JobFileError(file: spec.file, key: "source.base_url", reason: "\(root) is not a mirror of data.binance.vision: it has no data/ folder")
        }
    }

    /// A listing endpoint that answers with something other than a listing (not XML, a 4xx) is
    /// a wrong `listing_url` or `base_url`: a job file error, not an empty source.
    package func listingMistake(_ error: Error) -> Error {
        guard let error = error as? SourceError else { return error }
        switch error {
        case .listing, .http(_, 400..<500, _): return JobFileError(file: spec.file, key: "source.listing_url", reason: "\(error)")
        default: return error
        }
    }

    /// A done unit is skipped while its archive is unchanged: the same listing fingerprint as when
    /// it was imported (no request at all), or, when the fingerprint changed or was never
    /// recorded, the same published CHECKSUM (one small request; the new fingerprint is kept).
    package func isUnchanged(_ unit: some WorkUnit, _ entry: UnitIndexEntry, fetcher: any ArchiveSource, state: StateRecorder) async -> Bool {
        if let listing = unit.listing, entry.listing == listing { return true }
        guard let record = await state.record(unit.id) else { return false }
        let published: String?
        do {
            published = try await fetcher.publishedChecksum(unit.archive)
        } catch {
            logger.warning("\(unit.id): its listing changed and its CHECKSUM could not be read (\(error)); kept as done, checked again next run")
            return true
        }
        let unchanged: Bool
        switch (record.sha256, published) {
        case let (sha?, published?): unchanged = sha == published
        case (_?, nil): unchanged = true  // no CHECKSUM to compare with any more: keep what was verified
        case (nil, _): unchanged = record.listing == nil  // unverified: only a changed fingerprint tells
        }
        if !unchanged {
            logger.info("re-published archive: \(unit.id) (\(record.sha256?.prefix(12) ?? "unverified") -> \(published?.prefix(12) ?? "unverified"))")
        }
        return unchanged
    }
}

/// The target and schema this run writes to, against the ones the state records.
package struct PlannedBinding {
    package var binding: StateBinding
    package var recorded: StateBinding?
    package var rebinding: Bool { recorded != nil && recorded != binding }
    /// The dry run's line about it.
    package var line: String { "  \(binding)" + (rebinding ? "; the state records \(recorded.map { "\($0)" } ?? ""): a run needs --force" : "") }
}

/// What a plan decided that the state keeps: a deep check made, and the fingerprints of done
/// archives whose listing changed but whose CHECKSUM did not (not asked again next run).
package struct PlanDecisions: Sendable {
    var deepCheck: DeepCheck
    var refreshedListings: [(id: String, listing: String?)] = []
}

/// Whether this run is a deep check, and when the next one is (what the dry run says).
package struct DeepCheck {
    var due: Bool
    var next: Int64
    var everyDays: Int

    /// A run on `today`, after the deep check recorded on `lastChecked`, every `everyDays`.
    package init(lastChecked last: Int64?, today: ArchivePeriod, everyDays: Int) {
        let every = Int64(everyDays) * 86400
        due = last.map { today.start - $0 >= every || $0 > today.start } ?? true
        next = due ? today.start : (last ?? today.start) + every
        self.everyDays = everyDays
    }

    package var line: String {
        due ? "deep check: due (every \(everyDays) days): every key's folders are listed again"
            : "deep check: next on \(UTCCalendar.iso8601(next).prefix(10)) (recheck_days: \(everyDays)); until then settled periods are not listed again"
    }
}
