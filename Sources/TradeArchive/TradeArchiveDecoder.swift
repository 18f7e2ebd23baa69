import Foundation
import KlineArchive

/// Decodes a trades or aggTrades archive as it inflates: the member streams through a fixed
/// buffer into `TradeCSVParser`, which hands out chunks of `chunkRows` rows, so a monthly archive
/// of gigabytes decodes in the memory of one chunk.
public enum TradeArchiveDecoder {
    /// The inflated size allowed per compressed byte (real trade CSVs inflate 3-5 times): a bound
    /// against zip bombs that no real archive reaches.
    static let maxInflateRatio: UInt64 = 100

    // Specialized here for both widths: callers in other modules get the specialized code, not
    // the generic one (measured 1.35x the kline parser's time per row without it).
    @_specialize(exported: true, where F == Double)
    @_specialize(exported: true, where F == Float)
    public static func decode<F: KlineFloat>(path: String, market: TradeMarket, as: F.Type = F.self, chunkRows: Int = 100_000,
                                             inflater: InflateEngine = .isal, rowKernel: Bool = true, onChunk: @escaping (TradeBatch<F>) throws -> Void) throws -> TradeReport {
        guard let name = TradeArchiveName(fileName: path) else {
            throw TradeDecodeError.notTrades(archive: path, reason: "not a trades or aggTrades archive name (SYMBOL-trades-YYYY-MM[-DD].zip, SYMBOL-aggTrades-YYYY-MM[-DD].zip)")
        }
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
        do {
            let reader = try ZipEntryReader(path: path, maxInflatedSize: (1 << 20) + size * maxInflateRatio, engine: inflater)
            let parser = TradeCSVParser<F>(layout: TradeLayout(dataset: name.dataset, market: market), source: path, member: reader.member.name,
                                           name: name, chunkRows: chunkRows, rowKernel: rowKernel, onChunk: onChunk)
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = try buffer.withUnsafeMutableBufferPointer { try reader.read(into: $0.baseAddress!, capacity: $0.count) }
                if n == 0 { break }
                try buffer.withUnsafeBytes { try parser.feed(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            }
            return try parser.finish()
        } catch let e as ZipError {
            throw TradeDecodeError.zip(e)
        }
    }
}
