import Columnar
import DurableFiles
import Foundation
import MarketStoreModel

// Variable-length buckets (trades) in the server's own format, as v4.1.23 writes and reads them
// (executor/writer.go WriteBufferToFileIndirect, executor/scanner.go, executor/rewritebuffer.go):
// the year file's header says record type 1 and record length 24; each interval of the year has a
// 24-byte slot {index, offset, length} pointing at one snappy block, past the slots, of that
// interval's records sorted by time. A record is the data columns packed in the file's order (no
// Epoch, no padding) and 4 bytes of interval ticks: the time since the interval's start in
// 1/(2^32 x intervals a day / 86400) s (1/2^32 s in a 1Sec bucket).

/// MarketStore's 32-bit interval ticks (utils/io/timeindex.go GetIntervalTicks32Bit and
/// executor/rewritebuffer.go GetTimeFromTicks), computed as the server does, rounding included.
public enum IntervalTicks {
    static let perIntervalDivSecondsPerDay = 49710.269629629629629629629629629

    public static func ticks(epoch: Int64, nanos: Int32, intervalStart: Int64, intervalsPerDay: Int64) -> UInt32 {
        let d = (epoch - intervalStart) * 1_000_000_000 + Int64(nanos)
        let seconds = Double(d / 1_000_000_000) + Double(d % 1_000_000_000) / 1e9  // Go's Duration.Seconds
        return UInt32(truncatingIfNeeded: Int64(Double(intervalsPerDay) * perIntervalDivSecondsPerDay * seconds))
    }

    public static func time(ticks: UInt32, intervalStart: Int64, intervalsPerDay: Int64) -> (epoch: Int64, nanos: Int32) {
        var fractional = Double(ticks) / (Double(intervalsPerDay) * perIntervalDivSecondsPerDay)
        var sub = 1e9 * (fractional - fractional.rounded(.down))
        if sub >= 1e9 {
            sub -= 1e9
            fractional += 1
        }
        return (intervalStart + Int64((fractional * 1e8).rounded() / 1e8), Int32(sub + 0.5))
    }
}

extension BucketHeader {
    /// A variable-length record: the data columns packed, then 4 bytes of ticks.
    var variableRecordLength: Int { columns.reduce(4) { $0 + (Self.typeSizes[$1.type] ?? 8) } }
    var intervalsPerDay: Int64 { 86400 / timeframeSeconds }
}

/// The 24-byte slots of a run of intervals, read and written in one call each.
private struct SlotRun {
    let first: Int64
    var slots: [Int64]  // index, offset, length per interval

    init(fd: Int32, header: BucketHeader, first: Int64, last: Int64, path: String) throws {
        self.first = first
        let count = Int(last - first + 1)
        slots = [Int64](repeating: 0, count: count * 3)
        let offset = header.offset(ofIndex: first)
        let read = slots.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard read >= 0 else { throw DirectoryError.io(path: path, reason: "reading slots: \(String(cString: strerror(errno)))") }
        // A file ends where its last slot does until data is appended: what is not there is empty.
    }

    func slot(_ index: Int64) -> (index: Int64, offset: Int64, length: Int64) {
        let k = Int(index - first) * 3
        return (Int64(littleEndian: slots[k]), Int64(littleEndian: slots[k + 1]), Int64(littleEndian: slots[k + 2]))
    }

    mutating func set(_ index: Int64, offset: Int64, length: Int64) {
        let k = Int(index - first) * 3
        slots[k] = index.littleEndian; slots[k + 1] = offset.littleEndian; slots[k + 2] = length.littleEndian
    }

    /// Runs of the sorted indices whose gaps are short enough to read across.
    static func runs(_ indices: [Int64]) -> [(first: Int64, last: Int64)] {
        var runs: [(first: Int64, last: Int64)] = []
        for i in indices {
            if let last = runs.last?.last, i - last <= 4096 { runs[runs.count - 1].last = i } else { runs.append((i, i)) }
        }
        return runs
    }
}

private func readBlock(fd: Int32, offset: Int64, length: Int64, path: String) throws -> [UInt8] {
    var block = [UInt8](repeating: 0, count: Int(length))
    let read = block.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(offset)) }
    guard read == Int(length) else { throw DirectoryError.corrupt(path: path, reason: "a block of \(length) bytes at \(offset) is cut short") }
    do { return try Snappy.decode(block) } catch { throw DirectoryError.corrupt(path: path, reason: "block at \(offset): \(error)") }
}

