import Foundation
import MarketStoreModel

/// One of N shards of a job, for running it on several machines: a shard takes the symbols whose
/// stable hash (FNV-1a, 64 bits, of the symbol's UTF-8 bytes) modulo N is its index, so each
/// MarketStore key is written by exactly one shard, whatever machine or order runs it. Each shard
/// keeps its own state files (`<name>.shard-K-of-N.manifest.json`, its journal and lock).
public struct Shard: Equatable, Sendable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    /// `K/N` with 0 <= K < N.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]), n >= 1, n <= 10_000, (0..<n).contains(k) else { return nil }
        index = k
        count = n
    }

    public var description: String { "\(index)/\(count)" }

    public func owns(_ symbol: String) -> Bool { Self.index(of: symbol, count: count) == index }

    public static func index(of symbol: String, count: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in symbol.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(count))
    }

    /// The shard's own state file beside the job's: `state/x.manifest.json` -> `state/x.shard-1-of-3.manifest.json`.
    public func manifestPath(_ path: String) -> String {
        let tag = ".shard-\(index)-of-\(count)"
        for suffix in [".manifest.db", ".manifest.json"] where path.hasSuffix(suffix) {
            return String(path.dropLast(suffix.count)) + tag + suffix
        }
        return path + tag
    }
}
