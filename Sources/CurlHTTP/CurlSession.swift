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
    public let url: String
    public var description: String { "\(url): \(message) (curl error \(code))" }
    public var isTimeout: Bool { code == Int(CURLE_OPERATION_TIMEDOUT.rawValue) }
}

/// Timeouts of a session, in seconds.
public struct HTTPTimeouts: Sendable {
    public var connect: Double
    public var total: Double
    /// Abort when fewer than `lowSpeedBytes` per second arrive for `lowSpeedSeconds` (0: off).
    public var lowSpeedBytes: Int
    public var lowSpeedSeconds: Int
    public init(connect: Double = 10, total: Double = 120, lowSpeedBytes: Int = 0, lowSpeedSeconds: Int = 0) {
        self.connect = connect
        self.total = total
        self.lowSpeedBytes = lowSpeedBytes
        self.lowSpeedSeconds = lowSpeedSeconds
    }
}

private let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_ALL)) }()

/// One libcurl easy handle, reused across requests so the connection is kept alive. Requests run
/// one at a time on the session's own thread; `perform` suspends the caller meanwhile.
// @unchecked: the curl handle (an OpaquePointer) is only touched on `queue`, one transfer at a time.
public final class CurlSession: @unchecked Sendable {
    private let handle: OpaquePointer
    private let queue = DispatchQueue(label: "binance-import.curl")
    public let timeouts: HTTPTimeouts

    public init(timeouts: HTTPTimeouts = .init()) {
        _ = globalInit
        handle = OpaquePointer(curl_easy_init())
        self.timeouts = timeouts
    }

    deinit { curl_easy_cleanup(UnsafeMutableRawPointer(handle)) }

    /// Sends one request and returns the response (any status); throws `TransportError` when no
    /// response arrived. `sink`, when given, receives the body instead of the returned buffer.
    public func perform(method: String, url: String, headers: [String] = [], body: [UInt8]? = nil,
                        sink: (@Sendable (UnsafeRawBufferPointer) -> Bool)? = nil) async throws -> HTTPResponse {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                continuation.resume(with: Result { try self.performNow(method: method, url: url, headers: headers, body: body, sink: sink) })
            }
        }
    }

    private final class Exchange {
        var body: [UInt8] = []
        var headers: [String: String] = [:]
        var sink: (@Sendable (UnsafeRawBufferPointer) -> Bool)?
    }

    private func performNow(method: String, url: String, headers: [String], body: [UInt8]?,
                            sink: (@Sendable (UnsafeRawBufferPointer) -> Bool)?) throws -> HTTPResponse {
        let h = UnsafeMutableRawPointer(handle)
        curl_easy_reset(h)
        let exchange = Exchange()
        exchange.sink = sink
        let context = Unmanaged.passRetained(exchange)
        defer { context.release() }

        var list: UnsafeMutablePointer<curl_slist>?
        for header in headers { list = curl_slist_append(list, header) }
        defer { curl_slist_free_all(list) }

        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        let code: CURLcode = url.withCString { urlPtr in
            method.withCString { methodPtr in
                do {
                    func run(_ bodyPtr: UnsafeRawBufferPointer?) -> CURLcode {
                        ccurl_setopt_string(h, CURLOPT_URL, urlPtr)
                        ccurl_setopt_pointer(h, CURLOPT_ERRORBUFFER, errorBuffer)
                        ccurl_setopt_long(h, CURLOPT_NOSIGNAL, 1)
                        ccurl_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Int(self.timeouts.connect * 1000))
                        ccurl_setopt_long(h, CURLOPT_TIMEOUT_MS, Int(self.timeouts.total * 1000))
                        if self.timeouts.lowSpeedSeconds > 0 {
                            ccurl_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, self.timeouts.lowSpeedBytes)
                            ccurl_setopt_long(h, CURLOPT_LOW_SPEED_TIME, self.timeouts.lowSpeedSeconds)
                        }
                        ccurl_setopt_pointer(h, CURLOPT_HTTPHEADER, list.map { UnsafeMutableRawPointer($0) })
                        if method == "HEAD" {
                            ccurl_setopt_long(h, CURLOPT_NOBODY, 1)
                        } else if method != "GET" {
                            ccurl_setopt_string(h, CURLOPT_CUSTOMREQUEST, methodPtr)
                        }
                        if let bodyPtr {
                            ccurl_setopt_pointer(h, CURLOPT_POSTFIELDS, UnsafeMutableRawPointer(mutating: bodyPtr.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!))
                            ccurl_setopt_offset(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(bodyPtr.count))
                        }
                        ccurl_setopt_callback(h, CURLOPT_WRITEFUNCTION) { data, size, count, ctx in
                            let exchange = Unmanaged<Exchange>.fromOpaque(ctx!).takeUnretainedValue()
                            let n = size * count
                            let chunk = UnsafeRawBufferPointer(start: data, count: n)
                            if let sink = exchange.sink { return sink(chunk) ? n : 0 }
                            exchange.body.append(contentsOf: chunk)
                            return n
                        }
                        ccurl_setopt_pointer(h, CURLOPT_WRITEDATA, context.toOpaque())
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
                        ccurl_setopt_pointer(h, CURLOPT_HEADERDATA, context.toOpaque())
                        return curl_easy_perform(h)
                    }
                    if let body { return body.withUnsafeBytes { run($0) } }
                    return run(nil)
                }
            }
        }
        guard code == CURLE_OK else {
            let detail = String(cString: errorBuffer)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            throw TransportError(code: Int(code.rawValue), message: message, url: url)
        }
        var status = 0
        ccurl_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
        return HTTPResponse(status: status, headers: exchange.headers, body: exchange.body)
    }
}
