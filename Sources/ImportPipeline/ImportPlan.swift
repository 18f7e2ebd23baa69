import BinanceSource
import Columnar
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive
import MarketStore
import MarketStoreModel

/// One planned unit: an archive and the MarketStore key its rows go to.
public struct PlannedUnit: Sendable, Equatable {
    public var address: ArchiveAddress
    public var key: String
    /// The listing's fingerprint of the archive (size, ETag, modification time); nil for a
    /// period known not to be published.
    public var listing: String?
    /// A day filled from REST klines (`to: now`): the daily archive's address, another id.
    public var fromREST = false
    /// A daily archive imported for a day that its month's monthly archive lacks.
    public var repairs = false
    /// A gap's klines from REST (`gaps: rest`): its first and last open time.
    public var gap: ClosedRange<Int64>?
    /// The archive's remote path; for a REST day `rest/<market>/daily/<dataset>/...`; for a gap
    /// filled from REST, that day's with `#FIRST-LAST`.
    public var id: String {
        guard fromREST else { return address.remotePath }
        let day = "rest/" + address.remotePath.dropFirst("data/".count)
        return gap.map { "rest/gap/" + day.dropFirst("rest/".count) + "#\($0.lowerBound)-\($0.upperBound)" } ?? day
    }
}

/// The days of a key to fill from REST (`to: now`): every day after its last archive, within
/// the recent months, through today.
public struct RestEdge: Sendable {
    public var key: String
    public var symbol: String
    public var interval: KlineInterval
    public var days: [PlannedUnit]

    package init(key: String, symbol: String, interval: KlineInterval, days: [PlannedUnit]) {
        (self.key, self.symbol, self.interval, self.days) = (key, symbol, interval, days)
    }
}

/// What the listing shows of one key over the job's range: months with no archive before the
/// first one or after the last (a listing, a delisting), or none at all (a wrong symbol).
public struct KeyCoverage: Sendable {
    public var key: String
    public var symbol: String
    public var interval: KlineInterval
    public var range: (from: ArchivePeriod, to: ArchivePeriod)?
    public var missingBefore: [ArchivePeriod] = []
    public var missingAfter: [ArchivePeriod] = []
    /// No archive at all in a range where some could be out.
    public var noArchive = false

    /// "2023-01..2023-06 (before its first archive); 2024-09 (after its last archive)", or nil.
    public var gaps: String? {
        var parts: [String] = []
        if !missingBefore.isEmpty { parts.append("\(Self.span(missingBefore)) (before its first archive)") }
        if !missingAfter.isEmpty { parts.append("\(Self.span(missingAfter)) (after its last archive)") }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    /// Why the key's months failed as a whole: its listing failed (`listingError`), or nothing
    /// is published for it.
    public var listingError: String?

    public var noArchiveMessage: String {
        if let listingError { return "listing the archives of \(symbol) \(interval.name) failed: \(listingError)" }
        let r = range.map { "\($0.from)..\($0.to)" } ?? ""
        return "no archive published for \(symbol) \(interval.name) in \(r); check the symbol"
    }

    package static func span(_ months: [ArchivePeriod]) -> String {
        months.count == 1 ? "\(months[0])" : "\(months.first!)..\(months.last!)"
    }
}

/// The units of a job: market x symbol x interval x period over the job's whole range, every
/// run. A past month whose monthly archive is listed is one unit; any other month is its listed
/// daily archives, whatever its age (binance-public-data has months with daily files only);
/// months with nothing listed are not published. A monthly archive that lacks whole days (see
/// `UnitRecord.lacking`) is repaired from those days' daily archives. Re-runs skip settled units
/// cheaply (see ImportRunner), so a nightly converges: late monthlies replace their dailies,
/// months published late and symbols added to the job get their history, failed units are tried
/// again.
///
/// Requests: one listing of the monthly folder per symbol x interval; one listing of a month's
/// daily files for each month that needs them (the current month, months within `recentMonths`
/// of it without their monthly archive, holes between two monthlies, a monthly whose repair is
/// unfinished), the recent ones of a year together in one (the year's prefix, from the first of
/// them); and one listing of a year's daily files for older months without a monthly archive. An old month found without any archive is recorded with the monthly folder's
/// fingerprint and not listed again while that folder lists the same (or until `--force`).
public struct ImportPlan: Sendable {
    /// Archives that are listed: imported, or skipped when done and unchanged.
    public var units: [PlannedUnit]
    /// Periods with no archive in the listing: recorded as not published without a request.
    public var notPublished: [PlannedUnit]
    /// Manifest ids of daily units replaced by a monthly unit of this plan (unless the monthly
    /// lacks their day).
    public var superseded: [String: String]  // daily id -> monthly id
    /// Per key: gaps as ranges, or no archive at all.
    public var coverage: [KeyCoverage]
    /// Keys with no archive at all in the range (a wrong symbol, most likely): each month of the
    /// range as a failed unit, with the coverage's message.
    public var unpublishedKeys: [(coverage: KeyCoverage, months: [PlannedUnit])]
    /// With `to: now`: per key, the days after its archives, to fill from REST.
    public var restEdges: [RestEdge] = []
    /// Days with no daily archive between a key's first and last archive, in months without a
    /// monthly one: gaps of a whole day (as days a monthly lacks that no daily has).
    public var holes: [PlannedUnit] = []

