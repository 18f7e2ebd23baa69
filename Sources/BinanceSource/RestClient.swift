import CurlHTTP
import Foundation
import KlineArchive

/// Why REST work failed.
public enum RestError: Error, CustomStringConvertible, Equatable {
    /// HTTP 418: the IP is banned (for `retryAfter` seconds); all REST work stops.
    case banned(url: String, retryAfter: Double?)
    /// A 4xx other than 418/429 (an unknown symbol: -1121), with Binance's message.
    case refused(url: String, status: Int, message: String)
    /// Retries ran out on 429, 5xx or the network.
    case gaveUp(url: String, reason: String, attempts: Int)
    case malformed(url: String, reason: String)

    public var description: String {
        switch self {
        case let .banned(url, retryAfter):
            return "\(url): HTTP 418, the IP is banned by Binance\(retryAfter.map { " for \(Int($0)) s" } ?? ""); all REST work stopped"
        case let .refused(url, status, message): return "\(url): HTTP \(status): \(message)"
        case let .gaveUp(url, reason, attempts): return "\(url): \(reason) after \(attempts) attempts"
        case let .malformed(url, reason): return "\(url): unexpected answer: \(reason)"
        }
    }
}

/// What the REST work used, for the summary.
public struct RestCounters: Sendable, Equatable {
    public var requests = 0
    /// The documented weight of the requests made.
    public var weight = 0
    /// The highest X-MBX-USED-WEIGHT-1M seen.
    public var maxUsedWeight = 0
    /// Times the client waited for the next minute to stay within its share of the limit.
    public var budgetWaits = 0
    /// 429 answers (each waited for Retry-After).
    public var rateLimited = 0

    public init() {}
}

/// One kline from REST, as the fields Binance sent: open and close time (ms, or µs when asked
/// for) and the 12 fields as text, ready to be parsed like an archive's CSV line.
public struct RestKline: Sendable, Equatable {
    public var openTime: Int64
    public var closeTime: Int64
    public var csvLine: String

    /// A time Binance sent, in ms: 16-digit (µs) times are divided down, as in the archives.
    public static func milliseconds(_ t: Int64) -> Int64 { t >= 100_000_000_000_000 ? t / 1000 : t }
}

/// One funding from REST: its time (ms, a few ms after the hour as in the archives) and rate.
public struct RestFunding: Sendable, Equatable {
    public var fundingTime: Int64
    public var rate: String
}

