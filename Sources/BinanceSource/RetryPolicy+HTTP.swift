import CurlHTTP
import Foundation

/// HTTP answers of Binance's archive host: transport errors (reset, timeout, refused) and HTTP
/// 5xx are retried; 429 and 418 wait for Retry-After (or the backoff when absent); every other
/// status is returned to the caller (404 means "not published").
extension RetryPolicy {
    /// Runs `request` until it gives a response that is not retryable, or attempts run out.
    /// Returns the response and the number of attempts made.
    public func run(url: String, _ request: () async throws -> HTTPResponse) async throws -> (response: HTTPResponse, attempts: Int) {
        try await attempts { attempt in
            do {
                let response = try await request()
                let failure = SourceError.http(url: url, status: response.status, attempts: attempt)
                switch response.status {
                case 429, 418: return .retry(wait: Self.retryAfter(response), failure: failure)
                case 500...599: return .retry(wait: Self.retryAfter(response).map { min($0, maxRetryAfter) }, failure: failure)
                default: return .success((response, attempt))
                }
            } catch let e as TransportError {
                return .retry(wait: nil, failure: SourceError.transport(url: url, message: e.message, attempts: attempt))
            }
        }
    }
}