    /// How many months before the current one are still looked at through their daily files on
    /// every run while their monthly archive is missing (Binance publishes monthlies days,
    /// sometimes weeks, late); older ones only when the monthly folder changes.
    public static let recentMonths = 2

    /// What the monthly folder of a key lists, in one string: an old month recorded as not
    /// published is listed again only when this changes.
    package static func folderFingerprint(_ listing: [ArchivePeriod: String]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for (period, fingerprint) in listing.sorted(by: { $0.key < $1.key }) {
            for byte in "\(period) \(fingerprint)\n".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        }
        return "folder \(listing.count) " + String(hash, radix: 16)
    }

    /// The recorded fingerprints of a key's monthly archives when every month before the current
    /// one is settled in the state: done from its monthly archive (with any repair finished), or,
    /// before the recent months, recorded as not published. nil when anything may still change.
    package static func settledMonthlies(months: [ArchivePeriod], current: ArchivePeriod, recentStart: ArchivePeriod, index: [String: UnitIndexEntry],
                                 unit: (ArchivePeriod) throws -> PlannedUnit) throws -> [ArchivePeriod: String]? {
        var out: [ArchivePeriod: String] = [:]
        for month in months where month < current {
            var u = try unit(month)
            guard let entry = index[u.id] else { return nil }
            // Empty by the plan's own listing (it records the folder's fingerprint), not by a 404
            // from a CDN that lagged the listing: that one is looked at again.
            if entry.status == .notPublished, month < recentStart, entry.listing?.hasPrefix("folder ") == true { continue }
            guard entry.status == .done, let listing = entry.listing else { return nil }
            u.listing = listing
            guard try unsettledRepairs(of: u, entry: entry, index: index, unit: unit).isEmpty else { return nil }
            out[month] = listing
        }
        return out
    }

    /// The days of a monthly unit's recorded holes whose repair is not settled (not done, not
    /// known to be unpublished).
    package static func unsettledRepairs(of monthly: PlannedUnit, entry: UnitIndexEntry?, index: [String: UnitIndexEntry],
                                 unit: (ArchivePeriod) throws -> PlannedUnit) rethrows -> [PlannedUnit] {
        guard let entry, entry.status == .done, entry.listing == monthly.listing, let lacking = entry.lacking else { return [] }
        return try lacking.compactMap(ArchivePeriod.init(day:)).map(unit).filter {
            let status = index[$0.id]?.status
            return status != .done && status != .notPublished
        }
    }

