import BinanceSource
import Columnar
import DurableFiles
import Foundation
import FuturesArchive
import JobModel
import JobState
import KlineArchive
import Logging

extension ImportRunner {
    /// `to: now` for funding: each key's months after its archives, from Binance's funding
    /// history (`/fapi/v1/fundingRate`, `/dapi/v1/fundingRate`) up to the server's clock, through
    /// the same decoder and writer as the archives. A month is a unit (`rest/...`) recorded whole
    /// each run (a month is under 1,000 fundings: one request); a month covered to its end is not
    /// asked again, and the monthly archive published later supersedes it.
    ///
    /// REST gives no funding interval: it is the hours since the funding before (each request
    /// starts a day early to have it), as the archives' `funding_interval_hours` is; for a
    /// symbol's first funding, the hours to the next; for a lone one, Binance's default of 8.
    func fillFunding(_ keys: [[FuturesUnit]], state: StateRecorder, writer: Writer, progress: Progress) async throws -> RestOutcome {
        var outcome = RestOutcome()
        let client = spec.restClient()
        outcome.budget = client.budget
        let serverMs: Int64
        do {
            serverMs = try await client.serverTime()
        } catch {
            outcome.stopped = "REST: \(error)"
            outcome.counters = await client.counters
            return outcome
        }
        let serverTime = floorDiv(serverMs, 1000)
        let path = RestMarket(spec.market).fundingRatePath
        for months in keys {
            if stop.requested { break }
            var todo: [FuturesUnit] = []
            for unit in months where unit.address.period.start <= serverTime {
                if let record = await state.record(unit.id), record.status == .done || record.status == .superseded,
                   (record.coveredTo ?? .min) >= unit.address.period.end - 3600 { continue }  // covered to its last hour
                todo.append(unit)
            }
            guard let first = todo.first, let last = todo.last else { continue }
            let symbol = first.address.symbol
            let fundings: [RestFunding]
            do {
                fundings = try await client.fundingRates(symbol: symbol, fromMs: (first.address.period.start - 86400) * 1000,
                                                         toMs: min(serverMs, last.address.period.end * 1000 - 1))
            } catch let error as RestError {
                if case .banned = error {
                    logger.error("\(error)")
                    outcome.stopped = "\(error)"
                    break
                }
                for unit in todo { await state.fail(unit, "REST: \(error)", progress: progress, logger: logger) }
                continue
            }
            let hours = Self.fundingIntervals(fundings.map { floorDiv($0.fundingTime, 3_600_000) })
            for unit in todo {
                let period = unit.address.period
                var csv = FuturesDataset.fundingRate.header.joined(separator: ",") + "\n"
                for (funding, h) in zip(fundings, hours) where (period.start * 1000..<period.end * 1000).contains(funding.fundingTime) {
                    csv += "\(funding.fundingTime),\(h),\(funding.rate)\n"
                }
                let source = "\(spec.restURL)\(path) \(symbol) \(period)"
                do {
                    guard let name = FuturesArchiveName(fileName: unit.address.fileName) else { continue }
                    let (batch, report) = try FuturesArchiveDecoder.decodeCSV(Array(csv.utf8), source: source, member: "", name: name, market: unit.address.futuresMarket)
                    // A month under way has no fundings after now: no gap is made of that.
                    let facts = UnitFacts(report, bytes: UInt64(csv.utf8.count), countingMissingSlots: false)
                    let rows = RowBatch(batch, .fundingRate)
                    var digest = ColumnDigest()
                    digest.add(epochs: rows.epochs, columns: rows.columns)
                    try await writer.add(DecodedPiece(unit: unit, batch: rows, outcome: UnitOutcome(restFacts: facts, digest: digest,
                                                                                                    coveredTo: min(serverTime, period.end - 1))))
                } catch let error as FuturesDecodeError {
                    await state.fail(unit, "\(error)", progress: progress, logger: logger)
                }
            }
        }
        outcome.counters = await client.counters
        return outcome
    }

    /// The interval of each funding (hour numbers since 1970, ascending), as the archives'
    /// column reads (README, "Funding rates"): the hours since the funding before; a step that
    /// is no interval Binance uses (a 3 h step back onto the grid after hourly fundings) the
    /// next one up; a step longer than 8 h (fundings missing from the answer) the interval
    /// before it; the first funding the next one's; a lone one Binance's default of 8.
    package static func fundingIntervals(_ hours: [Int64]) -> [Int64] {
        let used: [Int64] = [1, 2, 4, 8]
        func interval(_ step: Int64) -> Int64? { used.first { $0 >= step && step >= 1 } }
        var out: [Int64] = []
        for i in hours.indices {
            if i > 0, let h = interval(hours[i] - hours[i - 1]) { out.append(h); continue }
            if i > 0, let before = out.last { out.append(before); continue }
            out.append(hours.count > 1 ? interval(hours[1] - hours[0]) ?? 8 : 8)
        }
        return out
    }
}

/// `validation: strict`: a funding-rate or metrics archive with anomalies is not written.
struct StrictValidationFailed: Error, CustomStringConvertible {
    let report: FuturesReport
    var description: String {
        let spans = report.gaps.isEmpty ? "" : " (\(report.gaps.prefix(3).joined(separator: ", "))\(report.gaps.count > 3 ? ", ..." : ""))"
        return "\(report.archive): validation: strict, and the archive has \(report.duplicates) duplicate(s), \(report.missingSlots) missing slot(s)\(spans), "
            + "\(report.emptyValues) empty value(s)"
    }
}
