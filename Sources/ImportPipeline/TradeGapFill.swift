import BinanceSource
import Columnar
import Foundation
import JobModel
import JobState
import KlineArchive
import MarketStoreModel
import TradeArchive

/// Where trades come from by ID (Binance's REST; a fake in tests).
package protocol TradeHistory: Sendable {
    func tradeLines(dataset: TradeDataset, symbol: String, fromID: Int64, toID: Int64) async throws -> [String]
}

extension RestClient: TradeHistory {}

/// IDs of a trades key that no archive holds, fetched from REST (`gaps: rest`): its id is
/// `rest/gap/<market>/<dataset>/<SYMBOL>#FIRST-LAST`. Its rows append like an archive's,
/// always reconciled (a fill asked again after a crash writes only what is missing).
package struct RestTradeUnit: WorkUnit {
    package var key: String
    package var symbol: String
    package var address: TradeArchiveAddress
    package var first: Int64
    package var last: Int64
    package var idColumn: String

    package var id: String { Self.prefix(address.market, address.dataset, symbol) + "\(first)-\(last)" }
    package var listing: String? { nil }
    package var archive: any PublishedArchive { address }
    package var gapStep: Int64? { nil }
    package var appending: Appending? { Appending(idColumn: idColumn, reconcile: true) }

    /// The ids of a key's REST units start so.
    package static func prefix(_ market: Market, _ dataset: TradeDataset, _ symbol: String) -> String {
        "rest/gap/\(market.rawValue)/\(dataset.rawValue)/\(symbol)#"
    }
}

extension ImportRunner {
    /// `to: now`: each key continues from its last ID (archives and fills alike) to the present,
    /// `restUnitIDs` IDs a unit, until REST answers fewer (the present). Archives published later
    /// over those IDs are reconciled against them. Returns the trades written.
    func continueTradesToNow(keys: [String], dataset: TradesDataset, history: any TradeHistory, state: StateRecorder, writer: Writer,
                             progress: Progress) async throws -> Int {
        var written = 0
        // Every key's done units in one pass over the state (not one pass a key).
        let byKey = Dictionary(grouping: await doneRecords(keys: Set(keys), state: state), by: \.key)
        for key in keys {
            guard let symbol = BucketKey(key)?.symbol else { continue }
            let records = byKey[key] ?? []
            guard var last = records.compactMap(\.lastID).max(), var second = records.compactMap(\.lastEpoch).max() else { continue }
            while !stop.requested {
                let lines = try await history.tradeLines(dataset: dataset.archives, symbol: symbol, fromID: last + 1, toID: last + Self.restUnitIDs)
                guard let lastLine = lines.last, let lastID = Int64(lastLine.prefix { $0 != "," }) else { break }
                let c = UTCCalendar.civil(second)
                guard let day = ArchivePeriod(year: c.year, month: c.month, day: c.day) else { break }
                let unit = RestTradeUnit(key: key, symbol: symbol, address: try TradeArchiveAddress(market: spec.market, symbol: symbol, dataset: dataset.archives, period: day),
                                         first: last + 1, last: lastID, idColumn: dataset.idColumn)
                guard let name = TradeArchiveName(fileName: unit.address.fileName) else { break }
                await progress.add(units: 1)
                var pieces: [DecodedPiece] = []
                let report = try TradePieces.decode(unit, lines: lines, name: name, market: TradeMarket(spec.market), floatType: spec.floatType,
                                                    chunkRows: spec.chunkRows) { pieces.append($0) }
                for piece in pieces { try await writer.add(piece) }
                written += lines.count
                last = lastID
                second = report.lastMicros.map { floorDiv($0, 1_000_000) } ?? second
                if lines.count < Self.restUnitIDs { break }  // a short answer: the present
            }
        }
        try await writer.flush()
        return written
    }

    /// Asks REST for each range of IDs missing in the job's keys and writes what it answers.
    /// Returns how many ranges were asked and how many IDs came back.
    static var restUnitIDs: Int64 { 100_000 }

    func fillTradeHoles(_ missing: [String: [TradeContinuity.Missing]], dataset: TradesDataset, history: any TradeHistory, state: StateRecorder,
                        writer: Writer, progress: Progress) async throws -> (asked: Int, rows: Int) {
        var asked = 0, rows = 0
        for (key, holes) in missing.sorted(by: { $0.key < $1.key }) {
            guard let symbol = BucketKey(key)?.symbol else { continue }
            // At most `restUnitIDs` IDs a unit: its rows are held in memory between REST and the writer.
            let ranges = holes.flatMap { hole in
                stride(from: hole.first, through: hole.last, by: Int(Self.restUnitIDs)).map { start -> TradeContinuity.Missing in
                    var part = hole
                    (part.first, part.last) = (start, min(hole.last, start + Self.restUnitIDs - 1))
                    return part
                }
            }
            for hole in ranges {
                if stop.requested { return (asked, rows) }
                let c = UTCCalendar.civil(hole.after.second ?? hole.before.second ?? 0)
                guard let day = ArchivePeriod(year: c.year, month: c.month, day: c.day) else { continue }
                let unit = RestTradeUnit(key: key, symbol: symbol, address: try TradeArchiveAddress(market: spec.market, symbol: symbol, dataset: dataset.archives, period: day),
                                         first: hole.first, last: hole.last, idColumn: dataset.idColumn)
                asked += 1
                do {
                    let lines = try await history.tradeLines(dataset: dataset.archives, symbol: symbol, fromID: hole.first, toID: hole.last)
                    guard !lines.isEmpty else {
                        logger.warning("\(key): REST has none of IDs \(hole.first)..\(hole.last); they stay missing")
                        continue
                    }
                    guard let name = TradeArchiveName(fileName: unit.address.fileName) else { continue }
                    await progress.add(units: 1)
                    var pieces: [DecodedPiece] = []
                    _ = try TradePieces.decode(unit, lines: lines, name: name, market: TradeMarket(spec.market), floatType: spec.floatType,
                                               chunkRows: spec.chunkRows) { pieces.append($0) }
                    for piece in pieces { try await writer.add(piece) }
                    rows += lines.count
                } catch let error as RestError {
                    await state.fail(unit, "REST: \(error)", progress: progress, logger: logger)
                    if case .banned = error { return (asked, rows) }
                }
            }
        }
        try await writer.flush()
        return (asked, rows)
    }
}
