import Foundation
import MarketStoreModel

/// The 37,024-byte header of a MarketStore year file (utils/io/metadata.go), little-endian:
/// @0 version (2); @8 description (256 bytes); @264 year; @272 timeframe in ns; @280 record type
/// (0 fixed, 1 variable); @288 columns excluding Epoch; @296 record length; @304 reserved; @312 column names
/// (1024 x 32 bytes); @33080 column type codes (1024 x 1 byte); @34104 reserved (365 x 8 bytes).
public struct BucketHeader: Equatable, Sendable {
    public static let size = 37024
    public static let description = "Created By Writer"

    public var year: Int
    public var timeframeSeconds: Int64
    public var variableLength: Bool
    /// Columns after Epoch, in the file's order: name and MarketStore type string.
    public var columns: [(name: String, type: String)]

    public static func == (a: BucketHeader, b: BucketHeader) -> Bool {
        a.year == b.year && a.timeframeSeconds == b.timeframeSeconds && a.variableLength == b.variableLength
            && a.columns.map(\.name) == b.columns.map(\.name) && a.columns.map(\.type) == b.columns.map(\.type)
    }

    static let typeCodes: [String: UInt8] = ["f4": 0, "i4": 1, "f8": 2, "i8": 3, "i1": 5, "i2": 9, "u1": 10, "u2": 11, "u4": 12, "u8": 13]
    static let typeSizes: [String: Int] = ["f4": 4, "i4": 4, "f8": 8, "i8": 8, "i1": 1, "i2": 2, "u1": 1, "u2": 2, "u4": 4, "u8": 8]

    /// Index (8 bytes) plus the columns, padded to a multiple of 8; a variable-length bucket's
    /// slots are {index, offset, length}: 24 bytes.
    public var recordLength: Int {
        if variableLength { return 24 }
        let raw = 8 + columns.reduce(0) { $0 + (Self.typeSizes[$1.type] ?? 8) }
        return (raw + 7) / 8 * 8
    }

    /// Byte offsets of each column inside a record.
    public var columnOffsets: [Int] {
        var offsets: [Int] = []
        var at = 8
        for c in columns {
            offsets.append(at)
            at += Self.typeSizes[c.type] ?? 8
        }
        return offsets
    }

    public var slotsInYear: Int {
        let days = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 366 : 365
        return Int(Int64(days) * 86400 / timeframeSeconds)
    }

    public var fileSize: Int { Self.size + slotsInYear * recordLength }

    public init(year: Int, timeframeSeconds: Int64, columns: [(name: String, type: String)], variableLength: Bool = false) {
        self.year = year
        self.timeframeSeconds = timeframeSeconds
        self.columns = columns
        self.variableLength = variableLength
    }

    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        func put(_ v: Int64, at: Int) { withUnsafeBytes(of: v.littleEndian) { for (i, x) in $0.enumerated() { b[at + i] = x } } }
        put(2, at: 0)
        for (i, x) in Self.description.utf8.enumerated() { b[8 + i] = x }
        put(Int64(year), at: 264)
        put(timeframeSeconds * 1_000_000_000, at: 272)
        put(variableLength ? 1 : 0, at: 280)
        put(Int64(columns.count), at: 288)
        put(Int64(recordLength), at: 296)
        for (k, c) in columns.enumerated() {
            for (i, x) in c.name.utf8.prefix(32).enumerated() { b[312 + 32 * k + i] = x }
            b[33080 + k] = Self.typeCodes[c.type] ?? 0
        }
        return b
    }

    public init(decoding b: [UInt8], path: String) throws {
        guard b.count >= Self.size else { throw DirectoryError.corrupt(path: path, reason: "shorter than the 37,024-byte header") }
        func get(_ at: Int) -> Int64 { b.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: Int64.self)) } }
        guard get(0) == 2 else { throw DirectoryError.corrupt(path: path, reason: "header version \(get(0)), expected 2") }
        let n = Int(get(288))
        guard (0...1024).contains(n) else { throw DirectoryError.corrupt(path: path, reason: "\(n) columns") }
        let codeToType = Dictionary(uniqueKeysWithValues: Self.typeCodes.map { ($1, $0) })
        var columns: [(String, String)] = []
        for k in 0..<n {
            let raw = b[(312 + 32 * k)..<(312 + 32 * k + 32)].prefix { $0 != 0 }
            let name = String(decoding: raw, as: UTF8.self)
            guard let type = codeToType[b[33080 + k]] else {
                throw DirectoryError.corrupt(path: path, reason: "column \(name) has type code \(b[33080 + k]), which this reader does not know")
            }
            columns.append((name, type))
        }
        // Values that the slot arithmetic divides by or multiplies with are checked here, once.
        guard (1970...9999).contains(get(264)) else { throw DirectoryError.corrupt(path: path, reason: "year \(get(264))") }
        year = Int(get(264))
        let timeframe = get(272)
        guard timeframe >= 1_000_000_000, timeframe % 1_000_000_000 == 0, timeframe / 1_000_000_000 <= 366 * 86400 else {
            throw DirectoryError.corrupt(path: path, reason: "timeframe of \(timeframe) ns")
        }
        timeframeSeconds = timeframe / 1_000_000_000
        variableLength = get(280) == 1
        self.columns = columns
        guard Int(get(296)) == recordLength else {
            throw DirectoryError.corrupt(path: path, reason: "record length \(get(296)), the columns need \(recordLength)")
        }
    }

    /// The header of the year file at `path` (only its first 37,024 bytes are read).
    public init(readingFile path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw DirectoryError.io(path: path, reason: "cannot open it") }
        defer { try? handle.close() }
        guard let data = try handle.read(upToCount: Self.size) else { throw DirectoryError.io(path: path, reason: "cannot read the header") }
        try self.init(decoding: [UInt8](data), path: path)
    }

    /// The slot index of `epoch` in this year (0 marks an empty slot). 1D buckets count days from
    /// 0, so 1 January gets index 0 and lands inside the header, where the server never reads it.
    public func index(of epoch: Int64, yearStart: Int64) -> Int64 {
        let slot = (epoch - yearStart) / timeframeSeconds
        return timeframeSeconds == 86400 ? slot : slot + 1
    }

    /// The epoch of a slot index: the inverse of `index(of:yearStart:)`.
    public func epoch(ofIndex index: Int64, yearStart: Int64) -> Int64 {
        yearStart + (timeframeSeconds == 86400 ? index : index - 1) * timeframeSeconds
    }

    public func offset(ofIndex index: Int64) -> Int64 { Int64(Self.size) + (index - 1) * Int64(recordLength) }
}

/// Errors of the directory sink; each names the path or key.
public enum DirectoryError: Error, CustomStringConvertible, Equatable {
    case corrupt(path: String, reason: String)
    case schemaMismatch(key: String, path: String, file: [String], dataset: [String], reason: String)
    case inUse(root: String, evidence: String)
    case io(path: String, reason: String)
    case badKey(String)

    public var description: String {
        switch self {
        case let .corrupt(path, reason): return "\(path): not a MarketStore year file: \(reason)"
        case let .schemaMismatch(key, path, file, dataset, reason):
            return "\(key): \(reason); \(path) has [\(file.joined(separator: " "))], the dataset has [\(dataset.joined(separator: " "))]"
        case let .inUse(root, evidence):
            return "\(root) is in use by a running MarketStore server (\(evidence)); stop it first, or give --force-directory to write anyway"
        case let .io(path, reason): return "\(path): \(reason)"
        case let .badKey(key): return "key \(key) is not SYMBOL/Timeframe/AttributeGroup with a known timeframe"
        }
    }
}
