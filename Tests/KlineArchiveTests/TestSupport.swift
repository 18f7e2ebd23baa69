import CZlib
import Foundation
import TestSupport
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
            throw missing("../shared/binance is absent (looked in \(dir.path)); the real-archive tests need it")
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
