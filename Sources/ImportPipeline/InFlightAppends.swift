import Foundation
import MarketStore

/// The append requests sent and not yet answered, one small file per key beside the manifest
/// (`<manifest>.inflight/`). A run killed with a request in flight leaves its file behind.
///
/// Why: MarketStore keeps applying a request whose client died, and a query sees its rows only
/// as they are flushed (observed on v4.1.23: a re-run started at once read back 76,675 of a
/// 100,000-row request still being applied, and appended the other 23,325 a second time). So
/// before reconciling a key that has a request in flight, the next run waits for it to land.
package struct InFlightAppends: Sendable {
    package struct Request: Codable, Equatable, Sendable {
        package var from: Int64
        package var to: Int64
        package var rows: Int
        /// When it was sent (seconds since 1970).
        package var sentAt: Double
        /// The slowest answered append of that run before it: how long one request takes there.
        package var slowestAnswer: Double
    }

    package let directory: String

    package init(manifest: String) { directory = manifest + ".inflight" }

    private func path(_ key: String) -> String { directory + "/" + key.replacingOccurrences(of: "/", with: "~") + ".json" }

    /// Records a request before its first byte is sent.
    package func sending(key: String, _ request: Request) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try JSONEncoder().encode(request).write(to: URL(fileURLWithPath: path(key)))
    }

    /// The request was answered (acknowledged or refused): nothing of it is still to come.
    package func answered(key: String) {
        try? FileManager.default.removeItem(atPath: path(key))
    }

    /// The request a run sent to `key` and never saw answered, if any.
    package func pending(key: String) -> Request? {
        guard let data = FileManager.default.contents(atPath: path(key)) else { return nil }
        return try? JSONDecoder().decode(Request.self, from: data)
    }

    /// How long to wait after a request was sent before its rows can be taken as all landed:
    /// twice the slowest answer its run saw, at least a second, at most the stall window.
    package static func settleTime(_ request: Request, stallSeconds: Int) -> Double {
        min(Double(stallSeconds), max(1, 2 * request.slowestAnswer))
    }
}