    /// `listings`: how many keys are planned at once (each key's listings are requests in turn,
    /// so over a long round trip the keys' concurrency, not their count, sets the time). The plan
    /// is assembled in key order whatever order the keys finish in.
    package static func make(spec: JobSpec, dataset: KlineDataset, symbols: [String], today: ArchivePeriod, lister: ArchiveLister,
                     index: [String: UnitIndexEntry], force: Bool = false, listings: Int = 32, deepCheck: Bool = true) async throws -> ImportPlan {
        let current = ArchivePeriod(year: today.year, month: today.month)!
        let months = spec.months(today: today)
        let recentStart = PeriodPlanner.months(back: recentMonths, from: current)
        var plan = ImportPlan(units: [], notPublished: [], superseded: [:], coverage: [], unpublishedKeys: [])
        // The state's daily units (not yet superseded) by the id of their month's monthly unit,
        // found in one pass (not 31 look-ups per monthly unit).
        var dailiesByMonthly: [String: [String]] = [:]
        for (id, entry) in index where entry.status != .superseded {
            if let monthly = UnitRecord.monthlyID(ofDaily: id) { dailiesByMonthly[monthly, default: []].append(id) }
        }
        let keys = try symbols.flatMap { symbol in try spec.intervals.map { (symbol, $0, try spec.key(symbol: symbol, interval: $0)) } }
        let context = KeyContext(spec: spec, dataset: dataset, today: today, current: current, months: months, recentStart: recentStart, index: index,
                                 dailiesByMonthly: dailiesByMonthly, force: force, lister: lister, deepCheck: deepCheck)
        let planned = await inOrder(count: keys.count, atOnce: listings) { i in
            try await Self.planKey(symbol: keys[i].0, interval: keys[i].1, key: keys[i].2, context)
        }
        // A key whose listing failed fails alone; when every key failed, the source is wrong.
        if !keys.isEmpty, case let failures = planned.compactMap(\.failure), failures.count == keys.count { throw failures[0] }
        for (i, result) in planned.enumerated() {
            switch result {
            case let .success(part):
                plan.units += part.units
                plan.notPublished += part.notPublished
                plan.holes += part.holes
                plan.superseded.merge(part.superseded) { a, _ in a }
                plan.coverage += part.coverage
                plan.unpublishedKeys += part.unpublishedKeys
                plan.restEdges += part.restEdges
            case let .failure(error):
                let (symbol, interval, key) = keys[i]
                var coverage = KeyCoverage(key: key, symbol: symbol, interval: interval)
                coverage.range = months.first.flatMap { first in months.last.map { (first, $0) } }
                coverage.noArchive = true
                coverage.listingError = "\(error)"
                let unpublished = try months.map {
                    PlannedUnit(address: try ArchiveAddress(market: spec.market, symbol: symbol, interval: interval, period: $0, dataset: dataset), key: key)
                }
                plan.coverage.append(coverage)
                plan.unpublishedKeys.append((coverage, unpublished))
            }
        }
        return plan
    }

    /// What planning one key needs, shared by every key of a plan.
    package struct KeyContext: Sendable {
        var spec: JobSpec, dataset: KlineDataset, today: ArchivePeriod, current: ArchivePeriod, months: [ArchivePeriod], recentStart: ArchivePeriod
        var index: [String: UnitIndexEntry], dailiesByMonthly: [String: [String]], force: Bool, lister: ArchiveLister
        /// List every key's monthly folder, settled or not (`recheck_days`).
        var deepCheck: Bool
    }

