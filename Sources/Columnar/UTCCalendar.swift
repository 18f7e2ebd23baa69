/// Proleptic Gregorian UTC arithmetic without Foundation's calendars (fast, and no time zones).
public enum UTCCalendar {
    /// Two digits (`07`) and four (`0987`), as dates are written.
    public static func pad2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
    public static func format4(_ v: Int) -> String { String(repeating: "0", count: max(0, 4 - String(v).count)) + String(v) }

    public static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    public static func epoch(year: Int, month: Int, day: Int) -> Int64 {
        daysFromCivil(year: year, month: month, day: day) * 86400
    }

    /// The UTC calendar year of an epoch second.
    public static func year(of epoch: Int64) -> Int {
        var y = Int(1970 + epoch / 31_556_952)  // close to the answer; then step to it
        while epoch < self.epoch(year: y, month: 1, day: 1) { y -= 1 }
        while epoch >= self.epoch(year: y + 1, month: 1, day: 1) { y += 1 }
        return y
    }

    /// Whether an epoch second falls on 1 January (UTC): the day MarketStore's 1D buckets lose.
    public static func isFirstOfJanuary(_ epoch: Int64) -> Bool {
        epoch - self.epoch(year: year(of: epoch), month: 1, day: 1) < 86400
    }

    /// The UTC civil date and second of the day of an epoch second (Hinnant's civil_from_days).
    public static func civil(_ epoch: Int64) -> (year: Int, month: Int, day: Int, second: Int) {
        var days = epoch / 86400
        var secs = epoch % 86400
        if secs < 0 { secs += 86400; days -= 1 }
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return (Int(y), Int(m), Int(d), Int(secs))
    }

    /// ISO 8601 UTC text of an epoch second, e.g. `2024-01-01T00:00:00Z`.
    public static func iso8601(_ epoch: Int64) -> String {
        let c = civil(epoch)
        return "\(format4(c.year))-\(pad2(c.month))-\(pad2(c.day))T\(pad2(c.second / 3600)):\(pad2(c.second / 60 % 60)):\(pad2(c.second % 60))Z"
    }
}

/// Division rounding toward minus infinity (epochs before 1970 stay on their day and slot).
@inline(__always) public func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}
