import KlineArchive

/// Which archives cover a range of months, given what is published and today's date (UTC):
/// a month whose monthly archive is published uses it; the current month, and a past month
/// whose monthly archive is not out yet (it can lag by days), use the daily archives (up to
/// yesterday for the current month). When the monthly archive appears later, the plan switches
/// to it, and re-importing it overwrites the same slots.
public enum PeriodPlanner {
    /// Months `from` through `to`, inclusive.
    public static func months(from: ArchivePeriod, to: ArchivePeriod) -> [ArchivePeriod] {
        var out: [ArchivePeriod] = []
        var (y, m) = (from.year, from.month)
        while (y, m) <= (to.year, to.month) {
            out.append(ArchivePeriod(year: y, month: m)!)
            (y, m) = m == 12 ? (y + 1, 1) : (y, m + 1)
        }
        return out
    }

    /// The periods to fetch for `month`: the month itself, or its days (those before `today`).
    /// `monthlyPublished` says whether the monthly archive exists.
    public static func periods(for month: ArchivePeriod, today: ArchivePeriod, monthlyPublished: Bool) -> [ArchivePeriod] {
        let isCurrentOrFuture = (month.year, month.month) >= (today.year, today.month)
        if !isCurrentOrFuture && monthlyPublished { return [month] }
        let days = UTCCalendar.daysInMonth(year: month.year, month: month.month)
        return (1...days).compactMap { ArchivePeriod(year: month.year, month: month.month, day: $0) }
            .filter { $0.start < today.start }
    }

    /// Today's UTC date as a day period.
    public static func today(now: Int64) -> ArchivePeriod {
        let iso = UTCCalendar.iso8601(now)  // yyyy-mm-ddT...
        let y = Int(iso.prefix(4))!, m = Int(iso.dropFirst(5).prefix(2))!, d = Int(iso.dropFirst(8).prefix(2))!
        return ArchivePeriod(year: y, month: m, day: d)!
    }
}
