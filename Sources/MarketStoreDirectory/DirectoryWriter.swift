import Columnar
import Foundation
import DurableFiles
import MarketStoreModel

/// Writes fixed-length MarketStore buckets straight into a data directory, in the server's own
/// format: `<root>/<Symbol>/<Timeframe>/<AttributeGroup>/<YYYY>.bin` plus a `category_name` file
/// at each level. Meant for a stopped server (or none): `marketstore start` then serves the data.
///
/// Writing into an existing year file overwrites slots (the server's last-write-wins rule) after
/// checking its schema: columns of the same names in another order are written in the file's
/// order; other types or names are refused. New files are created through a temporary name
/// (header, sparse full size, fsync, rename); rows are written with pwrite and fsynced, each slot
/// a fixed-size record, so a crash leaves a slot's old or new contents.
public final class DirectoryWriter: @unchecked Sendable {
    public let root: String
    /// Directories of this run already made, cleaned of stale temporaries and named: a write
    /// into a known key costs no directory scan (a scan of the root per write cost a syscall
    /// storm at thousands of symbols). Guarded by `lock`.
    private var prepared: Set<String> = []
    private let lock = NSLock()

    /// Opens `root` for writing; refuses a directory a running server uses unless `force`.
    public init(root: String, force: Bool = false) throws {
        self.root = root
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        if !force, let evidence = Self.inUseEvidence(root: root) { throw DirectoryError.inUse(root: root, evidence: evidence) }
        removeStaleTemporaries(in: root)
        try Self.ensureCategory(root, "Symbol")
    }

