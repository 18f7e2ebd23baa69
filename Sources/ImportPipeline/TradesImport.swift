import BinanceSource
import Columnar
import DurableFiles
import Foundation
import JobModel
import JobState
import KlineArchive
import TradeArchive

/// One trades or aggTrades archive (a month or a day of one symbol) and its key.
package struct TradeUnit: WorkUnit, Equatable {
    package var address: TradeArchiveAddress
    package var key: String
    package var listing: String?
    package var idColumn: String
    /// Some of its rows may be in the target already: found `writing`, done before (forced or
    /// re-published), or a monthly whose days were imported from their daily archives.
    package var reconcile = false

    package var id: String { address.remotePath }
    package var archive: any PublishedArchive { address }
    /// An ID hole is recorded as a gap of the seconds it spans.
    package var gapStep: Int64? { 1 }
    package var appending: Appending? { Appending(idColumn: idColumn, reconcile: reconcile) }
}

/// The units of a trades job: per symbol, a past month's monthly archive where it is listed,
/// otherwise the month's daily archives (the current month, a monthly published late). A
/// monthly archive replaces daily units of its month recorded in the state: it is reconciled
/// against the rows they wrote, and they are superseded once it is done.
package struct TradesPlan: Sendable {
    package var keys: [String] = []
    package var units: [TradeUnit] = []
    package var notPublished: [TradeUnit] = []
    /// Daily unit id -> the monthly unit that replaces it.
    package var superseded: [String: String] = [:]
    package var failedKeys: [(key: String, reason: String, units: [TradeUnit])] = []
}

/// A trades run's decisions before any work.
struct PlannedTradesRun {
    var dataset: TradesDataset
    var plan: TradesPlan
    var work: [TradeUnit]
    var fetcher: any ArchiveSource
    var binding: PlannedBinding
    var decisions: PlanDecisions
    /// Where `gaps: rest` asks for missing IDs.
    var history: any TradeHistory
}

extension Planner {
    func planTrades(_ dataset: TradesDataset, _ options: RunOptions, state: StateRecorder, binding: PlannedBinding,
                    summary: inout RunSummary) async throws -> PlannedTradesRun {
        let index = await state.index()
        let deepCheck = try await deepCheck(options, state: state)
        let plan = try await makeTradesPlan(dataset, symbols: try await symbols(), today: options.today, index: index)
        summary.units = plan.units.count + plan.failedKeys.map(\.units.count).reduce(0, +)
        let fetcher = makeFetcher()
        let (work, decisions) = await unitsToImport(plan.units, index: index, fetcher: fetcher, state: state, force: options.force, deepCheck: deepCheck,
                                                    summary: &summary)
        return PlannedTradesRun(dataset: dataset, plan: plan, work: work, fetcher: fetcher, binding: binding, decisions: decisions,
                                history: options.tradeHistory ?? spec.restClient())
    }

    package func makeTradesPlan(_ dataset: TradesDataset, symbols: [String], today: ArchivePeriod, index: [String: UnitIndexEntry]) async throws -> TradesPlan {
        let parts = await inOrder(count: symbols.count, atOnce: spec.listings) { i in
            try await self.planTradesKey(dataset, symbol: symbols[i], today: today, index: index)
        }
        if !symbols.isEmpty, case let failures = parts.compactMap(\.failure), failures.count == symbols.count { throw listingMistake(failures[0]) }
        var plan = TradesPlan()
        for (i, part) in parts.enumerated() {
            switch part {
            case let .success(p):
                plan.keys += p.keys
                plan.units += p.units
                plan.notPublished += p.notPublished
                plan.superseded.merge(p.superseded) { a, _ in a }
                plan.failedKeys += p.failedKeys
            case let .failure(error):
                let key = try spec.keys(symbol: symbols[i])[0]
                plan.keys.append(key)
                let months = try spec.months(today: today).map { try tradeUnit(dataset, symbols[i], $0, key: key) }
                plan.failedKeys.append((key, "listing the \(dataset.name) archives of \(symbols[i]) failed: \(error)", months))
            }
        }
        return plan
    }

