import Foundation
import TestSupport
import XCTest

/// Tests/servers/marketstore_server.py on an ephemeral loopback port, for one test.
final class MarketStoreTestServer {
    static let repoRoot = ServerProcess.repoRoot
    let server: ServerProcess
    var url: String { server.url }

    init(sink: Bool = false) throws {
        server = try ServerProcess.required(script: "Tests/servers/marketstore_server.py", arguments: sink ? ["--sink"] : [])
    }

    func stop() { server.stop() }

    /// Sets faults, e.g. `["fail_write": 1, "error": "disk full"]`.
    func control(_ command: [String: Any]) async throws { try await server.control(command) }

    /// Write calls seen, and the keys each carried.
    func stats() async throws -> (writeCalls: Int, writeKeys: [[String]]) {
        let json = try await server.stats()
        return (json["write_calls"] as! Int, json["write_keys"] as! [[String]])
    }
}
