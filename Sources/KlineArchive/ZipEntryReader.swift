#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors of the zip layer. Each names the archive.
public enum ZipError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(archive: String, reason: String)
    case notAZip(archive: String, reason: String)
    case notSingleCSV(archive: String, members: [String])
    case unsupported(archive: String, member: String, reason: String)
    case corrupt(archive: String, member: String, reason: String)
    case tooLarge(archive: String, member: String, limit: UInt64, size: UInt64)
    case io(archive: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(a, r): return "\(a): cannot open archive: \(r)"
        case let .notAZip(a, r): return "\(a): not a zip archive (or truncated): \(r)"
        case let .notSingleCSV(a, m):
            return "\(a): expected exactly one .csv member, found \(m.count): \(m.joined(separator: ", "))"
        case let .unsupported(a, m, r): return "\(a): member \(m): \(r)"
        case let .corrupt(a, m, r): return "\(a): member \(m) is corrupt: \(r)"
        case let .tooLarge(a, m, l, s):
            return "\(a): member \(m) inflates to more than \(l) bytes (\(s) so far); refused as a zip bomb"
        case let .io(a, r): return "\(a): read error: \(r)"
        }
    }
}

/// The one member of a kline archive, as listed by the central directory.
public struct ZipMember: Sendable {
    public let name: String
    public let method: UInt16
    public let flags: UInt16
    public let crc32: UInt32
    public let compressedSize: UInt64
    public let uncompressedSize: UInt64
    public let localHeaderOffset: UInt64
}

/// Reads the single CSV member of a zip archive as a stream: bytes are inflated through fixed-size
/// buffers, so memory does not grow with the archive. CRC-32 and sizes are verified at the end, and
/// the inflated size is capped (`maxInflatedSize`) to refuse zip bombs.
public final class ZipEntryReader {
    public let archivePath: String
    public let member: ZipMember
    public let maxInflatedSize: UInt64
    public let engine: InflateEngine

    private let fd: Int32
    private let fileSize: UInt64
    private var dataOffset: UInt64 = 0
    private var compressedRead: UInt64 = 0
    private var produced: UInt64 = 0
    private var crc: UInt32 = 0
    private var finished = false
    private var inflater: RawInflater?
    private var streamEnded = false
    private let input: UnsafeMutablePointer<UInt8>
    private static let inputCapacity = 1 << 16

