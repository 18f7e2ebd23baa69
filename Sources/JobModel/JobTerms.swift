import CurlHTTP
import Foundation
import KlineArchive

/// A job file error: the file, the key and the reason. Raised before any work is done.
public struct JobFileError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let key: String
    public let reason: String
    public init(file: String, key: String, reason: String) {
        (self.file, self.key, self.reason) = (file, key, reason)
    }
    public var description: String { key.isEmpty ? "\(file): \(reason)" : "\(file): key '\(key)': \(reason)" }
}

/// Where the rows go.
public enum ImportTarget: Equatable, Sendable {
    case marketstore(url: String)
    case directory(path: String)

    public init(_ spec: String) {
        self = spec.hasPrefix("http://") || spec.hasPrefix("https://") ? .marketstore(url: spec) : .directory(path: spec)
    }

    /// A `--target` as given on the command line: an http(s) URL or a directory path. Anything
    /// else that looks like an address (another scheme, `host:port`) is refused rather than made
    /// into a folder of that name.
    public static func parse(commandLine text: String) throws -> ImportTarget {
        if text.hasPrefix("http://") || text.hasPrefix("https://") { return .marketstore(url: text) }
        if let scheme = text.range(of: "://") {
            throw JobFileError(file: "command line", key: "--target", reason: "\(text[..<scheme.lowerBound]):// is not a target: give an http(s) MarketStore URL such as http://127.0.0.1:5993/rpc, or a directory")
        }
        let hostPort = text.split(separator: ":", omittingEmptySubsequences: false)
        if hostPort.count == 2, !hostPort[0].isEmpty, !hostPort[0].contains("/"), let port = Int(hostPort[1]), (1...65535).contains(port) {
            throw JobFileError(file: "command line", key: "--target", reason: "\(text) looks like host:port; a MarketStore target is a URL: http://\(text)/rpc")
        }
        guard !text.isEmpty else { throw JobFileError(file: "command line", key: "--target", reason: "empty") }
        return .directory(path: text)
    }

    /// What the state records: a directory's absolute path, or the URL without credentials.
    public var normalized: String {
        switch self {
        case let .marketstore(url): return redactCredentials(url)
        case let .directory(path):
            let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
            return URL(fileURLWithPath: absolute).standardized.path
        }
    }

    /// For messages: the URL without credentials, or the path as given.
    public var display: String {
        switch self {
        case let .marketstore(url): return redactCredentials(url)
        case let .directory(path): return path
        }
    }
}

/// Where a job ends (`to:` in the job file, `--to`).
public enum JobEnd: Sendable, Equatable {
    /// Through this month's archive.
    case month(ArchivePeriod)
    /// Through the newest archive (up to yesterday, UTC).
    case latest
    /// The newest archive, then REST klines up to the last closed candle.
    case now

    /// `YYYY-MM`, `latest` or `now`; nil for anything else.
    package init?(_ text: String) {
        switch text {
        case "latest": self = .latest
        case "now": self = .now
        default:
            guard let month = JobSpec.parseMonth(text) else { return nil }
            self = .month(month)
        }
    }
}