extension DirectoryWriter {
    /// Appends every key range of a dataset to variable-length buckets (an optional `Nanoseconds`
    /// i4 column is the records' sub-second time, as on the server).
    public func append(_ dataset: WriteDataSet) throws {
        for k in dataset.keys {
            try append(key: k.key, names: dataset.names, columns: dataset.columns, rows: k.start..<(k.start + k.count))
        }
    }

    func append(key: String, names: [String], columns: [ColumnValues], rows range: Range<Int>) throws {
        let (dir, tf) = try prepareKey(key)
        guard case let .int64(epochs)? = columns.first else { throw DirectoryError.badKey(key) }
        let nanosColumn = names.firstIndex(of: "Nanoseconds")
        var nanos: [Int32]?
        if let n = nanosColumn {
            guard case let .int32(v) = columns[n] else {
                throw DirectoryError.schemaMismatch(key: key, path: dir, file: [], dataset: names, reason: "Nanoseconds must be i4")
            }
            nanos = v
        }
        let data = zip(names, columns).enumerated().filter { $0.offset != 0 && $0.offset != nanosColumn }.map(\.element)
        let schema = data.map { (name: $0.0, type: $0.1.wireType) }
        let years = Self.rowsByYear(epochs, range)
        var headers: [Int: BucketHeader] = [:]
        for (year, _) in years {
            headers[year] = try existingHeader(path: "\(dir)/\(year).bin", key: key, timeframe: tf, schema: schema, variable: true)
        }
        for (year, rows) in years {
            let path = "\(dir)/\(year).bin"
            let header = try headers[year] ?? createHeader(path: path, year: year, timeframe: tf, schema: schema, variable: true)
            try appendRecords(rows, epochs: epochs, nanos: nanos, data: data, header: header, path: path)
        }
    }

    /// Each interval's records, old and new, sorted stably by ticks into a new block written past
    /// the end of the file (never over the old one), fsynced, and only then the slots pointed at
    /// the new blocks: a crash leaves every interval with its old records or its new ones.
    private func appendRecords(_ rows: [Int], epochs: [Int64], nanos: [Int32]?, data: [(String, ColumnValues)], header: BucketHeader,
                               path: String) throws {
        let yearStart = UTCCalendar.epoch(year: header.year, month: 1, day: 1)
        let perDay = header.intervalsPerDay, length = header.variableRecordLength
        let position = Dictionary(uniqueKeysWithValues: data.enumerated().map { ($1.0, $0) })
        let sources = header.columns.compactMap { position[$0.name] }
        let widths = header.columns.map { BucketHeader.typeSizes[$0.type] ?? 8 }
        // (interval, ticks, row), by interval then ticks, rows of equal ticks in their order.
        var keyed = rows.map { row -> (index: Int64, ticks: UInt32, row: Int) in
            let index = header.index(of: epochs[row], yearStart: yearStart)
            let start = header.epoch(ofIndex: index, yearStart: yearStart)
            return (index, IntervalTicks.ticks(epoch: epochs[row], nanos: nanos?[row] ?? 0, intervalStart: start, intervalsPerDay: perDay), row)
        }
        keyed.sort { ($0.index, $0.ticks, $0.row) < ($1.index, $1.ticks, $1.row) }
        let fd = open(path, O_RDWR)
        guard fd >= 0 else { throw DirectoryError.io(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let end = lseek(fd, 0, SEEK_END)
        var blocks: [UInt8] = []
        var runs = try SlotRun.runs(keyed.map(\.index)).map { try SlotRun(fd: fd, header: header, first: $0.first, last: $0.last, path: path) }
        var r = 0, k = 0
        while k < keyed.count {
            let index = keyed[k].index
            var stop = k
            while stop < keyed.count && keyed[stop].index == index { stop += 1 }
            while runs[r].first + Int64(runs[r].slots.count / 3) <= index { r += 1 }
            let old = runs[r].slot(index)
            var records = old.index != 0 ? try readBlock(fd: fd, offset: old.offset, length: old.length, path: path) : []
            guard records.count % length == 0 else {
                throw DirectoryError.corrupt(path: path, reason: "interval \(index) holds \(records.count) bytes, not whole \(length)-byte records")
            }
            let oldCount = records.count / length
            records.reserveCapacity(records.count + (stop - k) * length)
            for (ticks, row) in keyed[k..<stop].map({ ($0.ticks, $0.row) }) {
                for (c, source) in sources.enumerated() {
                    data[source].1.withUnsafeBytes { raw in records += raw[(row * widths[c])..<((row + 1) * widths[c])] }
                }
                withUnsafeBytes(of: ticks.littleEndian) { records += $0 }
            }
            // Merge: the old records are sorted; the new ones go after old ones of equal ticks.
            if oldCount > 0 {
                let ticksOf = { (i: Int) in records.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: (i + 1) * length - 4, as: UInt32.self) } }
                let order = (0..<(records.count / length)).sorted { (ticksOf($0), $0) < (ticksOf($1), $1) }
                if order != Array(order.indices) {
                    var sorted: [UInt8] = []
                    sorted.reserveCapacity(records.count)
                    for i in order { sorted += records[(i * length)..<((i + 1) * length)] }
                    records = sorted
                }
            }
            let block = Snappy.encodeLiterals(records)
            runs[r].set(index, offset: Int64(end) + Int64(blocks.count), length: Int64(block.count))
            blocks += block
            k = stop
        }
        do {
            try blocks.withUnsafeBytes { try writeFully(fd, $0, offset: Int64(end)) }
            guard fsync(fd) == 0 else { throw DirectoryError.io(path: path, reason: "fsync: \(String(cString: strerror(errno)))") }
            for run in runs {
                try run.slots.withUnsafeBytes { try writeFully(fd, $0, offset: header.offset(ofIndex: run.first)) }
            }
        } catch let failure as WriteFailure {
            throw DirectoryError.io(path: path, reason: "\(failure)")
        }
        guard fsync(fd) == 0 else { throw DirectoryError.io(path: path, reason: "fsync: \(String(cString: strerror(errno)))") }
    }
}