    /// Signs that a running server uses `root`: a process holding a file under it open (the
    /// server keeps its write-ahead log and year files open), or a write-ahead log modified in
    /// the last 10 seconds.
    public static func inUseEvidence(root: String) -> String? {
        let real = (try? FileManager.default.destinationOfSymbolicLink(atPath: root)) ?? URL(fileURLWithPath: root).resolvingSymlinksInPath().path
        let prefix = real.hasSuffix("/") ? real : real + "/"
        let me = getpid()
        if let pids = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
            for pid in pids where Int32(pid) != nil && Int32(pid) != me {
                guard let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd") else { continue }
                for fd in fds {
                    if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"), target.hasPrefix(prefix) {
                        return "process \(pid) has \(target) open"
                    }
                }
            }
        }
        if let names = try? FileManager.default.contentsOfDirectory(atPath: root) {
            for name in names where name.hasPrefix("WALFile") {
                let path = (root as NSString).appendingPathComponent(name)
                if let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date, Date().timeIntervalSince(date) < 10 {
                    return "\(name) was modified \(Int(Date().timeIntervalSince(date))) s ago"
                }
            }
        }
        return nil
    }

    /// Writes every key range of a dataset.
    public func write(_ dataset: WriteDataSet) throws {
        for k in dataset.keys {
            try write(key: k.key, names: dataset.names, columns: dataset.columns, rows: k.start..<(k.start + k.count))
        }
    }

    /// Writes rows of one key. `names[0]` is Epoch (i8); duplicates of a slot: the last row wins.
    public func write(key: String, names: [String], columns: [ColumnValues]) throws {
        try write(key: key, names: names, columns: columns, rows: 0..<(columns.first?.count ?? 0))
    }

    /// Writes `rows` of the columns (a key's range in a multi-key dataset, without copying it out).
    func write(key: String, names: [String], columns: [ColumnValues], rows range: Range<Int>) throws {
        let (dir, tf) = try prepareKey(key)
        guard case let .int64(epochs)? = columns.first else { throw DirectoryError.badKey(key) }
        let schema = zip(names, columns).dropFirst().map { (name: $0, type: $1.wireType) }
        let years = Self.rowsByYear(epochs, range)
        // Every existing year file of the key is checked before any is written: a bucket that
        // refuses the rows is left exactly as it was.
        var headers: [Int: BucketHeader] = [:]
        for (year, _) in years {
            let path = (dir as NSString).appendingPathComponent("\(year).bin")
            headers[year] = try existingHeader(path: path, key: key, timeframe: tf, schema: schema, variable: false)
        }
        for (year, rows) in years {
            let path = (dir as NSString).appendingPathComponent("\(year).bin")
            let header = try headers[year] ?? createHeader(path: path, year: year, timeframe: tf, schema: schema, variable: false)
            try writeRows(rows, epochs: epochs, names: names, columns: columns, header: header, path: path)
        }
    }

    /// The key's folder, made with its levels; and its timeframe in seconds.
    func prepareKey(_ key: String) throws -> (dir: String, timeframe: Int64) {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && !$0.contains("..") }), let tf = Timeframe.seconds(parts[1]) else {
            throw DirectoryError.badKey(key)
        }
        var dir = root
        for (level, name) in zip(["Timeframe", "AttributeGroup", "Year"], parts) {
            dir = (dir as NSString).appendingPathComponent(name)
            try prepare(dir, level)
        }
        return (dir, tf)
    }

    /// Makes `dir` (once per writer): created, stale temporaries removed, its `category_name`.
    private func prepare(_ dir: String, _ level: String) throws {
        if lock.withLock({ prepared.contains(dir) }) { return }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        removeStaleTemporaries(in: dir)
        try Self.ensureCategory(dir, level)
        lock.withLock { _ = prepared.insert(dir) }
    }

    /// The header of an existing year file, checked against the dataset's schema and record type;
    /// nil when there is no such file.
    func existingHeader(path: String, key: String, timeframe: Int64, schema: [(name: String, type: String)], variable: Bool) throws -> BucketHeader? {
        if FileManager.default.fileExists(atPath: path) {
            let header = try BucketHeader(readingFile: path)
            let file = header.columns.map { "\($0.name):\($0.type)" }, mine = schema.map { "\($0.name):\($0.type)" }
            if header.variableLength != variable {
                throw DirectoryError.schemaMismatch(key: key, path: path, file: file, dataset: mine,
                                                    reason: header.variableLength ? "the bucket is variable-length" : "the bucket is fixed-length: its record type would win silently")
            }
            if header.timeframeSeconds != timeframe {
                throw DirectoryError.schemaMismatch(key: key, path: path, file: file, dataset: mine, reason: "the file's timeframe is \(header.timeframeSeconds) s")
            }
            guard Set(header.columns.map(\.name)) == Set(schema.map(\.name)), header.columns.count == schema.count else {
                throw DirectoryError.schemaMismatch(key: key, path: path, file: file, dataset: mine, reason: "column names differ")
            }
            let types = Dictionary(uniqueKeysWithValues: schema.map { ($0.name, $0.type) })
            if let c = header.columns.first(where: { types[$0.name] != $0.type }) {
                throw DirectoryError.schemaMismatch(key: key, path: path, file: file, dataset: mine, reason: "column \(c.name) has another type")
            }
            return header
        }
        return nil
    }

    /// A new year file with the dataset's schema: created under a temporary name, then renamed.
    func createHeader(path: String, year: Int, timeframe: Int64, schema: [(name: String, type: String)], variable: Bool) throws -> BucketHeader {
        let header = BucketHeader(year: year, timeframeSeconds: timeframe, columns: schema, variableLength: variable)
        do {
            try writeFileDurably(header.encoded(), to: path, size: Int64(header.fileSize))
        } catch let e as FileWriteError {
            throw DirectoryError.io(path: e.path, reason: e.reason)
        }
        return header
    }

    /// Row numbers grouped by UTC year, years ascending. The calendar is consulted only when an
    /// epoch leaves the current year (rows usually come sorted, a year at a time).
    static func rowsByYear(_ epochs: [Int64], _ range: Range<Int>) -> [(year: Int, rows: [Int])] {
        var byYear: [Int: [Int]] = [:]
        var year = 0, start = Int64.max, end = Int64.min
        var run: [Int] = []  // rows of `year` since the last change of year
        for i in range {
            let e = epochs[i]
            if e < start || e >= end {
                if !run.isEmpty { byYear[year, default: []].append(contentsOf: run) }
                run.removeAll(keepingCapacity: true)
                year = UTCCalendar.year(of: e)
                start = UTCCalendar.epoch(year: year, month: 1, day: 1)
                end = UTCCalendar.epoch(year: year + 1, month: 1, day: 1)
            }
            run.append(i)
        }
        if !run.isEmpty { byYear[year, default: []].append(contentsOf: run) }
        return byYear.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }

    /// Writes the rows' records: runs of adjacent slots in one pwrite each, then fsync.
    private func writeRows(_ rows: [Int], epochs: [Int64], names: [String], columns: [ColumnValues], header: BucketHeader, path: String) throws {
        let yearStart = UTCCalendar.epoch(year: header.year, month: 1, day: 1)
        // Slot index per row; for a repeated slot the last row wins.
        var slots = rows.map { (index: header.index(of: epochs[$0], yearStart: yearStart), row: $0) }
        let inOrder = zip(slots, slots.dropFirst()).allSatisfy { $0.index < $1.index }
        if !inOrder {
            slots.sort { $0.index != $1.index ? $0.index < $1.index : $0.row < $1.row }
            slots = slots.enumerated().filter { k, s in k + 1 == slots.count || slots[k + 1].index != s.index }.map(\.element)
        }
        // The dataset's column feeding each of the file's columns.
        let position = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        let sources = try header.columns.map { column -> Int in
            // The schema check before any write makes this hold; a file column without its data
            // is refused rather than written from another column.
            guard let k = position[column.name] else {
                throw DirectoryError.schemaMismatch(key: "", path: path, file: header.columns.map(\.name), dataset: names, reason: "no data for column \(column.name)")
            }
            return k
        }
        let offsets = header.columnOffsets, length = header.recordLength
        let fd = open(path, O_WRONLY)
        guard fd >= 0 else { throw DirectoryError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var start = 0
        while start < slots.count {
            var end = start + 1
            while end < slots.count && slots[end].index == slots[end - 1].index + 1 { end += 1 }
            var buffer = [UInt8](repeating: 0, count: (end - start) * length)
            buffer.withUnsafeMutableBytes { out in
                for k in start..<end {
                    out.storeBytes(of: slots[k].index.littleEndian, toByteOffset: (k - start) * length, as: Int64.self)
                }
                // Column by column: one look at each column's bytes per run, not per value.
                for (c, source) in sources.enumerated() {
                    columns[source].withUnsafeBytes { raw in
                        let width = raw.count / max(1, epochs.count)
                        var to = out.baseAddress! + offsets[c]
                        for k in start..<end {
                            to.copyMemory(from: raw.baseAddress! + slots[k].row * width, byteCount: width)
                            to += length
                        }
                    }
                }
            }
            let offset = header.offset(ofIndex: slots[start].index)
            do {
                try buffer.withUnsafeBytes { try writeFully(fd, $0, offset: offset) }
            } catch let failure as WriteFailure {
                throw DirectoryError.io(path: path, reason: "\(failure)")
            }
            start = end
        }
        guard fsync(fd) == 0 else { throw DirectoryError.io(path: path, reason: "fsync: \(String(cString: strerror(errno)))") }
    }

}


