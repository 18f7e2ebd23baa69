import Foundation

/// Why a write request was refused or failed: the `kind` label of
/// binance_import_write_errors_total, the same list for `run` and `follow`.
public enum WriteErrorKind: String, CaseIterable, Codable, Sendable {
    case schema, timeframe, refused, directory, transport
}

/// What the writer counts, in one place: a run's summary and follow's /metrics both read it.
public struct WriteCounters: Sendable, Equatable {
    /// Write requests sent.
    public var requests = 0
    /// Per key: rows acknowledged, acknowledged requests that carried them, and when the last
    /// acknowledgement was (UTC s).
    public var rowsByKey: [String: Int] = [:]
    public var requestsByKey: [String: Int] = [:]
    public var lastWriteByKey: [String: Double] = [:]
    /// Requests refused or failed, by kind.
    public var errorsByKind: [WriteErrorKind: Int] = [:]

    public init() {}

    package mutating func acknowledged(_ keys: [(key: String, rows: Int)], at time: Double) {
        for k in keys {
            rowsByKey[k.key, default: 0] += k.rows
            requestsByKey[k.key, default: 0] += 1
            lastWriteByKey[k.key] = time
        }
    }
}
