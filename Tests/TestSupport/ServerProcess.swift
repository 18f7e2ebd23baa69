import CurlHTTP
import Foundation

/// A Python test server (Tests/servers/*.py) run on an ephemeral loopback port: started with
/// `--port 0`, it prints `listening on http://127.0.0.1:PORT/...` once bound.
// @unchecked: Foundation's Process is not Sendable; a test starts, controls and stops its
// server from one task at a time.
public final class ServerProcess: @unchecked Sendable {
    public static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let shared = ProcessInfo.processInfo.environment["BINANCE_IMPORT_SHARED"].map { URL(fileURLWithPath: $0) }
        ?? repoRoot.deletingLastPathComponent().appendingPathComponent("shared")

    public struct StartFailure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Under CI (`CI=true`) a test server that does not start fails the test: a skip there would
    /// let CI pass with the end-to-end suites not run. Elsewhere the test is skipped with why.
    public static var mustStart: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    let process = Process()
    /// The URL the server printed, e.g. `http://127.0.0.1:40123/rpc`.
    public let url: String
    public let port: Int
    public var base: String { "http://127.0.0.1:\(port)" }
    private let session = CurlSession(timeouts: .init(connect: 2, total: 10))

    public init(script: String, arguments: [String] = []) throws {
        let out = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.repoRoot.appendingPathComponent(script).path] + arguments + ["--port", "0"]
        process.standardOutput = out
        try process.run()
        var line = Data()
        let handle = out.fileHandleForReading
        while !line.contains(0x0A) {
            let chunk = handle.availableData
            if chunk.isEmpty { throw StartFailure(description: "\(script) did not start (python3 with msgpack and numpy needed)") }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "http://"), let end = text.range(of: "\n") else { throw StartFailure(description: "unexpected banner: \(text)") }
        url = String(text[range.lowerBound..<end.lowerBound])
        port = Int(url.dropFirst("http://127.0.0.1:".count).prefix(while: \.isNumber))!
    }

    deinit { stop() }

    /// Stops the server. (Polls instead of `waitUntilExit`, which can hang when called from a
    /// Swift concurrency thread on Linux.)
    public func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<200 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// POSTs a JSON command to `/_control`.
    public func control(_ command: [String: Any]) async throws {
        let body = try JSONSerialization.data(withJSONObject: command)
        _ = try await session.perform(method: "POST", url: base + "/_control", headers: ["Content-Type: application/json"], body: [UInt8](body))
    }

    /// GETs `/_stats` as a JSON object.
    public func stats() async throws -> [String: Any] {
        let response = try await session.perform(method: "GET", url: base + "/_stats")
        return try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
    }
}

/// Runs a command to completion with its output (stdout and stderr together) in a file, so that
/// no pipe can fill up; polls instead of `waitUntilExit` (see `ServerProcess.stop`).
public func runCommand(_ executable: String, _ arguments: [String], directory: URL? = nil,
                       environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    if let environment { process.environment = environment }
    let log = FileManager.default.temporaryDirectory.appendingPathComponent("command-\(getpid())-\(UUID().uuidString.prefix(8)).log")
    FileManager.default.createFile(atPath: log.path, contents: nil)
    defer { try? FileManager.default.removeItem(at: log) }
    let handle = try FileHandle(forWritingTo: log)
    process.standardOutput = handle
    process.standardError = handle
    try process.run()
    while process.isRunning { usleep(20_000) }
    try handle.close()
    return (process.terminationStatus, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
}

/// A small seeded generator (SplitMix64) for reproducible test data.
public struct SplitMix64: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A one-member zip of `data`, stored (method 0) or as a raw-deflate stored block (method 8).
public func oneMemberZip(_ data: [UInt8], method: UInt16 = 0, name: String = "BTCUSDT-1m-2024-01-01.csv") -> [UInt8] {
    func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    var crc: UInt32 = 0xFFFF_FFFF
    for b in data { crc ^= UInt32(b); for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 } }
    crc ^= 0xFFFF_FFFF
    // Deflate "stored blocks" by hand: a final block of type 0 (valid raw deflate, method 8).
    let payload = method == 8 ? [UInt8(1)] + le(UInt16(data.count)) + le(~UInt16(data.count)) + data : data
    let name = Array(name.utf8)
    var out = le(UInt32(0x0403_4b50)) + le(UInt16(20)) + le(UInt16(0)) + le(method) + le(UInt32(0)) + le(crc) + le(UInt32(payload.count)) + le(UInt32(data.count))
    out += le(UInt16(name.count)) + le(UInt16(0)) + name + payload
    let cd = out.count
    out += le(UInt32(0x0201_4b50)) + le(UInt16(20)) + le(UInt16(20)) + le(UInt16(0)) + le(method) + le(UInt32(0)) + le(crc) + le(UInt32(payload.count)) + le(UInt32(data.count))
    out += le(UInt16(name.count)) + [UInt8](repeating: 0, count: 12) + le(UInt32(0)) + name
    out += le(UInt32(0x0605_4b50)) + le(UInt16(0)) + le(UInt16(0)) + le(UInt16(1)) + le(UInt16(1)) + le(UInt32(out.count - cd)) + le(UInt32(cd)) + le(UInt16(0))
    return out
}
