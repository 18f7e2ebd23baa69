import Foundation

/// Retries with exponential backoff and jitter: the one retry loop of listings, downloads, REST
/// requests and MarketStore writes (`attempts`), and the backoff of follow's reconnects.
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

    public static func retryAfter(_ response: HTTPResponse) -> Double? {
        response.headers["retry-after"].flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
    }

    /// What one attempt came to.
    public enum Attempt<T> {
        case success(T)
        /// Worth another try after `wait` seconds (nil: the backoff). `failure` is thrown when no
        /// attempt is left, or when the wait is longer than `maxRetryAfter`.
        case retry(wait: Double?, failure: Error)
    }

    /// The one retry loop (listings, downloads, REST, writes): `body(attempt)` until it succeeds
    /// or throws, sleeping between attempts; cancellation ends the sleep (CancellationError).
    public func attempts<T>(isolation: isolated (any Actor)? = #isolation, _ body: (Int) async throws -> Attempt<T>) async throws -> T {
        var attempt = 0
        while true {
            attempt += 1
            switch try await body(attempt) {
            case let .success(value): return value
            case let .retry(wait, failure):
                let delay = wait ?? backoff(after: attempt)
                guard attempt < maxAttempts, delay <= maxRetryAfter else { throw failure }
                try await Task.sleep(nanoseconds: UInt64(max(0, delay) * 1e9))
            }
        }
    }
}
