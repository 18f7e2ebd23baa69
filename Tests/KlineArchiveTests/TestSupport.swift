import CZlib
import Foundation
@_exported import TestSupport
import XCTest
@testable import KlineArchive

/// Paths of the repository, of `../shared` and of the built products.
enum TestPaths {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let shared = ProcessInfo.processInfo.environment["BINANCE_IMPORT_SHARED"].map { URL(fileURLWithPath: $0) }
        ?? repoRoot.deletingLastPathComponent().appendingPathComponent("shared")

    /// `../shared/binance`, or a skip that says why.
    static func sharedBinance() throws -> URL {
        let dir = shared.appendingPathComponent("binance")
        guard FileManager.default.fileExists(atPath: dir.path) else {
            throw XCTSkip("../shared/binance is absent (looked in \(dir.path)); the real-archive tests need it")
        }
        return dir
    }

    /// The directory holding the test bundle, next to which SwiftPM puts the executables.
    static var productsDirectory: URL {
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            return bundle.bundleURL.deletingLastPathComponent()
        }
        return Bundle.main.bundleURL
    }

    static func temporaryDirectory(_ name: String = #function) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("binance-import-tests-\(getpid())-\(name.filter(\.isLetter))-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// Runs a command and returns its exit status, standard output and standard error.
@discardableResult
func runProcess(_ executable: String, _ arguments: [String]) throws -> (status: Int32, stdout: Data, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    // Standard error goes to a file so that neither pipe can fill up and block the child.
    let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("stderr-\(UUID().uuidString)")
    FileManager.default.createFile(atPath: errFile.path, contents: nil)
    let errHandle = try FileHandle(forWritingTo: errFile)
    process.standardError = errHandle
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    try errHandle.close()
    let stderr = (try? String(contentsOf: errFile, encoding: .utf8)) ?? ""
    try? FileManager.default.removeItem(at: errFile)
    return (process.terminationStatus, stdout, stderr)
}

/// Builds zip archives byte by byte, including the shapes the decoder must handle or refuse:
/// stored and deflated members, data descriptors, zip64 records, wrong CRCs, several members.
struct ZipBuilder {
    struct Member {
        var name: String
        var data: [UInt8]
        var method: UInt16 = 8
        var dataDescriptor = false
        var zip64 = false
        var crcOverride: UInt32?
        var declaredSizeOverride: UInt64?
        /// Bytes appended to the member's data after the deflate stream's end.
        var trailingBytes: [UInt8] = []
    }

    var members: [Member] = []

    static func single(_ name: String, _ csv: String, method: UInt16 = 8, dataDescriptor: Bool = false, zip64: Bool = false) -> [UInt8] {
        ZipBuilder(members: [Member(name: name, data: Array(csv.utf8), method: method, dataDescriptor: dataDescriptor, zip64: zip64)]).bytes()
    }

    func bytes() -> [UInt8] {
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

func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }

/// Writes `bytes` to `dir/name` and returns the path.
func writeFile(_ dir: URL, _ name: String, _ bytes: [UInt8]) throws -> String {
    let url = dir.appendingPathComponent(name)
    try Data(bytes).write(to: url)
    return url.path
}

/// Synthetic Binance kline CSV rows for a period, with real-looking values.
enum SyntheticKlines {
    /// `count` rows of `interval` seconds from `start`, in ms (13 digits) or us (16 digits).
    static func rows(start: Int64, interval: Int64, count: Int, micro: Bool = false, seed: UInt64 = 1) -> [String] {
        var rng = SplitMix64(seed: seed)
        let unit: Int64 = micro ? 1_000_000 : 1000
        var price = 30000.0
        return (0..<count).map { i in
            let t = (start + Int64(i) * interval) * unit
            let open = price
            let close = max(1, open * (1 + (Double(rng.next() % 2001) - 1000) / 1_000_000))
            let high = max(open, close) * (1 + Double(rng.next() % 500) / 1_000_000)
            let low = min(open, close) * (1 - Double(rng.next() % 500) / 1_000_000)
            price = close
            let volume = Double(rng.next() % 100_000_000) / 1e6
            let trades = rng.next() % 5000
            let takerBase = volume * Double(rng.next() % 100) / 100
            return [String(t), price8(open), price8(high), price8(low), price8(close), fmt(volume, 8),
                    String(t + interval * unit - 1), fmt(volume * open, 8), String(trades), fmt(takerBase, 8),
                    fmt(takerBase * open, 8), "0"].joined(separator: ",")
        }
    }

    static func fmt(_ v: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", v) }
    /// A price on a 0.01 tick, printed as Binance does with 8 decimals (7195.24000000).
    static func price8(_ v: Double) -> String { fmt((v * 100).rounded() / 100, 8) }
}

/// Hostile zips: a valid zip64 (or plain) archive with one field overwritten, as an attacker or a
/// broken writer would, with the message the reader must answer.
enum CraftedZips {
    static func cases(_ name: String, _ csv: String) -> [(label: String, bytes: [UInt8], message: String)] {
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
