import BinanceSource
import Columnar
import Foundation
import FuturesArchive
import JobModel
import JobState
import KlineArchive

extension Auditor {
    /// Funding-rate archives against Binance's funding history (`/fapi/v1/fundingRate`,
    /// `/dapi/v1/fundingRate`) for `months` of the job's done monthly archives (spread over
    /// them): every funding's time and rate. (The interval column is derived from REST's times,
    /// as `to: now` does, and not compared: the archives are its source.)
    func compareFundingWithREST(months: Int, manifest: Manifest, client: RestClient) async throws -> [Disagreement] {
        guard months > 0 else { return [] }
        let units = Self.sampledArchives(manifest, months) { FuturesArchiveName(fileName: $0.id) != nil }
        let fetcher = planner.makeFetcher()
        var out: [Disagreement] = []
        for record in units {
            guard let name = FuturesArchiveName(fileName: record.id), name.dataset == .fundingRate,
                  let address = try? FuturesArchiveAddress(market: spec.market, symbol: name.symbol, dataset: .fundingRate, period: name.period),
                  case let .ready(archive) = try await fetcher.fetch(address) else { continue }
            let decoded = try FuturesArchiveDecoder.decode(path: archive.path, market: address.futuresMarket).batch
            let fundings = try await client.fundingRates(symbol: name.symbol, fromMs: name.period.start * 1000, toMs: name.period.end * 1000 - 1)
            var csv = FuturesDataset.fundingRate.header.joined(separator: ",") + "\n"
            for funding in fundings { csv += "\(funding.fundingTime),8,\(funding.rate)\n" }
            let rest = try FuturesArchiveDecoder.decodeCSV(Array(csv.utf8), source: "REST \(name.symbol) \(name.period)", member: "", name: name,
                                                           market: address.futuresMarket).batch
            let rates = { (batch: FuturesBatch) in RowBatch(epochs: batch.epochs, columns: [("Rate", batch.columns[0])]) }
            out += Self.compare(rates(decoded), rates(rest), within: name.period.start..<name.period.end, unit: record.id, names: ("archive", "REST"),
                                other: "REST \(name.period)")
        }
        return out
    }
}