    func tradeUnit(_ dataset: TradesDataset, _ symbol: String, _ period: ArchivePeriod, key: String, listing: String? = nil) throws -> TradeUnit {
        TradeUnit(address: try TradeArchiveAddress(market: spec.market, symbol: symbol, dataset: dataset.archives, period: period), key: key,
                  listing: listing, idColumn: dataset.idColumn)
    }

    /// One symbol's units: one listing of its monthly folder, and one of a month's daily files
    /// for each month without a monthly archive.
    func planTradesKey(_ dataset: TradesDataset, symbol: String, today: ArchivePeriod, index: [String: UnitIndexEntry]) async throws -> TradesPlan {
        let key = try spec.keys(symbol: symbol)[0]
        let lister = makeLister()
        let current = ArchivePeriod(year: today.year, month: today.month)!
        let monthly = try await lister.published(market: spec.market, dataset: dataset.archives, symbol: symbol, daily: false)
        var plan = TradesPlan(keys: [key])
        // Units of the state that may hold rows already (an interrupted write, a done unit), and
        // whether REST filled IDs of the key (an archive published since may hold some of them).
        func mayHoldRows(_ id: String) -> Bool { [.done, .writing].contains(index[id]?.status) }
        let restPrefix = RestTradeUnit.prefix(spec.market, dataset.archives, symbol)
        let filledFromREST = index.contains { $0.key.hasPrefix(restPrefix) && [.done, .writing].contains($0.value.status) }
        for month in try spec.months(today: today) {
            if month < current, let file = monthly[month] {
                var unit = try tradeUnit(dataset, symbol, month, key: key, listing: file.fingerprint)
                let dailies = try PeriodPlanner.days(of: month).map { try tradeUnit(dataset, symbol, $0, key: key).id }.filter(mayHoldRows)
                for daily in dailies { plan.superseded[daily] = unit.id }
                unit.reconcile = mayHoldRows(unit.id) || !dailies.isEmpty || filledFromREST
                plan.units.append(unit)
                continue
            }
            let days = PeriodPlanner.days(of: month).filter { $0 < today }
            if days.isEmpty { continue }
            let daily = try await lister.published(market: spec.market, dataset: dataset.archives, symbol: symbol, daily: true, month: month)
            guard !daily.isEmpty else {
                plan.notPublished.append(try tradeUnit(dataset, symbol, month, key: key))
                continue
            }
            for day in days {
                var unit = try tradeUnit(dataset, symbol, day, key: key, listing: daily[day]?.fingerprint)
                guard unit.listing != nil else {
                    plan.notPublished.append(unit)
                    continue
                }
                unit.reconcile = mayHoldRows(unit.id) || filledFromREST
                plan.units.append(unit)
            }
        }
        if plan.units.isEmpty, !plan.notPublished.isEmpty {
            plan.failedKeys.append((key, "no \(dataset.name) archive published for \(symbol) from \(spec.from); check the symbol", plan.notPublished))
            plan.notPublished = []
        }
        return plan
    }
}

extension ImportRunner {
    func printDryRun(_ planned: PlannedTradesRun, summary: RunSummary) {
        let plan = planned.plan
        printPlanHead("plan for \(spec.name) (\(planned.dataset.name))", units: plan.units.count, work: planned.work, fetcher: planned.fetcher,
                      binding: planned.binding, deepCheck: planned.decisions.deepCheck, summary: summary)
        for unit in planned.work where unit.reconcile { print("  reconciled (its IDs read back, only missing ones written): \(unit.id)") }
        for (daily, monthly) in plan.superseded.sorted(by: { $0.key < $1.key }) { print("  superseded when done: \(daily) by \(monthly)") }
        for unit in plan.notPublished { print("  not published: \(unit.id)") }
        for failed in plan.failedKeys { print("  fails: \(failed.key): \(failed.reason)") }
    }

