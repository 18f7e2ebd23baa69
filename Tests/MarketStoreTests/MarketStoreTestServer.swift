import CurlHTTP
import Foundation
import XCTest

/// Runs Tests/servers/marketstore_server.py on an ephemeral loopback port for one test.
final class MarketStoreTestServer {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let process = Process()
    let url: String
    let port: Int

    init(sink: Bool = false) throws {
        let out = Pipe()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.repoRoot.appendingPathComponent("Tests/servers/marketstore_server.py").path, "--port", "0"] + (sink ? ["--sink"] : [])
        process.standardOutput = out
        try process.run()
        // The server prints "listening on http://127.0.0.1:PORT/rpc" once it is bound.
        var line = Data()
        let handle = out.fileHandleForReading
        while !line.contains(0x0A) {
            let chunk = handle.availableData
            if chunk.isEmpty { throw XCTSkip("the MarketStore test server did not start (python3 with msgpack and numpy needed)") }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "http://"), let end = text.range(of: "\n") else { throw XCTSkip("unexpected server banner: \(text)") }
        url = String(text[range.lowerBound..<end.lowerBound])
        port = Int(url.split(separator: ":").last!.split(separator: "/").first!)!
    }

    deinit { stop() }

    /// Stops the server. (Polls instead of `waitUntilExit`, which can hang when called from a
    /// Swift concurrency thread on Linux.)
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        for _ in 0..<200 where process.isRunning { usleep(10_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    private let session = CurlSession(timeouts: .init(connect: 2, total: 10))

    /// Sets faults, e.g. `["fail_write": 1, "error": "disk full"]`.
    func control(_ command: [String: Any]) async throws {
        let body = try JSONSerialization.data(withJSONObject: command)
        _ = try await session.perform(method: "POST", url: "http://127.0.0.1:\(port)/_control", headers: ["Content-Type: application/json"], body: [UInt8](body))
    }

    /// Write calls seen, and the keys each carried.
    func stats() async throws -> (writeCalls: Int, writeKeys: [[String]]) {
        let response = try await session.perform(method: "GET", url: "http://127.0.0.1:\(port)/_stats")
        let json = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
        return (json["write_calls"] as! Int, json["write_keys"] as! [[String]])
    }
}
