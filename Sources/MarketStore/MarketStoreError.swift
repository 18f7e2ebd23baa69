import CurlHTTP
import MarketStoreModel
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
    /// The bucket exists with another schema; names both.
    case schemaMismatch(key: String, bucket: [ColumnSchema], dataset: [ColumnSchema], reason: String)

    /// The HTTP status, for `.http`.
    public var status: Int? {
        if case let .http(status, _) = self { return status }
        return nil
    }

    /// Why the server could not be reached (a transport failure), for "MarketStore at X is
    /// unreachable: <why>"; nil for an answer.
    public var unreachableReason: String? {
        if case let .transport(e) = self { return "\(e)" }
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
        case let .schemaMismatch(key, bucket, dataset, reason):
            return "\(key): \(reason); bucket has \(ColumnSchema.describe(bucket)), dataset has \(ColumnSchema.describe(dataset))"
        }
    }
}
