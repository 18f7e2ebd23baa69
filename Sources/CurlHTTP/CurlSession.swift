import CCurl
import Foundation

/// What an HTTP exchange returned.
public struct HTTPResponse: Sendable {
    public var status: Int
    /// Header names in lower case; the last value wins.
    public var headers: [String: String]
    public var body: [UInt8]
}

/// A transport failure: the request got no HTTP response (refused, reset, timed out, closed).
public struct TransportError: Error, CustomStringConvertible, Equatable {
    /// libcurl's error code (e.g. 7 connect failed, 28 timeout, 52 empty reply, 56 receive error).
    public let code: Int
    public let message: String
    /// The URL without credentials (see `redactCredentials`): errors end up in logs.
    public let url: String
    public init(code: Int, message: String, url: String) {
        self.code = code
        self.message = message
        self.url = redactCredentials(url)
    }
    public var description: String {
        if code == Int(CURLE_OPERATION_TIMEDOUT.rawValue), message.contains("slower than") || message.contains("low speed") || message.contains("Operation too slow") {
            return "\(url): \(message): the server stopped sending and receiving (curl error \(code))"
        }
        return "\(url): \(message) (curl error \(code))"
    }
    public var isTimeout: Bool { code == Int(CURLE_OPERATION_TIMEDOUT.rawValue) }
}