    func execute(_ planned: PlannedTradesRun, state: StateRecorder, writer: Writer, progress: Progress, summary: inout RunSummary) async throws {
        let plan = planned.plan
        await recordNotPublished(plan.notPublished, index: await state.index(), state: state)
        summary.notPublished = plan.notPublished.count
        await recordFailedKeys(plan.failedKeys.map { ($0.key, $0.reason, $0.units) }, state: state, summary: &summary)
        let floatType = spec.floatType, chunkRows = spec.chunkRows, strict = spec.validation == .strict
        do {
            try await runPipeline(work: planned.work, fetcher: planned.fetcher, writer: writer) { unit, result, thread, pieces in
                guard let archive = await self.fetchedArchive(unit, result, state: state, progress: progress) else { return }
                do {
                    let report = try await onThread(thread) {
                        try TradePieces.decode(unit, archive: archive, floatType: floatType, chunkRows: chunkRows, strict: strict) { pieces.put($0) }
                    }
                    for hole in report.holes.prefix(20) {
                        let (after, before) = (UTCCalendar.iso8601(floorDiv(hole.afterMicros, 1_000_000)), UTCCalendar.iso8601(floorDiv(hole.beforeMicros, 1_000_000)))
                        self.logger.warning("\(unit.key): \(hole.kind) \(hole.first)..\(hole.last) missing in \(unit.id) (between \(after) and \(before))")
                    }
                } catch {
                    await state.fail(unit, "\(error)", progress: progress, logger: self.logger)
                }
            }
            try await writer.flush()
        } catch let error as FileWriteError {
            summary.stateError = "\(error)"
        } catch is StopRequested {
            // A signal cut a write short: its units stay `writing` and are reconciled next run.
        }
        let index = await state.index()
        for (daily, monthly) in plan.superseded.sorted(by: { $0.key < $1.key }) where index[monthly]?.status == .done {
            await state.superseded(daily)
            summary.superseded += 1
        }
        var missing = await missingIDs(keys: Set(plan.keys), state: state)
        if spec.confirmGaps, !missing.isEmpty, !stop.requested {
            do {
                let (asked, rows) = try await fillTradeHoles(missing, dataset: planned.dataset, history: planned.history, state: state, writer: writer, progress: progress)
                logger.notice("gaps: rest: \(asked) range(s) of missing IDs asked, \(rows) trade(s) written")
                summary.gapRequests += asked
                missing = await missingIDs(keys: Set(plan.keys), state: state)
            } catch is StopRequested {}
        }
        if spec.toNow, !stop.requested {
            do {
                let rows = try await continueTradesToNow(keys: plan.keys, dataset: planned.dataset, history: planned.history, state: state, writer: writer, progress: progress)
                logger.notice("to: now: \(rows) trade(s) from REST after the archives")
                missing = await missingIDs(keys: Set(plan.keys), state: state)
            } catch let error as RestError {
                logger.error("to: now: REST stopped: \(error)")
                summary.restStopped = "\(error)"
            } catch is StopRequested {}
        }
        summary.idHoles = missing.mapValues { $0.map(\.line) }
    }
}

extension ImportRunner {
    /// The IDs of `keys` no done unit covers (`TradeContinuity`), from the state as it is now.
    func missingIDs(keys: Set<String>, state: StateRecorder) async -> [String: [TradeContinuity.Missing]] {
        TradeContinuity.missing(await doneRecords(keys: keys, state: state))
    }

    /// The done units of `keys`, read once from the state.
    func doneRecords(keys: Set<String>, state: StateRecorder) async -> [UnitRecord] {
        var records: [UnitRecord] = []
        for (id, entry) in await state.index() where entry.status == .done {
            if let record = await state.record(id), keys.contains(record.key) { records.append(record) }
        }
        return records
    }
}

