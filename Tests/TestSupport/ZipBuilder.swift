import CZlib

/// Builds zip archives byte by byte, including the shapes the decoder must handle or refuse:
/// stored and deflated members, data descriptors, zip64 records, wrong CRCs, several members.
public struct ZipBuilder {
    public struct Member {
        public var name: String
        public var data: [UInt8]
        public var method: UInt16 = 8
        public var dataDescriptor = false
        public var zip64 = false
        public var crcOverride: UInt32?
        public var declaredSizeOverride: UInt64?
        /// Bytes appended to the member's data after the deflate stream's end.
        public var trailingBytes: [UInt8] = []

        public init(name: String, data: [UInt8], method: UInt16 = 8, dataDescriptor: Bool = false, zip64: Bool = false,
                    crcOverride: UInt32? = nil, declaredSizeOverride: UInt64? = nil, trailingBytes: [UInt8] = []) {
            self.name = name
            self.data = data
            self.method = method
            self.dataDescriptor = dataDescriptor
            self.zip64 = zip64
            self.crcOverride = crcOverride
            self.declaredSizeOverride = declaredSizeOverride
            self.trailingBytes = trailingBytes
        }
    }

    public var members: [Member] = []

    public init(members: [Member]) { self.members = members }

    public static func single(_ name: String, _ csv: String, method: UInt16 = 8, dataDescriptor: Bool = false, zip64: Bool = false) -> [UInt8] {
        ZipBuilder(members: [Member(name: name, data: Array(csv.utf8), method: method, dataDescriptor: dataDescriptor, zip64: zip64)]).bytes()
    }

    public func bytes() -> [UInt8] {
        var out: [UInt8] = []
        var central: [UInt8] = []
        for m in members {
            let crc = m.crcOverride ?? UInt32(m.data.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) })
            let payload = (m.method == 8 ? deflateRaw(m.data) : m.data) + m.trailingBytes
            let usize = m.declaredSizeOverride ?? UInt64(m.data.count)
            let csize = UInt64(payload.count)
            let offset = UInt64(out.count)
            let name = Array(m.name.utf8)
            let flags: UInt16 = m.dataDescriptor ? 8 : 0
            // Local header.
            var extra: [UInt8] = []
            if m.zip64 { extra = le(UInt16(1)) + le(UInt16(16)) + le(usize) + le(csize) }
            out += le(UInt32(0x0403_4b50)) + le(UInt16(m.zip64 ? 45 : 20)) + le(flags) + le(m.method) + le(UInt32(0))
            if m.dataDescriptor {
                out += le(UInt32(0)) + le(UInt32(0)) + le(UInt32(0))
            } else {
                out += le(crc) + le(m.zip64 ? UInt32.max : UInt32(csize)) + le(m.zip64 ? UInt32.max : UInt32(usize))
            }
            out += le(UInt16(name.count)) + le(UInt16(extra.count)) + name + extra + payload
            if m.dataDescriptor {
                out += le(UInt32(0x0807_4b50)) + le(crc)
                out += m.zip64 ? le(csize) + le(usize) : le(UInt32(csize)) + le(UInt32(usize))
            }
            // Central directory entry.
            var cextra: [UInt8] = []
            if m.zip64 { cextra = le(UInt16(1)) + le(UInt16(24)) + le(usize) + le(csize) + le(offset) }
            central += le(UInt32(0x0201_4b50)) + le(UInt16(0x031E)) + le(UInt16(m.zip64 ? 45 : 20)) + le(flags) + le(m.method)
            central += le(UInt32(0)) + le(crc)
            central += m.zip64 ? le(UInt32.max) + le(UInt32.max) : le(UInt32(csize)) + le(UInt32(usize))
            central += le(UInt16(name.count)) + le(UInt16(cextra.count)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(0))
            central += le(UInt32(0o100644 << 16)) + le(m.zip64 ? UInt32.max : UInt32(offset)) + name + cextra
        }
        let cdOffset = UInt64(out.count)
        out += central
        let anyZip64 = members.contains(where: \.zip64)
        if anyZip64 {
            let rec64 = UInt64(out.count)
            out += le(UInt32(0x0606_4b50)) + le(UInt64(44)) + le(UInt16(45)) + le(UInt16(45)) + le(UInt32(0)) + le(UInt32(0))
            out += le(UInt64(members.count)) + le(UInt64(members.count)) + le(UInt64(central.count)) + le(cdOffset)
            out += le(UInt32(0x0706_4b50)) + le(UInt32(0)) + le(rec64) + le(UInt32(1))
        }
        out += le(UInt32(0x0605_4b50)) + le(UInt16(0)) + le(UInt16(0))
        out += le(anyZip64 ? UInt16.max : UInt16(members.count)) + le(anyZip64 ? UInt16.max : UInt16(members.count))
        out += le(anyZip64 ? UInt32.max : UInt32(central.count)) + le(anyZip64 ? UInt32.max : UInt32(cdOffset)) + le(UInt16(0))
        return out
    }

    func deflateRaw(_ data: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        precondition(deflateInit2_(&stream, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK)
        defer { deflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(data.count))) + 64)
        var input = data
        let produced = input.withUnsafeMutableBufferPointer { inp -> Int in
            out.withUnsafeMutableBufferPointer { o -> Int in
                stream.next_in = inp.baseAddress
                stream.avail_in = UInt32(inp.count)
                stream.next_out = o.baseAddress
                stream.avail_out = UInt32(o.count)
                precondition(deflate(&stream, Z_FINISH) == Z_STREAM_END)
                return o.count - Int(stream.avail_out)
            }
        }
        return Array(out.prefix(produced))
    }
}