/// `url` with any user and password replaced by `***`, and the values of query parameters that
/// carry secrets (token, key, signature, password, secret) too: for every message, log line,
/// report and state row. CI logs are often public.
public func redactCredentials(_ url: String) -> String {
    var text = url
    if let scheme = text.range(of: "://") {
        let rest = text[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        if let at = rest[..<authorityEnd].lastIndex(of: "@") {
            text = String(text[..<scheme.upperBound]) + "***@" + String(text[text.index(after: at)...])
        }
    }
    guard let query = text.firstIndex(of: "?") else { return text }
    let secret = ["token", "key", "signature", "password", "secret"]
    let parts = text[text.index(after: query)...].split(separator: "&", omittingEmptySubsequences: false).map { part -> String in
        let pair = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard pair.count == 2, secret.contains(where: { pair[0].lowercased().contains($0) }) else { return String(part) }
        return "\(pair[0])=***"
    }
    return String(text[...query]) + parts.joined(separator: "&")
}

/// Timeouts of a session, in seconds.
public struct HTTPTimeouts: Sendable {
    public var connect: Double
    public var total: Double
    /// Abort when fewer than `lowSpeedBytes` per second move (either way) for `lowSpeedSeconds`
    /// (0: off). On by default: a server that accepts a connection and never answers is found in
    /// 20 s, while a slow transfer that keeps moving runs until `total`.
    public var lowSpeedBytes: Int
    public var lowSpeedSeconds: Int
    public init(connect: Double = 10, total: Double = 120, lowSpeedBytes: Int = 1, lowSpeedSeconds: Int = 20) {
        self.connect = connect
        self.total = total
        self.lowSpeedBytes = lowSpeedBytes
        self.lowSpeedSeconds = lowSpeedSeconds
    }
}

/// One libcurl easy handle, reused across requests so the connection is kept alive. Requests run
/// one at a time on the session's own thread; `perform` suspends the caller meanwhile. With a
/// `CurlMulti`, the session's transfers run on the multi's thread instead and share its connections
/// (HTTP/2 streams) with the other sessions of that multi.
// @unchecked: the curl handle (an OpaquePointer) is only touched on `queue`, one transfer at a time
// (and by the multi's thread while its transfer runs there).
public final class CurlSession: @unchecked Sendable {
    static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

    private let handle: OpaquePointer
    private let queue = DispatchQueue(label: "binance-import.curl")
    public let timeouts: HTTPTimeouts
    /// The CA certificates to trust instead of the system's: the given file, else the
    /// CURL_CA_BUNDLE or SSL_CERT_FILE variable, as curl users expect.
    public let caFile: String?
    /// Where the transfers run when not on this session's own thread.
    public let multi: CurlMulti?
    /// HTTP/2 where a TLS server offers it (libcurl's default); false keeps to HTTP/1.1.
    public let http2: Bool

    public init(timeouts: HTTPTimeouts = .init(), caFile: String? = nil, multi: CurlMulti? = nil, http2: Bool = true) {
        _ = Self.globalInit
        handle = OpaquePointer(curl_easy_init())
        self.timeouts = timeouts
        self.multi = multi
        self.http2 = http2
        let environment = ProcessInfo.processInfo.environment
        self.caFile = caFile ?? environment["CURL_CA_BUNDLE"] ?? environment["SSL_CERT_FILE"]
    }

    deinit { curl_easy_cleanup(UnsafeMutableRawPointer(handle)) }

    /// Sends one request and returns the response (any status); throws `TransportError` when no
    /// response arrived. `sink`, when given, receives the body instead of the returned buffer.
    public func perform(method: String, url: String, headers: [String] = [], body: [UInt8]? = nil,
                        sink: (@Sendable (UnsafeRawBufferPointer) -> Bool)? = nil) async throws -> HTTPResponse {
        // Cancelling the waiting task ends the transfer (its progress callback reads the flag):
        // a stop reaches a stalled download or write within a second.
        let cancelled = CancelFlag()
        do {
            let response = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    queue.async {
                        let exchange = self.setUp(method: method, url: url, headers: headers, sink: sink, cancelled: cancelled)
                        let h = UnsafeMutableRawPointer(self.handle)
                        if let multi = self.multi {
                            if let body {  // the transfer outlives this call: libcurl keeps a copy
                                ccurl_setopt_offset(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
                                _ = body.withUnsafeBytes { ccurl_setopt_pointer(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!)) }
                            }
                            // Where HTTP/2 may be spoken (over TLS), wait for a connection that may
                            // carry it as a stream rather than open another; once that connection
                            // turns out HTTP/1.1, the waiting transfers open their own (tested).
                            if self.http2 && url.hasPrefix("https://") { ccurl_setopt_long(h, CURLOPT_PIPEWAIT, 1) }
                            multi.start(self.handle) { code in
                                continuation.resume(with: Result { try self.finish(exchange, code, url: url) })
                            }
                            return
                        }
                        let code: CURLcode
                        if let body {
                            code = body.withUnsafeBytes { bytes in
                                ccurl_setopt_pointer(h, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
                                ccurl_setopt_offset(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bytes.count))
                                return curl_easy_perform(h)
                            }
                        } else {
                            code = curl_easy_perform(h)
                        }
                        continuation.resume(with: Result { try self.finish(exchange, code, url: url) })
                    }
                }
            } onCancel: {
                cancelled.set()
            }
            try Task.checkCancellation()
            return response
        } catch where Task.isCancelled {
            throw CancellationError()  // not a transport error to retry
        }
    }

    /// A transfer's cancellation flag, set from any thread, read by libcurl's progress callback.
    private final class CancelFlag: Sendable {
        // nonisolated(unsafe): the pointer never changes; the flag behind it is only read and
        // written by C's atomics.
        nonisolated(unsafe) let pointer: UnsafeMutableRawPointer? = ccurl_flag_new()
        func set() { if let pointer { ccurl_flag_set(pointer) } }
        deinit { if let pointer { ccurl_flag_free(pointer) } }
    }

    /// One request's state, alive until its transfer ends: libcurl keeps pointers into it.
    // @unchecked: used by one thread at a time (this session's, then the multi's while the
    // transfer runs there, then the one that finishes it), handed over through the multi's lock.
    private final class Exchange: @unchecked Sendable {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        var sink: (@Sendable (UnsafeRawBufferPointer) -> Bool)?
        var headerList: UnsafeMutablePointer<curl_slist>?
        let errorBuffer: UnsafeMutablePointer<CChar>
        let cancelled: CancelFlag

        init(cancelled: CancelFlag) {
            self.cancelled = cancelled
            errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
            errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        }

        deinit {
            curl_slist_free_all(headerList)
            errorBuffer.deallocate()
        }
    }

    /// Sets the handle up for one request, all but its body. (libcurl copies the strings it is given.)
    private func setUp(method: String, url: String, headers: [String], sink: (@Sendable (UnsafeRawBufferPointer) -> Bool)?,
                       cancelled: CancelFlag) -> Exchange {
        let h = UnsafeMutableRawPointer(handle)
        curl_easy_reset(h)
        let exchange = Exchange(cancelled: cancelled)
        exchange.sink = sink
        for header in headers { exchange.headerList = curl_slist_append(exchange.headerList, header) }
        let context = Unmanaged.passUnretained(exchange).toOpaque()  // `finish` keeps it alive
        _ = url.withCString { ccurl_setopt_string(h, CURLOPT_URL, $0) }
        ccurl_setopt_pointer(h, CURLOPT_ERRORBUFFER, exchange.errorBuffer)
        ccurl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
        ccurl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(timeouts.connect * 1000))
        ccurl_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(timeouts.total * 1000))
        if timeouts.lowSpeedSeconds > 0 {
            ccurl_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, timeouts.lowSpeedBytes)
            ccurl_setopt_long(h, CURLOPT_LOW_SPEED_TIME, timeouts.lowSpeedSeconds)
        }
        ccurl_enable_abort(h, cancelled.pointer)
        if !http2 { ccurl_setopt_long(h, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1) }
        if let caFile { _ = caFile.withCString { ccurl_setopt_string(h, CURLOPT_CAINFO, $0) } }
        // Credentials for a host from ~/.netrc (or $NETRC) when the URL has none:
        // a password neither in a job file (git) nor on a command line (ps).
        ccurl_setopt_long(h, CURLOPT_NETRC, Int(CURL_NETRC_OPTIONAL.rawValue))
        if let netrc = ProcessInfo.processInfo.environment["NETRC"] { _ = netrc.withCString { ccurl_setopt_string(h, CURLOPT_NETRC_FILE, $0) } }
        ccurl_setopt_pointer(h, CURLOPT_HTTPHEADER, exchange.headerList.map { UnsafeMutableRawPointer($0) })
        if method == "HEAD" {
            ccurl_setopt_long(h, CURLOPT_NOBODY, 1)
        } else if method != "GET" {
            _ = method.withCString { ccurl_setopt_string(h, CURLOPT_CUSTOMREQUEST, $0) }
        }
        ccurl_setopt_callback(h, CURLOPT_WRITEFUNCTION) { data, size, count, ctx in
            let exchange = Unmanaged<Exchange>.fromOpaque(ctx!).takeUnretainedValue()
            let n = size * count
            let chunk = UnsafeRawBufferPointer(start: data, count: n)
            if let sink = exchange.sink { return sink(chunk) ? n : 0 }
            exchange.body.append(contentsOf: chunk)
            return n
        }
        ccurl_setopt_pointer(h, CURLOPT_WRITEDATA, context)
        ccurl_setopt_callback(h, CURLOPT_HEADERFUNCTION) { data, size, count, ctx in
            let exchange = Unmanaged<Exchange>.fromOpaque(ctx!).takeUnretainedValue()
            let n = size * count
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: n), as: UTF8.self)
            if line.hasPrefix("HTTP/") { exchange.headers = [:] }  // a new response (e.g. after 100 Continue)
            if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].lowercased()
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
                exchange.headers[name] = value
            }
            return n
        }
        ccurl_setopt_pointer(h, CURLOPT_HEADERDATA, context)
        return exchange
    }

    /// The response of a finished transfer, or its transport error.
    private func finish(_ exchange: Exchange, _ code: CURLcode, url: String) throws -> HTTPResponse {
        guard code == CURLE_OK else {
            let detail = String(cString: exchange.errorBuffer)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw TransportError(code: Int(code.rawValue), message: message, url: url)
        }
        var status = 0
        ccurl_getinfo_long(UnsafeMutableRawPointer(handle), CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: exchange.headers, body: exchange.body)
    }
}