/// Trades decoded into the writer's pieces: chunks of `chunkRows` rows as they are parsed (one
/// chunk held back, so the last piece carries the unit's outcome), from an archive as it
/// inflates or from REST's rows in the archive's layout.
enum TradePieces {
    static func decode(_ unit: TradeUnit, archive: LocalArchive, floatType: FloatType, chunkRows: Int, strict: Bool,
                       put: @escaping (DecodedPiece) -> Void) throws -> TradeReport {
        let market = TradeMarket(unit.address.market)
        let size = ((try? FileManager.default.attributesOfItem(atPath: archive.path))?[.size] as? UInt64) ?? 0
        if strict {
            // A first pass that writes nothing: a streamed archive cannot take back rows it sent.
            let report = try TradeArchiveDecoder.decode(path: archive.path, market: market, as: Double.self, chunkRows: chunkRows) { _ in }
            if report.holeCount + report.outOfOrder + report.timeBackwards + report.outsidePeriod > 0 { throw TradeValidationFailed(report: report) }
        }
        func outcome(_ report: TradeReport, _ digest: ColumnDigest) -> UnitOutcome {
            UnitOutcome(archive: archive, facts: UnitFacts(report, bytes: size), digest: digest)
        }
        switch floatType {
        case .float32:
            return try pieces(unit, market: market, dataset: unit.address.dataset, as: Float.self, put: put, outcome: outcome) {
                try TradeArchiveDecoder.decode(path: archive.path, market: market, as: Float.self, chunkRows: chunkRows, onChunk: $0)
            }
        case .float64:
            return try pieces(unit, market: market, dataset: unit.address.dataset, as: Double.self, put: put, outcome: outcome) {
                try TradeArchiveDecoder.decode(path: archive.path, market: market, as: Double.self, chunkRows: chunkRows, onChunk: $0)
            }
        }
    }

    /// REST's rows (`RestClient.tradeLines`) as a unit's pieces: the archive's parser reads them,
    /// named as an archive of `day` (rows on other days are not anomalies here).
    static func decode(_ unit: any WorkUnit, lines: [String], name: TradeArchiveName, market: TradeMarket, floatType: FloatType, chunkRows: Int,
                       put: @escaping (DecodedPiece) -> Void) throws -> TradeReport {
        func outcome(_ report: TradeReport, _ digest: ColumnDigest) -> UnitOutcome {
            var facts = UnitFacts(report, bytes: 0)
            if let outside = facts.anomalies.removeValue(forKey: "outside_period") { facts.anomalyCount -= outside }
            return UnitOutcome(restFacts: facts, digest: digest, coveredTo: facts.lastEpoch ?? 0)
        }
        func parse<F: KlineFloat>(_: F.Type) throws -> TradeReport {
            try pieces(unit, market: market, dataset: name.dataset, as: F.self, put: put, outcome: outcome) { onChunk in
                let parser = TradeCSVParser<F>(layout: TradeLayout(dataset: name.dataset, market: market), source: unit.id, member: "REST", name: name,
                                               chunkRows: chunkRows, onChunk: onChunk)
                var text = Array(lines.joined(separator: "\n").utf8)
                text.append(0x0A)
                try text.withUnsafeBytes { try parser.feed($0) }
                return try parser.finish()
            }
        }
        return floatType == .float32 ? try parse(Float.self) : try parse(Double.self)
    }