extension DirectoryReader {
    /// A variable-length bucket's records with epochs in [from, to] as the server returns them:
    /// Epoch, the data columns, Nanoseconds; by time, equal times in the order written.
    func readVariable(key: String, files: [String], from: Int64?, to: Int64?) throws -> (names: [String], columns: [ColumnValues])? {
        var names: [String]?, types: [String] = []
        var epochs: [Int64] = [], nanos: [Int32] = []
        var raw: [[UInt8]] = []
        for path in files {
            let header = try BucketHeader(readingFile: path)
            let fd = open(path, O_RDONLY)
            guard fd >= 0 else { throw DirectoryError.io(path: path, reason: String(cString: strerror(errno))) }
            defer { close(fd) }
            if names == nil {
                names = ["Epoch"] + header.columns.map(\.name) + ["Nanoseconds"]
                types = header.columns.map(\.type)
                raw = Array(repeating: [], count: types.count)
            }
            let yearStart = UTCCalendar.epoch(year: header.year, month: 1, day: 1)
            let yearEnd = UTCCalendar.epoch(year: header.year + 1, month: 1, day: 1) - 1
            let lo = max(from ?? .min, yearStart), hi = min(to ?? .max, yearEnd)
            guard lo <= hi else { continue }
            let widths = types.map { BucketHeader.typeSizes[$0] ?? 8 }, length = header.variableRecordLength
            var first = header.index(of: lo, yearStart: yearStart)
            let last = header.index(of: hi, yearStart: yearStart)
            while first <= last {  // a million slots (24 MB) at a time, skipping the file's holes
                let data = lseek(fd, off_t(header.offset(ofIndex: first)), 3)  // SEEK_DATA (Linux; Glibc does not export it)
                guard data >= 0 else { break }  // nothing written past here
                first = max(first, (Int64(data) - Int64(BucketHeader.size)) / 24 + 1)
                guard first <= last else { break }
                let run = try SlotRun(fd: fd, header: header, first: first, last: min(last, first + 999_999), path: path)
                for i in 0..<(run.slots.count / 3) {
                    let slot = run.slot(run.first + Int64(i))
                    guard slot.index != 0 else { continue }
                    let records = try readBlock(fd: fd, offset: slot.offset, length: slot.length, path: path)
                    let start = header.epoch(ofIndex: slot.index, yearStart: yearStart)
                    records.withUnsafeBytes { bytes in
                        var at = 0
                        while at + length <= bytes.count {
                            let ticks = bytes.loadUnaligned(fromByteOffset: at + length - 4, as: UInt32.self)
                            let t = IntervalTicks.time(ticks: UInt32(littleEndian: ticks), intervalStart: start, intervalsPerDay: header.intervalsPerDay)
                            if t.epoch >= lo && t.epoch <= hi {
                                epochs.append(t.epoch); nanos.append(t.nanos)
                                var column = at
                                for c in 0..<types.count {
                                    raw[c] += bytes[column..<(column + widths[c])]
                                    column += widths[c]
                                }
                            }
                            at += length
                        }
                    }
                }
                first = run.first + Int64(run.slots.count / 3)
            }
        }
        guard let names else { return nil }
        return (names, [.int64(epochs)] + zip(types, raw).map { ColumnValues(wireType: $0, bytes: $1) ?? .int64([]) } + [.int32(nanos)])
    }
}