    /// One key's part of the plan: its listings (the monthly folder, then the daily files its
    /// months need), its units in month order, its coverage and REST edge.
    package static func planKey(symbol: String, interval: KlineInterval, key: String, _ c: KeyContext) async throws -> ImportPlan {
        let (spec, dataset, today, current, months, recentStart, index, dailiesByMonthly, force, lister) =
            (c.spec, c.dataset, c.today, c.current, c.months, c.recentStart, c.index, c.dailiesByMonthly, c.force, c.lister)
        var plan = ImportPlan(units: [], notPublished: [], superseded: [:], coverage: [], unpublishedKeys: [])
        func unit(_ period: ArchivePeriod, _ listing: String?) throws -> PlannedUnit {
            PlannedUnit(address: try ArchiveAddress(market: spec.market, symbol: symbol, interval: interval, period: period, dataset: dataset),
                        key: key, listing: listing)
        }
        // The monthly archives' fingerprints by month: from the listing of the monthly folder, or
        // from the state when it says every past month is settled (a quiet nightly then lists
        // only the current month's dailies; a deep check every `recheck_days` lists all).
        let settled = c.deepCheck || force ? nil : try settledMonthlies(months: months, current: current, recentStart: recentStart, index: index) { try unit($0, nil) }
        let monthly: [ArchivePeriod: String]
        let folder: String?  // nil: not listed this run
        // When the monthly folder is listed, the recent dailies the key will want are listed in the
        // same round trip: from the first recent month the state does not have done from its
        // monthly archive (else the current month), within the current year.
        var early: (from: ArchivePeriod, files: [ArchivePeriod: ListedFile])?
        if let settled {
            (monthly, folder) = (settled, nil)
        } else {
            let notDone = try months.filter { $0 >= recentStart && $0 < current && $0.year == current.year }
                .first { index[try unit($0, nil).id]?.status != .done }
            let from = notDone ?? current
            async let dailies = from < current
                ? lister.published(market: spec.market, dataset: dataset, symbol: symbol, interval: interval, daily: true, from: from)
                : lister.published(market: spec.market, dataset: dataset, symbol: symbol, interval: interval, daily: true, month: current)
            monthly = try await lister.published(market: spec.market, dataset: dataset, symbol: symbol, interval: interval, daily: false).mapValues(\.fingerprint)
            folder = folderFingerprint(monthly)
            early = (from, try await dailies)
        }
        let listedMonths = months.filter { $0 < current && monthly[$0] != nil }
        // First the listings of daily files that the months need: by year for old months,
        // by month for recent ones and for repairs.
        var years = Set<Int>(), monthsToList: [ArchivePeriod] = [], knownEmpty = Set<ArchivePeriod>()
        for month in months {
            if month < current, let file = monthly[month] {
                let u = try unit(month, file)
                if try !unsettledRepairs(of: u, entry: index[u.id], index: index, unit: { try unit($0, nil) }).isEmpty { monthsToList.append(month) }
                continue
            }
            let betweenMonthlies = listedMonths.first.map { month > $0 } == true && listedMonths.last.map { month < $0 } == true
            if month >= recentStart || betweenMonthlies {
                if PeriodPlanner.days(of: month).contains(where: { $0 < today }) { monthsToList.append(month) }
            } else if !force, let entry = index[try unit(month, nil).id], entry.status == .notPublished, folder == nil || entry.listing == folder {
                knownEmpty.insert(month)
            } else {
                years.insert(month.year)
            }
        }
        var dailyFiles: [ArchivePeriod: ListedFile] = early?.files ?? [:]
        // Months the early listing covered need no request of their own.
        if let early { monthsToList.removeAll { $0.year == early.from.year && $0 >= early.from && (early.from < current || $0 == current) } }
        for year in years.sorted() {
            dailyFiles.merge(try await lister.published(market: spec.market, dataset: dataset, symbol: symbol, interval: interval,
                                                        daily: true, year: year)) { a, _ in a }
        }
        // Recent months of one year in one request (the year's prefix from the first of them): a
        // quiet nightly's round trips per key, not its months, set its time over a long link.
        let byYear = Dictionary(grouping: monthsToList.filter { !years.contains($0.year) }, by: \.year)
        for (_, list) in byYear.sorted(by: { $0.key < $1.key }) {
            let recent = list.filter { $0 >= recentStart }
            if recent.count > 1, let first = recent.min() {
                dailyFiles.merge(try await lister.published(market: spec.market, dataset: dataset, symbol: symbol, interval: interval,
                                                            daily: true, from: first)) { a, _ in a }
            }
            for month in list where recent.count <= 1 || month < recentStart {
                dailyFiles.merge(try await lister.published(market: spec.market, dataset: dataset, symbol: symbol, interval: interval,
                                                            daily: true, month: month)) { a, _ in a }
            }
        }

        var coverage = KeyCoverage(key: key, symbol: symbol, interval: interval)
        var missing: [ArchivePeriod] = [], found: [ArchivePeriod] = [], notPublished: [PlannedUnit] = []
        var firstArchiveDay: ArchivePeriod?, lastArchiveDay: ArchivePeriod?  // the days the key's archives span
        for month in months {
            if month < current, let file = monthly[month] {
                let u = try unit(month, file)
                plan.units.append(u)
                found.append(month)
                firstArchiveDay = firstArchiveDay ?? PeriodPlanner.days(of: month).first
                lastArchiveDay = PeriodPlanner.days(of: month).last
                for daily in dailiesByMonthly[u.id] ?? [] { plan.superseded[daily] = u.id }
                // A monthly with holes whose repair an earlier run did not finish.
                for day in try unsettledRepairs(of: u, entry: index[u.id], index: index, unit: { try unit($0, nil) }) {
                    var day = day
                    day.repairs = true
                    if let file = dailyFiles[day.address.period] {
                        day.listing = file.fingerprint
                        plan.units.append(day)
                    } else {
                        notPublished.append(day)
                    }
                }
                continue
            }
            let old = month < recentStart
            var empty = try unit(month, nil)
            if old { empty.listing = folder ?? index[empty.id]?.listing }  // not listed again while the folder lists the same
            if knownEmpty.contains(month) {
                notPublished.append(empty)
                missing.append(month)
                continue
            }
            let days = PeriodPlanner.days(of: month).filter { $0 < today }
            if days.isEmpty { continue }  // the first day of the current month: nothing can be out yet
            guard days.contains(where: { dailyFiles[$0] != nil }) else {
                // Nothing of the month is out: one record for the month, not one per day
                // (a delisted symbol would otherwise add ~60 records a night).
                notPublished.append(empty)
                missing.append(month)
                continue
            }
            for day in days {
                if let file = dailyFiles[day] {
                    plan.units.append(try unit(day, file.fingerprint))
                    firstArchiveDay = min(firstArchiveDay ?? day, day)
                    lastArchiveDay = max(lastArchiveDay ?? day, day)
                } else {
                    notPublished.append(try unit(day, nil))
                }
            }
            found.append(month)
        }
        // Months end at the current one: something could be out unless the range is just
        // the current month on its first day.
        if let first = months.first, let last = months.last, first < current || today.day > 1 {
            coverage.range = (first, last)
            coverage.noArchive = found.isEmpty
        }
        if coverage.noArchive {
            plan.unpublishedKeys.append((coverage, try months.map { try unit($0, nil) }))
        } else {
            plan.notPublished += notPublished
            if let first = firstArchiveDay, let last = lastArchiveDay {
                plan.holes += notPublished.filter { $0.address.period.kind == .day && !$0.repairs && $0.address.period > first && $0.address.period < last }
            }
        }
        // `to: now`: the days after the key's last archive, within the recent months (a key
        // whose archives ended long ago is delisted, not late), through today. Intervals
        // longer than a day have no daily archives and no closed candle to add here.
        if spec.toNow, !coverage.noArchive, let last = lastArchiveDay, let step = interval.seconds, step <= 86400 {
            let recentFirstDay = PeriodPlanner.days(of: recentStart).first!
            let start = max(PeriodPlanner.day(after: last), recentFirstDay, PeriodPlanner.days(of: spec.from).first!)
            var restDays: [PlannedUnit] = []
            for month in months where month >= ArchivePeriod(year: start.year, month: start.month)! {
                for day in PeriodPlanner.days(of: month) where day >= start && day <= today {
                    var u = try unit(day, nil)
                    u.fromREST = true
                    restDays.append(u)
                }
            }
            if !restDays.isEmpty { plan.restEdges.append(RestEdge(key: key, symbol: symbol, interval: interval, days: restDays)) }
        }
        if let firstFound = found.min(), let lastFound = found.max() {
            coverage.missingBefore = missing.filter { $0 < firstFound }
            coverage.missingAfter = missing.filter { $0 > lastFound }
        }
        plan.coverage.append(coverage)
        return plan
    }
}

/// `body(0..<count)` with at most `atOnce` in flight (the next starts as one finishes), the
/// results in index order whatever order they finish in: how a plan lists many keys at once.
package func inOrder<T: Sendable>(count: Int, atOnce: Int, _ body: @escaping @Sendable (Int) async throws -> T) async -> [Result<T, Error>] {
    await withTaskGroup(of: (Int, Result<T, Error>).self) { group in
        var next = 0, out: [(Int, Result<T, Error>)] = []
        out.reserveCapacity(count)
        while next < count || !group.isEmpty {
            while next < count && next - out.count < max(1, atOnce) {
                let i = next
                group.addTask {
                    do { return (i, .success(try await body(i))) } catch { return (i, .failure(error)) }
                }
                next += 1
            }
            if let done = await group.next() { out.append(done) }
        }
        return out.sorted { $0.0 < $1.0 }.map(\.1)
    }
}

extension Result {
    /// The error of a failure, nil for a success.
    package var failure: Failure? { if case let .failure(e) = self { return e } else { return nil } }
}
