/// Seeded, repeatable mutations of a CSV file's bytes (removals, insertions from the bytes kline
/// and trade rows are made of, random bytes, repeated runs), shared by the decoders' mutation tests.
public struct SeededMutations {
    private var seed: UInt64
    private static let alphabet = Array("0123456789.,-+eETtrueFalsfx\r\n ".utf8)

    public init(seed: UInt64) { self.seed = seed }

    /// A number in 0..<bound (0 when bound < 1).
    public mutating func next(_ bound: Int) -> Int {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        return Int((seed >> 33) % UInt64(max(1, bound)))
    }

    /// `bytes` with 1 to `most` mutations.
    public mutating func mutate(_ bytes: inout [UInt8], most: Int) {
        for _ in 0...next(most) {
            let at = next(bytes.count + 1)
            switch next(4) {
            case 0 where at < bytes.count: bytes.remove(at: at)
            case 1: bytes.insert(Self.alphabet[next(Self.alphabet.count)], at: at)
            case 2 where at < bytes.count: bytes[at] = UInt8(truncatingIfNeeded: next(256))
            default: bytes.insert(contentsOf: bytes[at...].prefix(next(40)), at: at)
            }
        }
    }
}
