import BinanceSource
import Columnar
import DurableFiles
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive
import Logging
import MarketStoreModel

/// What the REST work of a run did.
package struct RestOutcome: Sendable {
    package var counters = RestCounters()
    package var budget = 0
    /// Why all REST work stopped (a 418 ban, no server time), when it did.
    package var stopped: String?
}

extension RunSummary {
    /// The REST work's figures, as the summary and the report give them.
    package mutating func record(_ outcome: RestOutcome) {
        restRequests = outcome.counters.requests
        restWeight = outcome.counters.weight
        restMaxUsedWeight1m = outcome.counters.maxUsedWeight
        restWeightBudget = outcome.budget
        restBudgetWaits = outcome.counters.budgetWaits
        restRateLimited = outcome.counters.rateLimited
        restStopped = outcome.stopped
    }
}

/// `to: now`: each key's days after its archives, from Binance's REST klines up to the last
/// closed candle by the server's clock, through the same writer as the archives. A day is a
/// unit (`rest/...`) that records the last closed open time it covers; a later run asks only
/// for the candles after it (the day's rows and digest add up, see `ColumnDigest`), and a
/// published archive supersedes the day. `follow` fills its gaps with it too.
package struct RestFiller: Sendable {
    let spec: JobSpec
    /// The klines asked (klines, or mark, index or premium index price klines).
    let dataset: KlineDataset
    let stop: StopRequest
    let logger: Logger

    package init(spec: JobSpec, dataset: KlineDataset, stop: StopRequest, logger: Logger) {
        self.spec = spec
        self.dataset = dataset
        self.stop = stop
        self.logger = logger
    }

    /// `client`: a long-running caller (follow) passes its own, so the weight used in a minute is
    /// counted across its fills; the counters returned are the client's, since it was made.
    package func fill(_ edges: [RestEdge], client given: RestClient? = nil, state: StateRecorder, writer: Writer, progress: Progress) async throws -> RestOutcome {
        var outcome = RestOutcome()
        guard !edges.isEmpty else { return outcome }
        let client = given ?? spec.restClient()
        outcome.budget = client.budget
        let serverTime: Int64
        do {
            serverTime = try await client.serverTime()
        } catch {
            outcome.stopped = "REST: \(error)"
            outcome.counters = await client.counters
            return outcome
        }
        for edge in edges {
            if stop.requested { break }
            guard let step = edge.interval.seconds else { continue }
            // Only closed candles: open time t is closed once t + step is not after server time.
            let lastClosedOpen = (serverTime / 1000 / step) * step - step
            var todo = edge.days[...]
            while let day = todo.first, let record = await state.record(day.id), record.status == .done || record.status == .superseded,
                  (record.coveredTo ?? .min) >= day.address.period.end - step {
                todo = todo.dropFirst()
            }
            guard let first = todo.first, first.address.period.start <= lastClosedOpen else { continue }
            // A day covered in part by an earlier run continues after its last covered candle.
            var resumeAfter: Int64?
            if let record = await state.record(first.id), record.status == .done, let covered = record.coveredTo {
                guard covered < lastClosedOpen else { continue }  // no new candle has closed
                resumeAfter = covered
            }
            let klines: [RestKline]
            do {
                klines = try await client.klines(dataset: dataset, instrument: edge.symbol, interval: edge.interval,
                                                 fromMs: (resumeAfter.map { $0 + step } ?? first.address.period.start) * 1000,
                                                 toMs: lastClosedOpen * 1000)
            } catch let error as RestError {
                if case .banned = error {
                    logger.error("\(error)")
                    outcome.stopped = "\(error)"
                    break
                }
                for day in todo where day.address.period.start <= lastClosedOpen {
                    await state.fail(day, "REST: \(error)", progress: progress, logger: logger)
                }
                continue
            }
            // CSV lines per UTC day, closed candles only (µs times, when sent, read as such).
            var byDay: [Int64: [UInt8]] = [:]
            for k in klines {
                guard RestKline.milliseconds(k.closeTime) < serverTime else { continue }  // still open: never written
                byDay[floorDiv(RestKline.milliseconds(k.openTime), 86_400_000), default: []] += Array(k.csvLine.utf8) + [0x0A]
            }
            for day in todo {
                let start = day.address.period.start
                guard start <= lastClosedOpen else { break }
                let source = "\(spec.restURL)\(RestMarket(spec.market).klinesPath(dataset)) \(edge.symbol) \(edge.interval.name) \(day.address.period)"
                do {
                    try await writer.add(try piece(day, csv: byDay[start / 86400] ?? [], interval: edge.interval, source: source,
                                                       coveredTo: min(day.address.period.end - step, lastClosedOpen),
                                                       continues: day.id == first.id && resumeAfter != nil, policy: spec.validation))
                } catch let error as KlineDecodeError {
                    await state.fail(day, "\(error)", progress: progress, logger: logger)
                }
            }
        }
        outcome.counters = await client.counters
        return outcome
    }

    /// A REST day's unit: the daily archive's address, the `rest/` id.
    package func day(symbol: String, interval: KlineInterval, day: ArchivePeriod, key: String) throws -> PlannedUnit {
        var unit = PlannedUnit(address: try ArchiveAddress(market: spec.market, symbol: symbol, interval: interval, period: day, dataset: dataset), key: key)
        unit.fromREST = true
        return unit
    }

    /// REST or stream klines of one day (CSV lines) as a piece for the writer: parsed like an
    /// archive, digested, and carrying the day's coverage; `continues` adds them to the rows the
    /// day already has.
    /// `streamed`: the rows came from the live stream (`follow`), said in the unit's provenance.
    package func piece(_ day: PlannedUnit, csv: [UInt8], interval: KlineInterval, source: String, coveredTo: Int64, continues: Bool,
                   policy: ValidationPolicy, streamed: Bool = false) throws -> DecodedPiece {
        let options = KlineDecodeOptions(interval: interval, period: nil, columns: spec.columns, floatType: spec.floatType, policy: policy)
        let (batch, report) = try KlineArchiveDecoder.decodeCSV(csv, source: source, options: options)
        var digest = ColumnDigest()
        digest.add(batch)
        var outcome = UnitOutcome(restFacts: UnitFacts(report), digest: digest, coveredTo: coveredTo)
        outcome.continues = continues
        if streamed, let first = batch.epochs.min(), let last = batch.epochs.max(), let step = interval.seconds { outcome.streamed = (first, last, step) }
        return DecodedPiece(unit: day, batch: batch.count > 0 ? batch : spec.emptyBatch(), outcome: outcome)
    }

    /// REST days now covered by a done daily or monthly archive: superseded (the archive's rows
    /// overwrote the same slots).
    package static func supersedeDays(state: StateRecorder) async -> Int {
        let index = await state.index()
        var count = 0
        for (id, entry) in index where entry.status == .done && id.hasPrefix("rest/") {
            let daily = "data/" + id.dropFirst("rest/".count)
            let monthly = UnitRecord.monthlyID(ofDaily: daily)
            guard index[daily]?.status == .done || monthly.map({ index[$0]?.status == .done }) == true else { continue }
            await state.superseded(id)
            count += 1
        }
        return count
    }
}

extension ImportRunner {
    /// The job's REST work (`to: now`, gap fills) for klines of `dataset`.
    package func rest(_ dataset: KlineDataset) -> RestFiller { RestFiller(spec: spec, dataset: dataset, stop: stop, logger: logger) }
}

extension JobSpec {
    /// The REST client of a job: its base URL and its share of the weight limit.
    package func restClient() -> RestClient {
        RestClient(baseURL: restURL, market: market, weightLimit: restWeightLimit, share: restWeightShare)
    }
}
