import BinanceSource
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive
import Logging

/// What every dataset's run shares: downloads, decoders and the writer joined by bounded queues,
/// a fetched archive's outcome recorded, the state settled for the job's keys.
extension ImportRunner {
    /// The end of every run: the state saved, the gaps of the job's keys summarized, the state
    /// bound to this run's target and schema once whole, and closed.
    func closeState(keys: Set<String>, binding planned: PlannedBinding, state: StateRecorder, progress: Progress, summary: inout RunSummary) async throws {
        do {
            try await state.commit(force: true)
            for gap in try await state.gaps() where keys.contains(gap.key) {
                summary.gaps[gap.key, default: []].append(gap.summary)
                summary.gapCounts[gap.state.rawValue, default: 0] += 1
            }
        } catch let error as FileWriteError {
            summary.stateError = "\(error)"
        }
        if planned.rebinding, summary.failed == 0, await progress.counts().failed == 0, !stop.requested {
            await state.bind(planned.binding)
            logger.notice("the state now records \(planned.binding)")
        }
        do {
            try await state.close()
        } catch let error as FileWriteError {
            summary.stateError = "\(error)"
        }
    }

    /// Periods with no archive listed, recorded as not published; one already recorded so (with
    /// the same listing fingerprint), done or superseded is left as it is: nothing to write.
    package func recordNotPublished(_ units: [any WorkUnit], index: [String: UnitIndexEntry], state: StateRecorder) async {
        for unit in units {
            let entry = index[unit.id]
            guard entry?.status != .done && entry?.status != .superseded else { continue }
            if entry?.status == .notPublished && entry?.listing == unit.listing { continue }
            await state.notPublished(unit.id, key: unit.key, listing: unit.listing)
        }
    }

    /// Keys that fail as a whole (no archive at all, their listing failed): each of their units
    /// recorded failed with the reason, and counted.
    package func recordFailedKeys(_ keys: [(key: String, reason: String, units: [any WorkUnit])], state: StateRecorder, summary: inout RunSummary) async {
        for failed in keys {
            logger.error("\(failed.key): \(failed.reason)")
            for unit in failed.units { await state.failed(unit.id, key: unit.key, failed.reason) }
            summary.failed += failed.units.count
            summary.failures[failed.key] = failed.reason
        }
    }

    /// The pipeline over units of any dataset, `decode` turning each fetched archive into pieces
    /// (or recording why not).
    package func runPipeline<Unit: WorkUnit>(work: [Unit], fetcher: any ArchiveSource, writer: Writer,
                                             decode: @escaping @Sendable (Unit, Result<FetchResult, Error>, DispatchQueue, BoundedQueue<DecodedPiece>) async -> Void) async throws {
        let archives = BoundedQueue<(Unit, Result<FetchResult, Error>)>(capacity: spec.downloads * 2)
        let pieces = BoundedQueue<DecodedPiece>(capacity: 4)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await fetcher.fetchAll(work, address: \.archive, parallelism: self.spec.downloads, isCancelled: { self.stop.requested }) { unit, result in
                    await archives.send((unit, result))
                }
                archives.finish()
            }
            let decoders = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 4))
            let decodersLeft = Countdown(decoders)
            for lane in 0..<decoders {
                group.addTask {
                    let thread = DispatchQueue(label: "binance-import.decode-\(lane)")
                    while let (unit, result) = await archives.receive() {
                        if self.stop.requested { continue }  // stopping: leave it pending
                        await decode(unit, result, thread, pieces)
                    }
                    if await decodersLeft.done() { pieces.finish() }
                }
            }
            group.addTask {
                do {
                    while let piece = await pieces.receive() { try await writer.add(piece) }
                    try await writer.flush()
                } catch {
                    archives.finish()
                    pieces.finish()
                    throw error
                }
            }
            try await group.waitForAll()
        }
    }

    /// The archive a fetch gave, or nil once its failure or its 404 is recorded. A 404 for a
    /// listed archive is a CDN behind its listing: the listing is forgotten, so the period is
    /// looked at again by the next run.
    package func fetchedArchive(_ unit: any WorkUnit, _ result: Result<FetchResult, Error>, state: StateRecorder, progress: Progress) async -> LocalArchive? {
        switch result {
        case let .failure(error):
            await state.fail(unit, "download: \(error)", progress: progress, logger: logger)
            return nil
        case .success(.notPublished):
            await state.notPublished(unit.id, key: unit.key, listing: nil)
            await progress.notPublished()
            return nil
        case let .success(.ready(archive)):
            if !archive.fromCache { await progress.downloaded() }
            return archive
        }
    }
}

