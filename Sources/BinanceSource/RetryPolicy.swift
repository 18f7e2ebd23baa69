import CurlHTTP
import Foundation

/// Retries with exponential backoff and jitter: transport errors (reset, timeout, refused) and
/// HTTP 5xx are retried; 429 and 418 wait for Retry-After (or the backoff when absent); every
/// other status is returned to the caller (404 means "not published").
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var baseDelay: Double
    public var maxDelay: Double
    /// Longest Retry-After honoured; beyond it the request fails rather than stall the job.
    public var maxRetryAfter: Double
    /// Relative spread of each delay (0.25: 75%..125% of the nominal delay).
    public var jitter: Double

    public init(maxAttempts: Int = 5, baseDelay: Double = 1, maxDelay: Double = 60, maxRetryAfter: Double = 600, jitter: Double = 0.25) {
        self.maxAttempts = maxAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
        self.jitter = jitter
    }

    /// The delay before attempt `attempt + 1` (attempt counts from 1).
    public func backoff(after attempt: Int) -> Double {
        let nominal = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
        return nominal * (1 + Double.random(in: -jitter...jitter))
    }

    static func retryAfter(_ response: HTTPResponse) -> Double? {
        response.headers["retry-after"].flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// Runs `request` until it gives a response that is not retryable, or attempts run out.
    /// Returns the response and the number of attempts made.
    public func run(url: String, _ request: () async throws -> HTTPResponse) async throws -> (response: HTTPResponse, attempts: Int) {
        var attempt = 0
        while true {
            attempt += 1
            var wait: Double
            do {
                let response = try await request()
                switch response.status {
                case 429, 418:
                    guard attempt < maxAttempts else { throw SourceError.http(url: url, status: response.status, attempts: attempt) }
                    wait = Self.retryAfter(response) ?? backoff(after: attempt)
                    if wait > maxRetryAfter { throw SourceError.http(url: url, status: response.status, attempts: attempt) }
                case 500...599:
                    guard attempt < maxAttempts else { throw SourceError.http(url: url, status: response.status, attempts: attempt) }
                    wait = Self.retryAfter(response).map { min($0, maxRetryAfter) } ?? backoff(after: attempt)
                default:
                    return (response, attempt)
                }
            } catch let e as TransportError {
                guard attempt < maxAttempts else { throw SourceError.transport(url: url, message: e.message, attempts: attempt) }
                wait = backoff(after: attempt)
            }
            try await Task.sleep(nanoseconds: UInt64(max(0, wait) * 1e9))
        }
    }

    /// `run` returning only the response (for callers that do not report attempts).
    public func run(url: String, session: CurlSession, _ request: () async throws -> HTTPResponse) async throws -> HTTPResponse {
        try await run(url: url, request).response
    }
}