extension DirectoryWriter {
    static func ensureCategory(_ dir: String, _ name: String) throws {
        let path = (dir as NSString).appendingPathComponent("category_name")
        if FileManager.default.fileExists(atPath: path) { return }
        // Our own temporary name (removeStaleTemporaries knows it), not Foundation's atomic
        // write, whose hidden temporary would survive a kill.
        do {
            try writeFileDurably(Array(name.utf8), to: path)
        } catch let e as FileWriteError {
            throw DirectoryError.io(path: e.path, reason: e.reason)
        }
    }
}

/// Reads buckets of a data directory as the server serves them: every non-empty slot of every
/// year file, Epoch rebuilt from the slot index (so a 1D bucket's 1 January row, stored inside the
/// header, is not returned, as on the server).
public struct DirectoryReader: Sendable {
    public let root: String
    public init(root: String) { self.root = root }

    /// Names (Epoch first) and columns of `key` between `from` and `to` (inclusive); nil when the
    /// bucket does not exist.
    public func read(key: String, from: Int64? = nil, to: Int64? = nil) throws -> (names: [String], columns: [ColumnValues])? {
        let dir = (root as NSString).appendingPathComponent(key)
        guard let files = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return nil }
        var names: [String]?
        var epochs: [Int64] = []
        var raw: [[UInt8]] = []
        var types: [String] = []
        let paths = files.filter { $0.hasSuffix(".bin") }.sorted().map { (dir as NSString).appendingPathComponent($0) }
        if let first = paths.first, try BucketHeader(readingFile: first).variableLength {
            return try readVariable(key: key, files: paths, from: from, to: to)  // read by slot range, not whole
        }
        for path in paths {
            let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            let header = try BucketHeader(decoding: data, path: path)
            if names == nil {
                names = ["Epoch"] + header.columns.map(\.name)
                types = header.columns.map(\.type)
                raw = Array(repeating: [], count: types.count)
            }
            let yearStart = UTCCalendar.epoch(year: header.year, month: 1, day: 1)
            let length = header.recordLength, offsets = header.columnOffsets
            data.withUnsafeBytes { bytes in
                var at = BucketHeader.size
                while at + length <= bytes.count {
                    let index = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: Int64.self))
                    if index != 0 {
                        let epoch = header.epoch(ofIndex: index, yearStart: yearStart)
                        if epoch >= (from ?? .min) && epoch <= (to ?? .max) {
                            epochs.append(epoch)
                            for c in 0..<types.count {
                                let width = BucketHeader.typeSizes[types[c]] ?? 8
                                raw[c].append(contentsOf: bytes[(at + offsets[c])..<(at + offsets[c] + width)])
                            }
                        }
                    }
                    at += length
                }
            }
        }
        guard let names else { return nil }
        let columns = [ColumnValues.int64(epochs)] + zip(types, raw).map { ColumnValues(wireType: $0, bytes: $1) ?? .int64([]) }
        return (names, columns)
    }
}
