import CurlHTTP
import MsgPack

/// Why a MarketStore call failed. Server-side failures carry the server's own text and the key.
public enum MarketStoreError: Error, CustomStringConvertible, Equatable {
    /// No HTTP response: refused, reset, timed out, or the connection was closed (the real server
    /// closes it without a response when a request makes it panic).
    case transport(TransportError)
    /// An HTTP status other than 200 (415 wrong content type, 405 wrong method, ...).
    case http(status: Int, body: String)
    /// A 200 with an empty body: the server could not read the request (bad msgpack, no id).
    case emptyBody(method: String)
    /// A body that is not a msgpack RPC response.
    case malformedResponse(method: String, reason: String)
    /// A top-level RPC error (e.g. -32000 `no files returned from query parse`).
    case rpc(method: String, code: Int64, message: String)
    /// A Write, GetInfo, Create or Destroy request the server refused, with its message.
    case refused(method: String, keys: [String], message: String)
    /// The dataset is inconsistent (checked before sending: the real server crashes on some).
    case invalidDataSet(String)
    /// The bucket exists with another schema; names both.
    case schemaMismatch(key: String, bucket: [ColumnSchema], dataset: [ColumnSchema], reason: String)
    /// A timeframe the server accepts on write but cannot serve back.
    case unservableTimeframe(key: String, timeframe: String)

    /// The HTTP status, for `.http`.
    public var status: Int? {
        if case let .http(status, _) = self { return status }
        return nil
    }

    /// Credentials refused (401, 403, 407): by MarketStore's proxy, since MarketStore has none.
    public var isAuthentication: Bool { [401, 403, 407].contains(status ?? 0) }

    public var description: String {
        switch self {
        case let .transport(e): return "MarketStore unreachable: \(e)"
        case .http(401, _), .http(403, _), .http(407, _):
            return "MarketStore (or the proxy in front of it) refused the credentials: HTTP \(status ?? 0)"
        case let .http(status, body):
            // One line: a proxy's HTML page says nothing its status does not.
            let first = body.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            return "MarketStore answered HTTP \(status)" + (first.isEmpty ? "" : ": \(first.prefix(120))")
        case let .emptyBody(method): return "MarketStore answered \(method) with an empty body (it could not read the request)"
        case let .malformedResponse(method, reason): return "MarketStore's answer to \(method) is not a valid RPC response: \(reason)"
        case let .rpc(method, code, message): return "\(method) failed: \(message) (code \(code))"
        case let .refused(method, keys, message): return "\(method) refused for \(keys.joined(separator: ", ")): \(message)"
        case let .invalidDataSet(reason): return "invalid dataset: \(reason)"
        case let .schemaMismatch(key, bucket, dataset, reason):
            return "\(key): \(reason); bucket has \(ColumnSchema.describe(bucket)), dataset has \(ColumnSchema.describe(dataset))"
        case let .unservableTimeframe(key, tf):
            return "\(key): MarketStore accepts writes to timeframe \(tf) but cannot serve them back; use one of \(Timeframe.servable.joined(separator: ", "))"
        }
    }
}

/// A column's name and MarketStore type string (`f4`, `f8`, `i8`, `i4`, ...).
public struct ColumnSchema: Equatable, Sendable, CustomStringConvertible {
    public var name: String
    public var type: String
    public init(_ name: String, _ type: String) {
        self.name = name
        self.type = type
    }
    public var description: String { "\(name):\(type)" }
    static func describe(_ columns: [ColumnSchema]) -> String { "[" + columns.map(\.description).joined(separator: " ") + "]" }

    /// GetInfo's type numbers (utils/io/datatypes.go), as type strings.
    static let typeByCode: [Int64: String] = [0: "f4", 1: "i4", 2: "f8", 3: "i8", 4: "i8", 5: "i1", 9: "i2", 10: "u1", 11: "u2", 12: "u4", 13: "u8"]
}
