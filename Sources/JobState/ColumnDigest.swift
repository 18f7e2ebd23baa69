import Columnar
import DurableFiles
import Foundation
import JobModel

/// A per-column digest of rows that does not depend on their order: the wrapping sum over rows of
/// a 64-bit mix of (epoch, the value's bits). `verify` computes it from what the target returns and
/// compares it with the manifest's, column by column.
///
/// The manifest stores it as `m1:<hex>`; values without that tag come from an earlier version
/// (FNV-1a over bytes, which cost a tenth of the importer's CPU) and are not compared.
public struct ColumnDigest: Equatable, Sendable {
    public static let tag = "m1:"
    public private(set) var sums: [String: UInt64] = [:]
    public private(set) var rows = 0

    public init() {}

    /// SplitMix64's finalizer over the epoch (times an odd constant, so distinct epochs stay
    /// distinct) xor the value's bits: a bijection in each argument when the other is fixed.
    @inline(__always)
    package static func mix(_ epoch: Int64, _ bits: UInt64) -> UInt64 {
        var z = (UInt64(bitPattern: epoch) &* 0x9E37_79B9_7F4A_7C15) ^ bits
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Adds rows: epochs plus named columns of the same length.
    public mutating func add(epochs: [Int64], columns: [(name: String, values: ColumnValues)]) {
        rows += epochs.count
        var epochSum: UInt64 = 0
        for e in epochs { epochSum &+= Self.mix(e, 0) }
        sums["Epoch", default: 0] &+= epochSum
        for (name, values) in columns {
            var sum: UInt64 = 0
            switch values {
            case let .float32(v):
                for i in 0..<min(v.count, epochs.count) { sum &+= Self.mix(epochs[i], UInt64(v[i].bitPattern)) }
            case let .float64(v):
                for i in 0..<min(v.count, epochs.count) { sum &+= Self.mix(epochs[i], v[i].bitPattern) }
            case let .int64(v):
                for i in 0..<min(v.count, epochs.count) { sum &+= Self.mix(epochs[i], UInt64(bitPattern: v[i])) }
            case let .int32(v):
                for i in 0..<min(v.count, epochs.count) { sum &+= Self.mix(epochs[i], UInt64(UInt32(bitPattern: v[i]))) }
            case let .int8(v):
                for i in 0..<min(v.count, epochs.count) { sum &+= Self.mix(epochs[i], UInt64(UInt8(bitPattern: v[i]))) }
            case let .uint8(v):  // an i1 column read back (typed u1): the same bits, the same digest
                for i in 0..<min(v.count, epochs.count) { sum &+= Self.mix(epochs[i], UInt64(v[i])) }
            }
            sums[name, default: 0] &+= sum
        }
    }

    /// As tagged hex strings, for the manifest.
    public var hex: [String: String] { sums.mapValues { Self.tag + String($0, radix: 16) } }

    /// The digest of two disjoint sets of rows, from their tagged hex strings (the sums add).
    /// Columns recorded by an earlier version (untagged) cannot be added to: nil for the whole.
    public static func adding(_ more: [String: String], to recorded: [String: String]?) -> [String: String]? {
        guard let recorded else { return more }
        var out: [String: String] = [:]
        for name in Set(more.keys).union(recorded.keys) {
            func sum(_ text: String?) -> UInt64? {
                guard let text else { return 0 }
                guard text.hasPrefix(tag) else { return nil }
                return UInt64(text.dropFirst(tag.count), radix: 16)
            }
            guard let a = sum(recorded[name]), let b = sum(more[name]) else { return nil }
            out[name] = tag + String(a &+ b, radix: 16)
        }
        return out
    }
}
