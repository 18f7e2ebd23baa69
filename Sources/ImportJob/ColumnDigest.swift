import Columnar
import KlineArchive

/// A per-column digest of rows that does not depend on their order: the wrapping sum over rows of
/// FNV-1a 64 of (epoch, value) bytes. `verify` computes it from what the target returns and
/// compares it with the manifest's, column by column.
public struct ColumnDigest: Equatable, Sendable {
    public private(set) var sums: [String: UInt64] = [:]
    public private(set) var rows = 0

    public init() {}

    @inline(__always)
    static func fnv(_ epoch: Int64, _ value: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        withUnsafeBytes(of: epoch.littleEndian) { for b in $0 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 } }
        for b in value { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        return h
    }

    /// Adds rows: epochs plus named columns.
    public mutating func add(epochs: [Int64], columns: [(name: String, values: ColumnValues)]) {
        rows += epochs.count
        var epochSum = sums["Epoch", default: 0]
        for e in epochs { withUnsafeBytes(of: e) { epochSum &+= Self.fnv(e, $0) } }
        sums["Epoch"] = epochSum
        for (name, values) in columns {
            var sum = sums[name, default: 0]
            values.withUnsafeBytes { raw in
                let width = raw.count / max(1, epochs.count)
                for (i, e) in epochs.enumerated() {
                    sum &+= Self.fnv(e, UnsafeRawBufferPointer(rebasing: raw[(i * width)..<((i + 1) * width)]))
                }
            }
            sums[name] = sum
        }
    }

    public mutating func add(_ batch: KlineBatch) {
        add(epochs: batch.epochs, columns: batch.columns.map { ($0.column.rawValue, $0.values) })
    }

    /// As hex strings, for the manifest.
    public var hex: [String: String] { sums.mapValues { String($0, radix: 16) } }
}
