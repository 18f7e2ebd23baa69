// decode-bench: times the kline decoder against plain inflate of the same archive, alternating the
// two in one process, and reports medians. Driven by bench/decode_bench.py (`make bench-decode`).
//
//   decode-bench compare ARCHIVE [--runs N] [--dtype float32|float64]   -> JSON timings, both inflaters (ISA-L also without the row kernel)
//   decode-bench rss ARCHIVE [--dtype ...]                              -> JSON peak RSS of one decode
//   decode-bench trades KLINES.zip TRADES.zip [--runs N]                 -> JSON timings, kline and trades decode alternating
//                                                                          (each also without the row kernel), and trades inflate only
//   decode-bench trades-rss TRADES.zip                                  -> JSON peak RSS of one trades decode
// --allocator glibc keeps glibc's allocator defaults instead of the importer's (BatchMemory).
import Foundation
import KlineArchive
import TradeArchive

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Peak resident set of this process (VmHWM). Not getrusage's ru_maxrss: Linux carries that over
/// from the parent across fork and exec, so a big parent would show up here.
func peakRSSBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) else { return -1 }
    return kb * 1024
}

/// Inflate only: the same reader and 1 MiB buffer as the decoder, no parsing.
func inflateOnly(_ path: String, _ engine: InflateEngine = .isal) throws -> UInt64 {
    let reader = try ZipEntryReader(path: path, engine: engine)
    let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 20)
    defer { buffer.deallocate() }
    while try reader.read(into: buffer, capacity: 1 << 20) > 0 {}
    return reader.bytesProduced
}

/// The importer's decode path: streaming batches of 65,536 rows, all nine columns (`rowKernel`
/// false: the portable Swift path for every row).
func decode(_ path: String, _ floatType: FloatType, _ engine: InflateEngine = .isal, rowKernel: Bool = true) throws -> KlineReport {
    try KlineArchiveDecoder.stream(path: path, options: .init(columns: KlineColumn.allCases, floatType: floatType, inflater: engine,
                                                              rowKernel: rowKernel),
                                   chunkRows: 65536) { _ in }
}

/// The trades decode path: a spot trades archive streamed in chunks of 100,000 rows, float64
/// (`rowKernel` false: the Swift fields for every row).
func decodeTrades(_ path: String, rowKernel: Bool = true) throws -> TradeReport {
    try TradeArchiveDecoder.decode(path: path, market: .spot, as: Double.self, chunkRows: 100_000, rowKernel: rowKernel) { _ in }
}

func emit(_ object: [String: Any]) {
    do {
        print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
    } catch {
        FileHandle.standardError.write(Data("decode-bench: \(error)\n".utf8))
        exit(1)
    }
}

var args = Array(CommandLine.arguments.dropFirst())
guard args.count >= 2 else {
    FileHandle.standardError.write(Data("usage: decode-bench compare|rss ARCHIVE [--runs N] [--dtype float32|float64]\n".utf8))
    exit(2)
}
let command = args.removeFirst(), path = args.removeFirst()
let second = command == "trades" && !args.isEmpty ? args.removeFirst() : ""
var runs = 7
var allocator = "batches"  // as the importer sets it; "glibc" keeps glibc's defaults (for the side-by-side figure)
var floatType = FloatType.float32
while !args.isEmpty {
    let flag = args.removeFirst()
    guard let value = args.first else { break }
    args.removeFirst()
    if flag == "--runs" { runs = Int(value) ?? runs }
    if flag == "--allocator" { allocator = value }
    if flag == "--dtype" { floatType = FloatType(rawValue: value) ?? floatType }
}

if allocator == "batches" { BatchMemory.reuseFreedBatches() }
do {
    switch command {
    case "rss":
        let t0 = now(), c0 = cpuSeconds()
        let report = try decode(path, floatType)
        emit(["rows": report.rowsInFile, "csv_bytes": report.csvBytes, "seconds": now() - t0,
              "cpu_seconds": cpuSeconds() - c0, "peak_rss_bytes": peakRSSBytes()])
    case "inflate":
        let t0 = now()
        let bytes = try inflateOnly(path)
        emit(["csv_bytes": bytes, "seconds": now() - t0, "peak_rss_bytes": peakRSSBytes()])
    case "compare":
        // Per run, for each inflater: inflate only, then decode, back to back; the engines alternate.
        _ = try inflateOnly(path)  // warm the page cache
        var times: [String: [Double]] = [:]
        var rows = 0, csvBytes: UInt64 = 0
        for _ in 0..<runs {
            for engine in InflateEngine.allCases {
                let t0 = now()
                csvBytes = try inflateOnly(path, engine)
                let t1 = now()
                rows = try decode(path, floatType, engine).rowsInFile
                let t2 = now()
                times["inflate_\(engine)", default: []].append(t1 - t0)
                times["decode_\(engine)", default: []].append(t2 - t1)
                if engine == .isal {  // the same decode without the row kernel, side by side
                    _ = try decode(path, floatType, engine, rowKernel: false)
                    times["decode_isal_swift", default: []].append(now() - t2)
                }
            }
        }
        var out: [String: Any] = ["rows": rows, "csv_bytes": csvBytes, "runs": runs, "dtype": floatType.rawValue]
        for (key, values) in times { out[key + "_seconds"] = values }
        emit(out)
    case "trades":
        // Per run: the kline archive, then the trades archive, decoded back to back (float64, as
        // trades are stored); the cost per row of each.
        _ = try inflateOnly(path)
        _ = try inflateOnly(second)
        var kline: [Double] = [], klineSwift: [Double] = [], trades: [Double] = [], tradesSwift: [Double] = [], tradesInflate: [Double] = []
        var klineRows = 0, tradeRows = 0
        for _ in 0..<runs {
            let t0 = now()
            klineRows = try decode(path, .float64).rowsInFile
            let t1 = now()
            tradeRows = try decodeTrades(second).rows
            let t2 = now()
            _ = try decode(path, .float64, rowKernel: false)  // both decoders on their Swift paths too
            let t3 = now()
            _ = try decodeTrades(second, rowKernel: false)
            let t4 = now()
            _ = try inflateOnly(second)
            kline.append(t1 - t0)
            trades.append(t2 - t1)
            klineSwift.append(t3 - t2)
            tradesSwift.append(t4 - t3)
            tradesInflate.append(now() - t4)
        }
        emit(["kline_rows": klineRows, "trade_rows": tradeRows, "runs": runs, "kline_seconds": kline, "trades_seconds": trades,
              "kline_swift_seconds": klineSwift, "trades_swift_seconds": tradesSwift, "trades_inflate_seconds": tradesInflate])
    case "trades-rss":
        let t0 = now()
        let report = try decodeTrades(path)
        emit(["rows": report.rows, "seconds": now() - t0, "peak_rss_bytes": peakRSSBytes()])
    default:
        FileHandle.standardError.write(Data("unknown command \(command)\n".utf8))
        exit(2)
    }
} catch {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
