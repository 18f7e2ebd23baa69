import Columnar
import CurlHTTP
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive
import Logging
import MarketStore
import MarketStoreDirectory
import MarketStoreModel

/// Packs decoded rows into Write requests of about `chunk_rows` rows carrying several keys, sends
/// them one at a time through the schema guard, and marks a unit done once the request carrying
/// its last rows was acknowledged. Writes to fixed-length buckets are idempotent, so a request
/// that failed on the network is simply sent again. Appended rows (trades) are not: their units
/// are recorded `writing` before the first request, a request carries one key, and one that
/// failed is not sent again (its units are reconciled by the next run; see `Appending`).
package actor Writer {
    package let spec: JobSpec
    package let sink: RowSink
    package let state: StateRecorder
    package let progress: Progress
    package let logger: Logger

    private var keyOrder: [String] = []
    private var parts: [String: [RowBatch]] = [:]
    private var rows = 0
    private var units: [(unit: any WorkUnit, outcome: UnitOutcome?)] = []
    private var failedUnits: Set<String> = []
    /// Append-only units recorded `writing` this run, and whether that waits for a commit.
    private var intents: Set<String> = []
    private var intentsToCommit = false
    /// Per reconciled unit: rows found in the target already, and those found with other values.
    private var reconciled: [String: (present: Int, changed: Int)] = [:]
    /// Append requests not yet answered (a killed run leaves them), the slowest answer seen, and
    /// the keys whose earlier run's request this run has waited for.
    private let inFlight: InFlightAppends?  // nil: the sink's appends stop with this process
    private var slowestAnswer = 0.0
    private var settledKeys: Set<String> = []
    /// Requests, rows per key and errors by kind, for the summary and /metrics.
    package private(set) var counters = WriteCounters()
    /// Rows written that MarketStore will not serve back (1 January of 1D buckets).
    private(set) var unservedRows = 0
    private var acknowledged = 0
    private var refusals = 0
    package var refusedEverything: Bool { acknowledged == 0 && refusals > 0 }

    /// A stop asked by a signal: a request it cut short leaves its units pending.
    package let stop: StopRequest

    package init(spec: JobSpec, sink: RowSink, state: StateRecorder, progress: Progress, logger: Logger, stop: StopRequest) {
        self.stop = stop
        self.spec = spec
        self.inFlight = sink.appendsOutliveTheCaller ? InFlightAppends(manifest: spec.manifest) : nil
        self.sink = sink
        self.state = state
        self.progress = progress
        self.logger = logger
    }

    package func add(_ piece: DecodedPiece) async throws {
        if failedUnits.contains(piece.unit.id) { return }
        var piece = piece
        if let appending = piece.unit.appending {
            if appending.reconcile {
                do {
                    try await settle(piece.unit.key)
                    piece.batch = try await missingRows(piece, idColumn: appending.idColumn)
                } catch {
                    await fail(piece.unit, "reading back its rows to reconcile them: \(error)")
                    return
                }
            }
            if let pending = keyOrder.first, pending != piece.unit.key { try await flush() }  // one key a request
            if intents.insert(piece.unit.id).inserted {
                await state.writing(piece.unit.id, key: piece.unit.key)
                intentsToCommit = true
            }
        }
        if var outcome = piece.outcome, let counts = reconciled.removeValue(forKey: piece.unit.id) {
            outcome.facts.anomalies["already_in_target"] = counts.present
            if counts.changed > 0 {
                outcome.facts.anomalies["differs_from_target"] = counts.changed
                outcome.facts.anomalyCount += counts.changed
            }
            piece.outcome = outcome
        }
        if parts[piece.unit.key] == nil { keyOrder.append(piece.unit.key) }
        parts[piece.unit.key, default: []].append(piece.batch)
        rows += piece.batch.count
        units.append((piece.unit, piece.outcome))
        if rows >= spec.chunkRows { try await flush() }
    }

    package func flush() async throws {
        guard !units.isEmpty else { return }
        let batchUnits = units, batchKeys = keyOrder, batchParts = parts
        units = []; keyOrder = []; parts = [:]; rows = 0
        // One copy of the rows into the request's columns: each key's batches, one key after another.
        // The columns' names and types from the first batch (a run writes one dataset's columns).
        let template = batchKeys.lazy.compactMap { batchParts[$0]?.first }.first
        let names = ["Epoch"] + (template?.columns.map(\.name) ?? [])
        var columns = [ColumnValues.int64([])] + (template?.columns.map { $0.values.slice(0..<0) } ?? [])
        var ranges: [WriteDataSet.KeyRange] = []
        for key in batchKeys {
            let start = columns[0].count
            for batch in batchParts[key] ?? [] {
                columns[0].append(contentsOf: .int64(batch.epochs))
                for (i, c) in batch.columns.enumerated() { columns[i + 1].append(contentsOf: c.values) }
            }
            if columns[0].count > start { ranges.append(.init(key: key, start: start, count: columns[0].count - start)) }
        }
        let dataset = try WriteDataSet(names: names, columns: columns, keys: ranges)
        let appends = batchUnits.contains { $0.unit.appending != nil }
        if intentsToCommit {
            try await state.commit(force: true)  // before the first byte of those units
            intentsToCommit = false
        }
        let refused: [String: String]
        do {
            refused = dataset.length == 0 ? [:] : appends ? try await sendAppending(dataset) : try await sendIsolatingKeys(dataset)
        } catch where stop.requested || Task.isCancelled {
            // Stopping, and the request was cut short: its units stay pending for the re-run.
            throw StopRequested()
        } catch {
            for (unit, _) in batchUnits { await fail(unit, "write: \(error)") }
            do {
                try await state.commit(force: true)
            } catch let saveError {
                logger.error("could not save the manifest: \(saveError); the failed units stay pending and are retried")
            }
            throw TargetUnavailable(description: "MarketStore stopped answering: \(error)")
        }
        for (unit, _) in batchUnits { if let reason = refused[unit.key] { await fail(unit, "write: \(reason)") } }
        // MarketStore stores the 1 January row of a 1D bucket where it never reads it back.
        for k in dataset.keys where BucketKey(k.key)?.isDaily == true && refused[k.key] == nil {
            guard case let .int64(epochs) = dataset.columns[0] else { continue }
            let lost = epochs[k.start..<(k.start + k.count)].filter(UTCCalendar.isFirstOfJanuary)
            if !lost.isEmpty {
                unservedRows += lost.count
                logger.warning("\(k.key): \(lost.count) row(s) of 1 January written; MarketStore will not serve them (its 1D buckets lose 1 January)")
            }
        }
        for (unit, outcome) in batchUnits {
            guard let outcome, !failedUnits.contains(unit.id) else { continue }
            let report = outcome.facts
            if let changed = report.anomalies["differs_from_target"] {
                // A re-published archive: its other rows are in, these stay as the target has them.
                await fail(unit, "\(changed) row(s) of the archive differ from the rows of the same ID in \(unit.key) (a re-published archive); "
                    + "nothing was appended for them: `binance-import rebuild` re-imports the key whole")
                continue
            }
            await state.written(unit.id, key: unit.key, outcome.written(listing: unit.listing))
            // The gaps the archive leaves, but for the days a monthly lacks (its repair units'):
            // recorded for `status` and for `gaps: rest` to ask REST about.
            if let step = unit.gapStep {
                let gaps = RepairDays(report.daysLacking).clip(report.gaps, step: step)
                await state.gaps(of: unit.id, gaps.map { GapRecord(key: unit.key, first: $0[0], last: $0[1], state: .unexplained, unit: unit.id) })
            }
            await progress.unitDone(rows: report.rows, anomalies: report.anomalyCount, bytes: report.bytes, adjustments: report.adjustments)
            if spec.deleteArchivesAfterWrite, let path = outcome.archivePath, path.hasPrefix(spec.cacheDirectory) {
                // The rows are written and recorded: a cached archive left behind costs disk only.
                do { try FileManager.default.removeItem(atPath: path) } catch {
                    logger.warning("delete_after_write: \(path) could not be deleted: \(error)")
                }
            }
        }
        try await state.commit()
    }

    /// Sends a request so that one key's failure stays that key's: a key refused for its own
    /// reasons (its bucket's schema, its timeframe) is taken out and the rest sent again; a
    /// refusal that names no key is narrowed by sending each key alone (writes to fixed-length
    /// buckets are idempotent, so keys the server had already written are simply written again).
    /// Returns the refused keys with why; throws only when the target stops answering.
    private func sendIsolatingKeys(_ dataset: WriteDataSet) async throws -> [String: String] {
        var refused: [String: String] = [:]
        var pending = dataset
        while !pending.keys.isEmpty {
            do {
                try await send(pending)
                acknowledged += 1
                counters.acknowledged(pending.keys.map { ($0.key, $0.count) }, at: Date().timeIntervalSince1970)
                return refused
            } catch is CancellationError {
                throw CancellationError()  // a stop: the request's units stay pending, nothing is refused
            } catch let error where Self.stoppedAnswering(error) {
                counters.errorsByKind[.transport, default: 0] += 1
                throw error
            } catch {
                counters.errorsByKind[WriteErrorKind(error), default: 0] += 1
                if let key = Self.refusedKey(error), pending.keys.contains(where: { $0.key == key }) {
                    refused[key] = "\(error)"
                    pending = pending.restricted(to: Set(pending.keys.map(\.key)).subtracting([key]))
                } else if pending.keys.count == 1 {
                    refused[pending.keys[0].key] = "\(error)"
                    refusals += 1
                    return refused
                } else {
                    for k in pending.keys { refused.merge(try await sendIsolatingKeys(pending.restricted(to: [k.key]))) { a, _ in a } }
                    return refused
                }
            }
        }
        return refused
    }

    /// Sends appended rows (one key) once: a request that failed may have been applied in part,
    /// so it is not sent again; its units stay `writing` and the next run reconciles them.
    private func sendAppending(_ dataset: WriteDataSet) async throws -> [String: String] {
        let key = dataset.keys.first?.key ?? ""
        let started = Date().timeIntervalSince1970
        if let inFlight, case let .int64(epochs) = dataset.columns[0], let from = epochs.min(), let to = epochs.max() {
            try inFlight.sending(key: key, .init(from: from, to: to, rows: dataset.length, sentAt: started, slowestAnswer: slowestAnswer))
        }
        do {
            counters.requests += 1
            try await sink.append(dataset)
            inFlight?.answered(key: key)
            slowestAnswer = max(slowestAnswer, Date().timeIntervalSince1970 - started)
            acknowledged += 1
            counters.acknowledged(dataset.keys.map { ($0.key, $0.count) }, at: Date().timeIntervalSince1970)
            return [:]
        } catch is CancellationError {
            throw CancellationError()
        } catch let error where Self.stoppedAnswering(error) {
            counters.errorsByKind[.transport, default: 0] += 1
            throw error
        } catch {
            inFlight?.answered(key: key)  // refused: the server applies nothing of it
            counters.errorsByKind[WriteErrorKind(error), default: 0] += 1
            refusals += 1
            return Dictionary(uniqueKeysWithValues: dataset.keys.map { ($0.key, "\(error)") })
        }
    }

    /// Before the first read-back of `key` this run: when an earlier run sent it a request that was
    /// never answered, waits until that request can have landed (see `InFlightAppends`), then until
    /// two reads of its seconds half a second apart agree, so reconciliation sees all of it.
    private func settle(_ key: String) async throws {
        guard settledKeys.insert(key).inserted, let inFlight, let request = inFlight.pending(key: key) else { return }
        let deadline = request.sentAt + InFlightAppends.settleTime(request, stallSeconds: spec.stallSeconds)
        let wait = deadline - Date().timeIntervalSince1970
        logger.info("\(key): an interrupted run's request (\(request.rows) rows) was never answered; waiting \(wait > 0 ? String(format: "%.1f s", wait) : "no longer") for MarketStore to finish applying it before reading back")
        if wait > 0 { try await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
        let giveUp = Date().timeIntervalSince1970 + Double(spec.stallSeconds)
        var seen = try await sink.records(key: key, from: request.from, to: request.to)?.count
        while Date().timeIntervalSince1970 < giveUp {
            try await Task.sleep(nanoseconds: 500_000_000)
            let now = try await sink.records(key: key, from: request.from, to: request.to)?.count
            if now == seen { break }
            seen = now
        }
        inFlight.answered(key: key)
    }

    /// The rows of `piece` whose ID the target does not hold yet, read back over the seconds the
    /// piece spans; rows found there with other prices or amounts are counted as differing (and
    /// not sent: a second version of a trade is never appended).
    private func missingRows(_ piece: DecodedPiece, idColumn: String) async throws -> RowBatch {
        let batch = piece.batch
        guard let from = batch.epochs.min(), let to = batch.epochs.max(),
              let mine = batch.columns.firstIndex(where: { $0.name == idColumn }), case let .int64(ids) = batch.columns[mine].values else { return batch }
        var present = 0, changed = 0
        var keep: [Int] = []
        if let held = try await sink.records(key: piece.unit.key, from: from, to: to), let theirs = held.names.firstIndex(of: idColumn),
           case let .int64(heldIDs) = held.columns[theirs] {
            var rowOf: [Int64: Int] = [:]
            rowOf.reserveCapacity(heldIDs.count)
            for (row, id) in heldIDs.enumerated() { rowOf[id] = row }
            let compared = batch.columns.compactMap { c in held.names.firstIndex(of: c.name).map { (c.values, held.columns[$0]) } }
            for (row, id) in ids.enumerated() {
                guard let other = rowOf[id] else { keep.append(row); continue }
                present += 1
                if compared.contains(where: { $0.0.double(at: row) != $0.1.double(at: other) }) || held.epochs[other] != batch.epochs[row] { changed += 1 }
            }
        } else {
            keep = Array(ids.indices)
        }
        let counts = reconciled[piece.unit.id] ?? (0, 0)
        reconciled[piece.unit.id] = (counts.present + present, counts.changed + changed)
        if keep.count == batch.count { return batch }
        return RowBatch(epochs: keep.map { batch.epochs[$0] }, columns: batch.columns.map { ($0.name, $0.values.gathered(keep)) })
    }

    /// The key a refusal belongs to, when a key was refused for its own reasons.
    package static func refusedKey(_ error: Error) -> String? {
        switch error {
        case let MarketStoreError.schemaMismatch(key, _, _, _), let MarketStoreModelError.unservableTimeframe(key, _): return key
        case let MarketStoreError.refused(_, keys, _) where keys.count == 1: return keys[0]
        case let DirectoryError.schemaMismatch(key, _, _, _, _), let DirectoryError.badKey(key): return key
        default: return nil
        }
    }

    /// The kind of a refusal, for the error counters.
    /// The target no longer answers (after the retries of `send`): nothing can be said per key.
    package static func stoppedAnswering(_ error: Error) -> Bool {
        if case MarketStoreError.transport = error { return true }
        return false
    }

    /// One request, retried on network errors with backoff (the write is idempotent).
    private func send(_ dataset: WriteDataSet) async throws {
        try await Self.writeRetry.attempts { attempt in
            do {
                counters.requests += 1
                try await sink.write(dataset)
                return .success(())
            } catch let MarketStoreError.transport(e) where !stop.requested {
                logger.warning("write of \(dataset.keys.count) keys failed (attempt \(attempt): \(e))")
                return .retry(wait: nil, failure: MarketStoreError.transport(e))
            }
        }
    }

    /// 0.5, 1, 2, 4 s between five attempts: a MarketStore restart, not a long outage.
    package static let writeRetry = RetryPolicy(maxAttempts: 5, baseDelay: 0.5, maxDelay: 8, jitter: 0)

    /// Follow mode: a unit (a REST day) that failed in a write is written again by a later one.
    package func forgetFailures() { failedUnits.removeAll() }

    private func fail(_ unit: any WorkUnit, _ message: String) async {
        guard failedUnits.insert(unit.id).inserted else { return }
        await state.fail(unit, message, progress: progress, logger: logger, save: false)
    }
}

/// A stop was requested while a write was under way; the units it carried stay pending.
package struct StopRequested: Error {}

extension WriteErrorKind {
    /// The kind of a refused or failed write, for the counters.
    package init(_ error: Error) {
        switch error {
        case MarketStoreError.schemaMismatch: self = .schema
        case MarketStoreModelError.unservableTimeframe: self = .timeframe
        case is DirectoryError: self = .directory
        case MarketStoreError.transport: self = .transport
        default: self = .refused
        }
    }
}