    /// Opens `path`, reads its central directory and checks that it holds exactly one `.csv` member.
    public init(path: String, maxInflatedSize: UInt64 = .max, engine: InflateEngine = .isal) throws {
        archivePath = path
        self.maxInflatedSize = maxInflatedSize
        self.engine = engine
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ZipError.cannotOpen(archive: path, reason: String(cString: strerror(errno))) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            close(fd)
            throw ZipError.cannotOpen(archive: path, reason: String(cString: strerror(errno)))
        }
        fileSize = UInt64(st.st_size)
        do {
            member = try ZipEntryReader.readCentralDirectory(fd: fd, fileSize: fileSize, path: path)
        } catch {
            close(fd)
            throw error
        }
        input = .allocate(capacity: ZipEntryReader.inputCapacity)
        // From here on, deinit releases the descriptor, the buffer and the inflater.
        try openMember()
    }

    deinit {
        input.deallocate()
        close(fd)
    }

    /// Bytes inflated so far.
    public var bytesProduced: UInt64 { produced }

    /// Fills `buffer` with up to `capacity` inflated bytes; returns 0 at the end of the member, after
    /// the CRC-32 and sizes were verified.
    public func read(into buffer: UnsafeMutablePointer<UInt8>, capacity: Int) throws -> Int {
        if finished || capacity == 0 { return 0 }
        var n = 0
        switch member.method {
        case 0: n = try readStored(into: buffer, capacity: capacity)
        default: n = try readDeflated(into: buffer, capacity: capacity)
        }
        if n > 0 {
            crc = engine.crc32(crc, buffer, count: n)
            produced += UInt64(n)
            if produced > maxInflatedSize {
                throw ZipError.tooLarge(archive: archivePath, member: member.name, limit: maxInflatedSize, size: produced)
            }
            if produced > member.uncompressedSize {
                throw corrupt("inflates past its declared size of \(member.uncompressedSize) bytes")
            }
            return n
        }
        try verifyEnd()
        finished = true
        return 0
    }

    // MARK: - Member data

    private func readStored(into buffer: UnsafeMutablePointer<UInt8>, capacity: Int) throws -> Int {
        let remaining = member.compressedSize - compressedRead
        if remaining == 0 { return 0 }
        let want = Int(min(UInt64(capacity), remaining))
        let got = try preadFully(buffer, want, dataOffset + compressedRead)
        if got < want { throw corrupt("stored data ends early (truncated archive)") }
        compressedRead += UInt64(got)
        return got
    }

    private func readDeflated(into buffer: UnsafeMutablePointer<UInt8>, capacity: Int) throws -> Int {
        guard let inflater else { return 0 }
        var filled = 0
        while filled < capacity && !streamEnded {
            if inflater.availableInput == 0 {
                let remaining = member.compressedSize - compressedRead
                if remaining > 0 {
                    let want = Int(min(UInt64(ZipEntryReader.inputCapacity), remaining))
                    let got = try preadFully(input, want, dataOffset + compressedRead)
                    if got < want { throw corrupt("compressed data ends early (truncated archive)") }
                    compressedRead += UInt64(got)
                    inflater.setInput(input, count: got)
                }
            }
            let step: (produced: Int, ended: Bool)
            do {
                step = try inflater.inflate(into: buffer + filled, capacity: capacity - filled)
            } catch {
                throw corrupt("inflate failed: \(error.reason)")
            }
            filled += step.produced
            streamEnded = step.ended
            if !step.ended && step.produced == 0 && inflater.availableInput == 0 && member.compressedSize == compressedRead {
                throw corrupt("deflate stream ends before its end marker (truncated)")
            }
        }
        return filled
    }

    private func verifyEnd() throws {
        if let inflater {
            // read() returns 0 only after the end-of-stream block; all the input must be used by then.
            guard streamEnded else { throw corrupt("deflate stream did not end cleanly") }
            let unused = UInt64(inflater.unusedInputAfterEnd) + (member.compressedSize - compressedRead)
            if unused != 0 { throw corrupt("\(unused) bytes of compressed data after the end of the stream") }
        }
        if produced != member.uncompressedSize {
            throw corrupt("inflated \(produced) bytes, the directory says \(member.uncompressedSize)")
        }
        if crc != member.crc32 {
            throw corrupt("CRC-32 mismatch: computed \(hex32(crc)), the directory says \(hex32(member.crc32))")
        }
    }

    /// Every offset and size here comes from the archive's bytes: sums are overflow-checked and
    /// ranges checked against the file before anything is read.
    private func openMember() throws {
        if member.uncompressedSize > maxInflatedSize {
            throw ZipError.tooLarge(archive: archivePath, member: member.name, limit: maxInflatedSize, size: member.uncompressedSize)
        }
        guard let headerEnd = checkedSum(member.localHeaderOffset, 30), headerEnd <= fileSize else {
            throw corrupt("local file header offset \(member.localHeaderOffset) lies outside the file's \(fileSize) bytes")
        }
        var local = [UInt8](repeating: 0, count: 30)
        let got = try local.withUnsafeMutableBufferPointer { try preadFully($0.baseAddress!, 30, member.localHeaderOffset) }
        guard got == 30, le32(local, 0) == 0x0403_4b50 else {
            throw corrupt("no local file header at offset \(member.localHeaderOffset)")
        }
        let localMethod = le16(local, 8)
        guard localMethod == member.method else {
            throw corrupt("local header says method \(localMethod), the directory says \(member.method)")
        }
        let nameLength = UInt64(le16(local, 26)), extraLength = UInt64(le16(local, 28))
        guard let start = checkedSum(headerEnd, nameLength, extraLength), let end = checkedSum(start, member.compressedSize), end <= fileSize else {
            throw corrupt("data runs past the end of the file (truncated archive)")
        }
        dataOffset = start
        if le16(local, 6) & 8 == 0 {  // without a data descriptor the local header carries the sizes too
            var extra = [UInt8](repeating: 0, count: Int(extraLength))
            _ = try extra.withUnsafeMutableBufferPointer { try preadFully($0.baseAddress!, Int(extraLength), headerEnd + nameLength) }
            let sizes = Self.zip64Sizes(extra, usize: UInt64(le32(local, 22)), csize: UInt64(le32(local, 18)))
            guard sizes.csize == member.compressedSize, sizes.usize == member.uncompressedSize else {
                throw corrupt("local header says \(sizes.csize) compressed and \(sizes.usize) inflated bytes, the directory says \(member.compressedSize) and \(member.uncompressedSize)")
            }
        }
        if member.method == 8 {
            do {
                inflater = try RawInflater(engine: engine)
            } catch {
                throw corrupt(error.reason)
            }
        }
    }

    private func corrupt(_ reason: String) -> ZipError {
        .corrupt(archive: archivePath, member: member.name, reason: reason)
    }

    private func preadFully(_ buf: UnsafeMutablePointer<UInt8>, _ count: Int, _ offset: UInt64) throws -> Int {
        try ZipEntryReader.preadFully(fd: fd, buf, count, offset, path: archivePath)
    }

    private static func preadFully(fd: Int32, _ buf: UnsafeMutablePointer<UInt8>, _ count: Int, _ offset: UInt64, path: String) throws -> Int {
        guard let end = checkedSum(offset, UInt64(count)), end <= UInt64(Int64.max) else {
            throw ZipError.notAZip(archive: path, reason: "offset \(offset) lies outside any file")
        }
        var done = 0
        while done < count {
            let n = pread(fd, buf + done, count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ZipError.io(archive: path, reason: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    // MARK: - Central directory

    private static func readCentralDirectory(fd: Int32, fileSize: UInt64, path: String) throws -> ZipMember {
        // The end-of-central-directory record is 22 bytes plus a comment of at most 65535 bytes.
        let tailSize = Int(min(fileSize, 22 + 65535 + 20))
        guard tailSize >= 22 else { throw ZipError.notAZip(archive: path, reason: "file is \(fileSize) bytes long") }
        var tail = [UInt8](repeating: 0, count: tailSize)
        let tailStart = fileSize - UInt64(tailSize)
        _ = try tail.withUnsafeMutableBufferPointer { try preadFully(fd: fd, $0.baseAddress!, tailSize, tailStart, path: path) }
        var eocd = -1
        var i = tailSize - 22
        while i >= 0 {
            if tail[i] == 0x50, le32(tail, i) == 0x0605_4b50, i + 22 + Int(le16(tail, i + 20)) <= tailSize { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw ZipError.notAZip(archive: path, reason: "no end-of-central-directory record") }
        var entries = UInt64(le16(tail, eocd + 10))
        var cdSize = UInt64(le32(tail, eocd + 12))
        var cdOffset = UInt64(le32(tail, eocd + 16))
        if entries == 0xFFFF || cdSize == 0xFFFF_FFFF || cdOffset == 0xFFFF_FFFF {
            // Zip64: a locator sits just before the classic record and points at the zip64 record.
            let loc = eocd - 20
            guard loc >= 0, le32(tail, loc) == 0x0706_4b50 else {
                throw ZipError.notAZip(archive: path, reason: "zip64 end-of-central-directory locator missing")
            }
            let rec64Offset = le64(tail, loc + 8)
            guard let rec64End = checkedSum(rec64Offset, 56), rec64End <= fileSize else {
                throw ZipError.notAZip(archive: path, reason: "zip64 end-of-central-directory record at \(rec64Offset) lies outside the file")
            }
            var rec = [UInt8](repeating: 0, count: 56)
            let got = try rec.withUnsafeMutableBufferPointer { try preadFully(fd: fd, $0.baseAddress!, 56, rec64Offset, path: path) }
            guard got == 56, le32(rec, 0) == 0x0606_4b50 else {
                throw ZipError.notAZip(archive: path, reason: "zip64 end-of-central-directory record missing")
            }
            entries = le64(rec, 32)
            cdSize = le64(rec, 40)
            cdOffset = le64(rec, 48)
        }
        guard let cdEnd = checkedSum(cdOffset, cdSize), cdEnd <= fileSize, cdSize < 1 << 24 else {
            throw ZipError.notAZip(archive: path, reason: "central directory at \(cdOffset)+\(cdSize) lies outside the file")
        }
        guard entries > 0 else { throw ZipError.notSingleCSV(archive: path, members: []) }
        var cd = [UInt8](repeating: 0, count: Int(cdSize))
        let got = try cd.withUnsafeMutableBufferPointer { try preadFully(fd: fd, $0.baseAddress!, Int(cdSize), cdOffset, path: path) }
        guard got == Int(cdSize) else { throw ZipError.notAZip(archive: path, reason: "central directory truncated") }

        var members: [ZipMember] = []
        var p = 0
        for _ in 0..<min(entries, 10_000) {
            guard p + 46 <= cd.count, le32(cd, p) == 0x0201_4b50 else {
                throw ZipError.notAZip(archive: path, reason: "bad central directory entry at offset \(cdOffset + UInt64(p))")
            }
            let flags = le16(cd, p + 8), method = le16(cd, p + 10), crc = le32(cd, p + 16)
            var csize = UInt64(le32(cd, p + 20)), usize = UInt64(le32(cd, p + 24))
            let nameLen = Int(le16(cd, p + 28)), extraLen = Int(le16(cd, p + 30)), commentLen = Int(le16(cd, p + 32))
            var offset = UInt64(le32(cd, p + 42))
            guard p + 46 + nameLen + extraLen + commentLen <= cd.count else {
                throw ZipError.notAZip(archive: path, reason: "central directory entry overruns the directory")
            }
            let name = String(decoding: cd[(p + 46)..<(p + 46 + nameLen)], as: UTF8.self)
            let extra = Array(cd[(p + 46 + nameLen)..<(p + 46 + nameLen + extraLen)])
            (usize, csize, offset) = zip64Sizes(extra, usize: usize, csize: csize, offset: offset)
            members.append(ZipMember(name: name, method: method, flags: flags, crc32: crc,
                                     compressedSize: csize, uncompressedSize: usize, localHeaderOffset: offset))
            p += 46 + nameLen + extraLen + commentLen
        }
        guard members.count == 1, members[0].name.lowercased().hasSuffix(".csv") else {
            throw ZipError.notSingleCSV(archive: path, members: members.map(\.name))
        }
        let m = members[0]
        if m.flags & 1 != 0 { throw ZipError.unsupported(archive: path, member: m.name, reason: "encrypted members are not supported") }
        guard m.method == 0 || m.method == 8 else {
            throw ZipError.unsupported(archive: path, member: m.name, reason: "compression method \(m.method) is not supported (only stored and deflate)")
        }
        return m
    }
}

extension ZipEntryReader {
    /// The sizes (and offset) of an entry with its zip64 extra field (id 1) applied: the 8-byte
    /// values present are those whose 32-bit field is all ones, in this order.
    static func zip64Sizes(_ extra: [UInt8], usize: UInt64, csize: UInt64, offset: UInt64 = 0) -> (usize: UInt64, csize: UInt64, offset: UInt64) {
        var (usize, csize, offset) = (usize, csize, offset)
        var e = 0
        while e + 4 <= extra.count {
            let id = le16(extra, e), end = min(extra.count, e + 4 + Int(le16(extra, e + 2)))
            var q = e + 4
            if id == 1 {
                if usize == 0xFFFF_FFFF, q + 8 <= end { usize = le64(extra, q); q += 8 }
                if csize == 0xFFFF_FFFF, q + 8 <= end { csize = le64(extra, q); q += 8 }
                if offset == 0xFFFF_FFFF, q + 8 <= end { offset = le64(extra, q); q += 8 }
            }
            e = end
        }
        return (usize, csize, offset)
    }
}

/// The sum of offsets and sizes read from untrusted bytes, or nil when it overflows.
@inline(__always) func checkedSum(_ values: UInt64...) -> UInt64? {
    var total: UInt64 = 0
    for v in values {
        let (sum, overflow) = total.addingReportingOverflow(v)
        if overflow { return nil }
        total = sum
    }
    return total
}

@inline(__always) func le16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
@inline(__always) func le32(_ b: [UInt8], _ i: Int) -> UInt32 {
    UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
}
@inline(__always) func le64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(le32(b, i)) | UInt64(le32(b, i + 4)) << 32 }
func hex32(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return String(repeating: "0", count: 8 - s.count) + s
}
