/// Snappy's block format (github.com/google/snappy, format_description.txt), which MarketStore
/// uses for each interval's variable-length records (github.com/klauspost/compress/snappy).
/// Written by hand: no Swift package here reads or writes it. The decoder reads any block (the
/// server's have back-references); the encoder writes literals only, which every decoder reads:
/// the files are as large as the records, and no compressor's choices need matching.
public enum Snappy {
    public struct Corrupt: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { "not a snappy block: \(reason)" }
    }

    /// A block of one literal run: the uncompressed length as a varint, then literal elements of
    /// at most 65,536 bytes.
    public static func encodeLiterals(_ input: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(input.count + input.count / 65_536 * 3 + 8)
        var n = UInt64(input.count)
        while n >= 0x80 { out.append(UInt8(n & 0x7F) | 0x80); n >>= 7 }
        out.append(UInt8(n))
        var at = 0
        while at < input.count {
            let length = min(65_536, input.count - at)
            let m = length - 1
            if m < 60 {
                out.append(UInt8(m << 2))
            } else if m < 256 {
                out += [60 << 2, UInt8(m)]
            } else {
                out += [61 << 2, UInt8(m & 0xFF), UInt8(m >> 8)]
            }
            out += input[at..<(at + length)]
            at += length
        }
        return out
    }

    public static func decode(_ input: [UInt8]) throws -> [UInt8] {
        var at = 0
        var length = 0, shift = 0
        while true {
            guard at < input.count, shift <= 28 else { throw Corrupt(reason: "bad length preamble") }
            let b = input[at]; at += 1
            length |= Int(b & 0x7F) << shift
            if b < 0x80 { break }
            shift += 7
        }
        var out: [UInt8] = []
        out.reserveCapacity(length)
        func bytes(_ n: Int) throws -> Int {
            guard at + n <= input.count else { throw Corrupt(reason: "truncated element at byte \(at)") }
            var v = 0
            for k in 0..<n { v |= Int(input[at + k]) << (8 * k) }
            at += n
            return v
        }
        while at < input.count {
            let tag = input[at]; at += 1
            switch tag & 3 {
            case 0:  // literal
                var n = Int(tag >> 2)
                if n >= 60 { n = try bytes(n - 59) }
                n += 1
                guard at + n <= input.count, out.count + n <= length else { throw Corrupt(reason: "literal past the end at byte \(at)") }
                out += input[at..<(at + n)]
                at += n
            default:  // copy with a 1-, 2- or 4-byte offset
                let n: Int, offset: Int
                switch tag & 3 {
                case 1: n = 4 + Int((tag >> 2) & 7); offset = (Int(tag >> 5) << 8) | (try bytes(1))
                case 2: n = 1 + Int(tag >> 2); offset = try bytes(2)
                default: n = 1 + Int(tag >> 2); offset = try bytes(4)
                }
                guard offset > 0, offset <= out.count, out.count + n <= length else { throw Corrupt(reason: "copy out of range at byte \(at)") }
                let start = out.count - offset
                for k in 0..<n { out.append(out[start + k]) }  // may overlap its own output
            }
        }
        guard out.count == length else { throw Corrupt(reason: "\(out.count) bytes decoded, the preamble says \(length)") }
        return out
    }
}