/// Binance's REST klines, within a share of the request weight limit: every request's documented
/// weight is checked against the X-MBX-USED-WEIGHT-1M of the last answer in the same minute of
/// server time; past the budget the client waits for the next minute. 429 waits for
/// Retry-After; 418 stops (`RestError.banned`); 5xx and network errors are retried with backoff.
public actor RestClient {
    public let baseURL: String
    public let rest: RestMarket
    /// The weight per minute this client allows itself (share x limit).
    public nonisolated let budget: Int
    let session: CurlSession
    let retry: RetryPolicy
    private var used = 0
    private var usedMinute: Int64 = -1
    /// Server time minus local time, in ms, from the last server time read.
    private var offsetMs: Int64 = 0
    public private(set) var counters = RestCounters()

    public init(baseURL: String, market: Market, weightLimit: Int, share: Double, retry: RetryPolicy = .init()) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.rest = RestMarket(market)
        self.budget = max(1, Int(Double(weightLimit) * share))
        self.session = CurlSession(timeouts: .init(connect: 10, total: 60))
        self.retry = retry
    }

    private func localMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
    private var serverNowMs: Int64 { localMs() + offsetMs }

    /// The server's time in ms (`/api/v3/time`, `/fapi/v1/time`, `/dapi/v1/time`); later budget
    /// minutes are reckoned on it.
    public func serverTime() async throws -> Int64 {
        let url = baseURL + rest.timePath
        let response = try await get(url, weight: rest.timeWeight)
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
              let time = (object["serverTime"] as? NSNumber)?.int64Value else {
            throw RestError.malformed(url: url, reason: "no serverTime in \(String(decoding: response.body.prefix(200), as: UTF8.self))")
        }
        offsetMs = time - localMs()
        return time
    }

    /// Every kline of `instrument` with an open time in [fromMs, toMs], oldest first: requests of
    /// at most `maxLimit` klines whose window holds no more than that (so the answer is the same
    /// whether the endpoint counts from startTime or, as COIN-M does, back from endTime).
    public func klines(dataset: KlineDataset, instrument: String, interval: KlineInterval, fromMs: Int64, toMs: Int64) async throws -> [RestKline] {
        guard let seconds = interval.seconds else { throw RestError.malformed(url: baseURL, reason: "\(interval.name) has no fixed length") }
        let step = seconds * 1000
        let limit = rest.maxLimit
        var out: [RestKline] = []
        var start = fromMs
        while start <= toMs {
            let end = min(toMs, start + Int64(limit) * step - 1)
            let url = baseURL + rest.klinesPath(dataset) + "?\(dataset.instrumentParameter)=\(instrument)&interval=\(Self.restInterval(interval))"
                + "&startTime=\(start)&endTime=\(end)&limit=\(limit)"
            let response = try await get(url, weight: rest.klinesWeight(limit: limit))
            out += try Self.parse(response.body, url: url)
            start = end + 1
        }
        return out
    }

    /// Every funding of `symbol` with a funding time in [fromMs, toMs], oldest first, as sent:
    /// the time in ms and the rate's own digits. Pages of `fundingLimit` follow on after the last
    /// time received.
    public func fundingRates(symbol: String, fromMs: Int64, toMs: Int64) async throws -> [RestFunding] {
        var out: [RestFunding] = []
        var start = fromMs
        while start <= toMs {
            let url = baseURL + rest.fundingRatePath + "?symbol=\(symbol)&startTime=\(start)&endTime=\(toMs)&limit=\(rest.fundingLimit)"
            let page = try Self.parseFunding(try await get(url, weight: rest.fundingWeight).body, url: url)
            out += page.filter { $0.fundingTime >= start && $0.fundingTime <= toMs }
            guard page.count >= rest.fundingLimit, let last = page.last?.fundingTime, last >= start else { break }
            start = last + 1
        }
        return out
    }

    /// `[{"symbol": ..., "fundingTime": ms, "fundingRate": "-0.00003449", ...}]`: the time an
    /// integer, the rate a string kept as sent for the exact parser.
    static func parseFunding(_ body: [UInt8], url: String) throws -> [RestFunding] {
        guard let rows = try? JSONSerialization.jsonObject(with: Data(body)) as? [Any] else {
            throw RestError.malformed(url: url, reason: "not a JSON array: \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        return try rows.enumerated().map { n, row in
            guard let object = row as? [String: Any], let time = object["fundingTime"] as? NSNumber, let timeValue = Int64(time.stringValue), timeValue >= 0,
                  let rate = object["fundingRate"] as? String, !rate.isEmpty, rate.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E }) else {
                throw RestError.malformed(url: url, reason: "funding \(n) is not {fundingTime: ms, fundingRate: \"decimal\"}: \(row)")
            }
            return RestFunding(fundingTime: timeValue, rate: rate)
        }
    }

    /// Binance's REST name of an interval: `1M` for a month (`1mo` in archive names).
    static func restInterval(_ interval: KlineInterval) -> String { interval.name == "1mo" ? "1M" : interval.name }

    /// The answer as klines. Times are JSON integers, prices and volumes strings (kept as sent, so
    /// the exact parser sees Binance's own digits), the trade count an integer.
    static func parse(_ body: [UInt8], url: String) throws -> [RestKline] {
        guard let rows = try? JSONSerialization.jsonObject(with: Data(body)) as? [Any] else {
            throw RestError.malformed(url: url, reason: "not a JSON array: \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        return try rows.enumerated().map { n, row in
            guard let fields = row as? [Any], fields.count >= 12 else { throw RestError.malformed(url: url, reason: "kline \(n) is not an array of 12 fields") }
            var text: [String] = []
            var times: [Int64] = []
            for (i, field) in fields.prefix(12).enumerated() {
                if let s = field as? String, ![0, 6].contains(i) {
                    text.append(s)
                } else if let number = field as? NSNumber, [0, 6, 8].contains(i), number.stringValue.allSatisfy(\.isASCII),
                          let value = Int64(number.stringValue), value >= 0 {
                    // Digits only, and in range: an integer past Int64 is malformed, not a crash.
                    text.append(number.stringValue)
                    if i != 8 { times.append(value) }
                } else {
                    throw RestError.malformed(url: url, reason: "kline \(n) field \(i) is \(field)")
                }
            }
            return RestKline(openTime: times[0], closeTime: times[1], csvLine: text.joined(separator: ","))
        }
    }

    /// One GET within the budget, with Binance's rate-limit answers handled.
    func get(_ url: String, weight: Int) async throws -> HTTPResponse {
        try await waitForBudget(weight)
        return try await retry.attempts { attempt in
            do {
                let response = try await session.perform(method: "GET", url: url)
                counters.requests += 1
                counters.weight += weight
                if let header = response.headers["x-mbx-used-weight-1m"], let value = Int(header.trimmingCharacters(in: .whitespaces)) {
                    used = value
                    usedMinute = serverNowMs / 60_000
                    counters.maxUsedWeight = max(counters.maxUsedWeight, value)
                }
                switch response.status {
                case 200: return .success(response)
                case 418: throw RestError.banned(url: url, retryAfter: RetryPolicy.retryAfter(response))
                case 429:
                    counters.rateLimited += 1
                    let wait = RetryPolicy.retryAfter(response)
                    let reason = wait.map { "HTTP 429 with Retry-After \(Int($0)) s" } ?? "HTTP 429"
                    return .retry(wait: wait, failure: RestError.gaveUp(url: url, reason: reason, attempts: attempt))
                case 500...599:
                    return .retry(wait: nil, failure: RestError.gaveUp(url: url, reason: "HTTP \(response.status)", attempts: attempt))
                default:
                    throw RestError.refused(url: url, status: response.status, message: Self.message(response.body))
                }
            } catch let e as TransportError {
                return .retry(wait: nil, failure: RestError.gaveUp(url: url, reason: e.message, attempts: attempt))
            }
        }
    }

    /// Waits for the next minute of server time when `weight` more would pass the budget.
    private func waitForBudget(_ weight: Int) async throws {
        let minute = serverNowMs / 60_000
        if minute != usedMinute {
            used = 0
            usedMinute = minute
        }
        guard used + weight > budget else { return }
        counters.budgetWaits += 1
        let next = (minute + 1) * 60_000 + 250  // a little past the boundary
        try await Task.sleep(nanoseconds: UInt64(max(0, next - serverNowMs)) * 1_000_000)
        used = 0
        usedMinute = serverNowMs / 60_000
    }

    /// Binance's error message (`{"code":-1121,"msg":"Invalid symbol."}`), or the body's start.
    static func message(_ body: [UInt8]) -> String {
        if let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any], let msg = object["msg"] as? String {
            return "\(msg)\((object["code"] as? NSNumber).map { " (code \($0))" } ?? "")"
        }
        return String(decoding: body.prefix(200), as: UTF8.self)
    }
}