extension StateRecorder {
    /// A unit that failed: logged, recorded (a done unit stays done), counted, and saved at once
    /// unless the caller saves (the writer commits once for a whole failed request).
    package func fail(_ unit: any WorkUnit, _ message: String, progress: Progress, logger: Logger, save: Bool = true) async {
        logger.error("\(unit.id): \(message)")
        await failed(unit.id, key: unit.key, message)
        await progress.failed(unit.id, message)
        guard save else { return }
        do {
            try await commit()
        } catch {
            logger.error("could not save the manifest after \(unit.id) failed: \(error) (the end of the run saves it again)")
        }
    }
}

/// Runs blocking work on `queue`, off Swift's cooperative pool. A serial queue has a thread of
/// its own that it keeps between calls (a thread made per call cost 12,000 thread creations in a
/// run of 9,600 tiny units).
package func onThread<T: Sendable>(_ queue: DispatchQueue, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        queue.async { continuation.resume(with: Result { try body() }) }
    }
}

/// What a unit's decode produced, recorded when its last rows are acknowledged.
package struct UnitOutcome: Sendable {
    /// The archive read (nil for a REST unit), its verified SHA-256.
    package var archivePath: String?
    package var sha256: String?
    package var verified: Bool
    package var facts: UnitFacts
    package var digest: ColumnDigest
    /// A REST unit: the open time of the last closed candle covered.
    package var coveredTo: Int64?
    /// A REST day continued after an earlier run's candles: its rows add to the recorded ones.
    package var continues = false
    /// Rows from `follow`'s live stream: their first and last open time and the step.
    package var streamed: (first: Int64, last: Int64, step: Int64)?

    package init(archive: LocalArchive, facts: UnitFacts, digest: ColumnDigest) {
        (archivePath, sha256, verified) = (archive.path, archive.sha256, archive.verified)
        (self.facts, self.digest) = (facts, digest)
    }

    package init(restFacts facts: UnitFacts, digest: ColumnDigest, coveredTo: Int64) {
        (archivePath, sha256, verified) = (nil, nil, false)
        (self.facts, self.digest, self.coveredTo) = (facts, digest, coveredTo)
    }

    /// What the state records once the unit's rows are acknowledged.
    package func written(listing: String?) -> WrittenUnit {
        var unit = WrittenUnit(archivePath: archivePath, sha256: sha256, listing: listing, verified: verified, coveredTo: coveredTo, continues: continues,
                               rows: facts.rows, firstEpoch: facts.firstEpoch, lastEpoch: facts.lastEpoch, digests: digest.hex,
                               daysLacking: facts.daysLacking, anomalies: facts.anomalies)
        (unit.firstID, unit.lastID, unit.idHoles) = (facts.firstID, facts.lastID, facts.idHoles)
        unit.streamed = streamed
        return unit
    }
}

/// Rows of one unit on their way to the writer; the last piece of a unit carries its outcome.
package struct DecodedPiece: Sendable {
    package var unit: any WorkUnit
    package var batch: RowBatch
    package var outcome: UnitOutcome?

    package init(unit: any WorkUnit, batch: RowBatch, outcome: UnitOutcome?) {
        (self.unit, self.batch, self.outcome) = (unit, batch, outcome)
    }

    package init(unit: any WorkUnit, batch: KlineBatch, outcome: UnitOutcome?) {
        self.init(unit: unit, batch: RowBatch(batch), outcome: outcome)
    }
}

package actor Countdown {
    private var left: Int
    package init(_ n: Int) { left = n }
    package func done() -> Bool {
        left -= 1
        return left == 0
    }
}
