import Foundation

/// Where archives come from: an HTTP(S) base URL, or a local mirror with the same tree (a
/// `file://` URL or a plain directory).
public enum SourceLocation: Equatable, Sendable {
    case http(base: String)
    case directory(path: String)

    /// Served over HTTP (and so each request costs a round trip), not read from a mirror.
    public var isHTTP: Bool {
        if case .http = self { return true }
        return false
    }

    public static let defaultBase = "https://data.binance.vision/"
    public static let defaultListing = "https://s3-ap-northeast-1.amazonaws.com/data.binance.vision"

    public init(_ spec: String) {
        if spec.hasPrefix("http://") || spec.hasPrefix("https://") {
            self = .http(base: spec.hasSuffix("/") ? spec : spec + "/")
        } else if spec.hasPrefix("file://") {
            self = .directory(path: String(spec.dropFirst("file://".count)))
        } else {
            self = .directory(path: spec)
        }
    }

    public func url(of remotePath: String) -> String {
        switch self {
        case let .http(base): return base + remotePath
        case let .directory(path): return (path as NSString).appendingPathComponent(remotePath)
        }
    }
}
