import BinanceSource
import Foundation
import JobMetrics
import JobModel
import JobState
import KlineArchive

extension ImportRunner {
    /// `gaps: rest`: each gap of the job's keys not yet explained is asked of Binance's REST
    /// klines (within the weight budget): klines it has are written as a REST gap unit (the
    /// gap is `filled`); none means the exchange had none (`exchange_gap`: maintenance, a
    /// suspension). Returns the requests made.
    package func explainGaps(keys: Set<String>, of dataset: KlineDataset, state: StateRecorder, writer: Writer) async throws -> Int {
        try await state.commit(force: true)
        let open = try await state.gaps().filter { keys.contains($0.key) && $0.state == .unexplained }
        guard !open.isEmpty else { return 0 }
        let client = spec.restClient()
        let serverTime: Int64
        do {
            serverTime = try await client.serverTime() / 1000
        } catch {
            logger.warning("gaps: REST did not answer (\(error)); \(open.count) gap(s) stay unexplained")
            return await client.counters.requests
        }
        let filler = rest(dataset)
        for var gap in open {
            if stop.requested { break }
            guard let owner = KlineArchiveName(fileName: gap.unit), let step = owner.interval.seconds, gap.last + step <= serverTime,
                  case let day = PeriodPlanner.today(now: gap.first) else { continue }
            let klines: [RestKline]
            do {
                klines = try await client.klines(dataset: dataset, instrument: owner.symbol, interval: owner.interval,
                                                 fromMs: gap.first * 1000, toMs: gap.last * 1000)
            } catch let error as RestError {
                logger.warning("gap \(gap.summary) of \(gap.key): REST: \(error)")
                if case .banned = error { break }
                continue
            }
            let inside = klines.filter {
                let t = RestKline.milliseconds($0.openTime) / 1000
                return t >= gap.first && t <= gap.last && RestKline.milliseconds($0.closeTime) / 1000 < serverTime
            }
            if inside.isEmpty {
                gap.state = .exchangeGap
            } else {
                var fill = try filler.day(symbol: owner.symbol, interval: owner.interval, day: day, key: gap.key)
                fill.gap = gap.first...gap.last
                var csv: [UInt8] = []
                for kline in inside { csv += Array(kline.csvLine.utf8) + [0x0A] }
                let source = "\(spec.restURL)\(RestMarket(spec.market).klinesPath(dataset)) \(owner.symbol) \(owner.interval.name) gap \(gap.summary)"
                do {
                    try await writer.add(try filler.piece(fill, csv: csv, interval: owner.interval, source: source, coveredTo: gap.last, continues: false,
                                                          policy: spec.validation))
                } catch let error as KlineDecodeError {
                    logger.warning("gap \(gap.summary) of \(gap.key): \(error)")
                    continue
                }
                gap.state = .filled
                gap.rows = inside.count
            }
            await state.gapAnswered(gap)
        }
        try await writer.flush()
        return await client.counters.requests
    }
}