public func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

/// Hostile zips: a valid zip64 (or plain) archive with one field overwritten, as an attacker or a
/// broken writer would, with the message the reader must answer.
public enum CraftedZips {
    public static func cases(_ name: String, _ csv: String) -> [(label: String, bytes: [UInt8], message: String)] {
        let zip64 = ZipBuilder.single(name, csv, zip64: true)
        let plain = ZipBuilder.single(name, csv)
        let nameLength = name.utf8.count
        // zip64 layout from the end: EOCD (22), locator (20), zip64 record (56).
        let record = zip64.count - 22 - 20 - 56, locator = zip64.count - 22 - 20
        let cdOffset = Int(readLE64(zip64, record + 48))
        let centralExtra = cdOffset + 46 + nameLength + 4  // usize, csize, offset
        let localExtra = 30 + nameLength + 4  // usize, csize
        func patched(_ base: [UInt8], _ edits: [(Int, UInt64)]) -> [UInt8] {
            var b = base
            for (at, value) in edits { b.replaceSubrange(at..<(at + 8), with: le(value)) }
            return b
        }
        var plainLocal = plain
        plainLocal.replaceSubrange(22..<26, with: le(UInt32(csv.utf8.count - 1)))  // local inflated size
        return [
            ("inflated size 2^64-1", patched(zip64, [(centralExtra, .max)]), "refused as a zip bomb"),
            ("compressed size near 2^64", patched(zip64, [(centralExtra + 8, .max - 8)]), "data runs past the end of the file"),
            ("local header offset past 2^63", patched(zip64, [(centralExtra + 16, 1 << 63 + 5)]), "lies outside the file"),
            ("local header offset 2^64-1", patched(zip64, [(centralExtra + 16, .max)]), "lies outside the file"),
            ("directory offset + size wraps", patched(zip64, [(record + 40, 100), (record + 48, .max - 10)]), "lies outside the file"),
            ("directory offset 2^63", patched(zip64, [(record + 48, 1 << 63)]), "lies outside the file"),
            ("directory size 2^64-1", patched(zip64, [(record + 40, .max)]), "lies outside the file"),
            ("zip64 record offset 2^64-1", patched(zip64, [(locator + 8, .max)]), "lies outside the file"),
            ("zip64 record offset 2^63", patched(zip64, [(locator + 8, 1 << 63)]), "lies outside the file"),
            ("local compressed size differs (zip64)", patched(zip64, [(localExtra + 8, 5)]), "local header says 5 compressed"),
            ("local inflated size differs", plainLocal, "local header says"),
        ]
    }

    static func readLE64(_ b: [UInt8], _ i: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[i + $1]) << (8 * $1) } }
}