    static func pieces<F: KlineFloat>(_ unit: any WorkUnit, market: TradeMarket, dataset: TradeDataset, as: F.Type, put: @escaping (DecodedPiece) -> Void,
                                      outcome: (TradeReport, ColumnDigest) -> UnitOutcome,
                                      decode: (@escaping (TradeBatch<F>) throws -> Void) throws -> TradeReport) throws -> TradeReport {
        var held: RowBatch?
        var digest = ColumnDigest()
        let report = try decode { chunk in
            let rows = RowBatch(chunk, market: market)
            digest.add(epochs: rows.epochs, columns: rows.columns)
            if let held { put(DecodedPiece(unit: unit, batch: held, outcome: nil)) }
            held = rows
        }
        put(DecodedPiece(unit: unit, batch: held ?? RowBatch(TradeBatch<F>(), market: market, dataset: dataset), outcome: outcome(report, digest)))
        return report
    }
}

/// `validation: strict` and a tick archive with an ID hole or rows out of order.
struct TradeValidationFailed: Error, CustomStringConvertible {
    var report: TradeReport
    var description: String {
        "strict validation failed: \(report.holeCount) ID hole(s) (\(report.idsMissing) IDs), \(report.outOfOrder) ID(s) out of order, "
            + "\(report.timeBackwards) time(s) backwards, \(report.outsidePeriod) row(s) outside the period"
    }
}

extension RowBatch {
    /// Trades as MarketStore's records: Price, Qty, the amount (raw trades), the IDs, the flags
    /// (i1), then Nanoseconds (the order of `TradesDataset.columns`).
    init<F: KlineFloat>(_ batch: TradeBatch<F>, market: TradeMarket, dataset: TradeDataset? = nil) {
        let aggregates = dataset.map { $0 == .aggTrades } ?? !batch.firstTradeIDs.isEmpty
        var columns: [(name: String, values: ColumnValues)] = [("Price", F.column(batch.prices)), ("Qty", F.column(batch.quantities))]
        if !aggregates { columns.append((market == .cm ? "BaseQty" : "QuoteQty", F.column(batch.amounts))) }
        if aggregates {
            columns += [("AggTradeID", .int64(batch.ids)), ("FirstTradeID", .int64(batch.firstTradeIDs)), ("LastTradeID", .int64(batch.lastTradeIDs))]
        } else {
            columns.append(("TradeID", .int64(batch.ids)))
        }
        columns.append(("IsBuyerMaker", .int8(batch.buyerMaker.map { $0 ? 1 : 0 })))
        if market == .spot { columns.append(("IsBestMatch", .int8(batch.bestMatch.map { $0 ? 1 : 0 }))) }
        columns.append(("Nanoseconds", .int32(batch.nanoseconds)))
        self.init(epochs: batch.epochs, columns: columns)
    }
}

extension UnitFacts {
    /// A tick archive's facts: its rows, first and last second and ID, its ID holes as gaps of
    /// the seconds they span, and what does not fit the ID sequence as anomalies.
    package init(_ report: TradeReport, bytes: UInt64) {
        let counted = ["id_holes": report.holeCount, "ids_missing": Int(report.idsMissing), "ids_out_of_order": report.outOfOrder,
                       "time_backwards": report.timeBackwards, "outside_period": report.outsidePeriod].filter { $0.value > 0 }
        self.init(rows: report.rows, firstEpoch: report.firstMicros.map { floorDiv($0, 1_000_000) }, lastEpoch: report.lastMicros.map { floorDiv($0, 1_000_000) },
                  anomalies: counted, anomalyCount: report.holeCount + report.outOfOrder + report.timeBackwards + report.outsidePeriod,
                  gaps: report.holes.map { [floorDiv($0.afterMicros, 1_000_000), floorDiv($0.beforeMicros, 1_000_000)] }, bytes: bytes)
        (firstID, lastID) = (report.firstID, report.lastID)
        let idKind = report.dataset == .trades ? "trade_id" : "agg_trade_id"  // an aggregate chain's trade IDs are not the key's IDs
        idHoles = report.holes.filter { $0.kind == idKind }
            .map { [$0.first, $0.last, floorDiv($0.afterMicros, 1_000_000), floorDiv($0.beforeMicros, 1_000_000)] }
    }
}
