import KlineArchive

/// Calendar arithmetic of the plan (UTC): months of a range, days of a month, today.
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

    /// The month `count` months before `month`.
    public static func months(back count: Int, from month: ArchivePeriod) -> ArchivePeriod {
        let index = month.year * 12 + (month.month - 1) - count
        return ArchivePeriod(year: index / 12, month: index % 12 + 1)!
    }

    /// The days of a month, as day periods.
    public static func days(of month: ArchivePeriod) -> [ArchivePeriod] {
        (1...UTCCalendar.daysInMonth(year: month.year, month: month.month)).map { ArchivePeriod(year: month.year, month: month.month, day: $0)! }
    }

    /// The day after `day`.
    public static func day(after day: ArchivePeriod) -> ArchivePeriod { today(now: day.end) }

    /// Today's UTC date as a day period.
    public static func today(now: Int64) -> ArchivePeriod {
        let iso = UTCCalendar.iso8601(now)  // yyyy-mm-ddT...
        let y = Int(iso.prefix(4))!, m = Int(iso.dropFirst(5).prefix(2))!, d = Int(iso.dropFirst(8).prefix(2))!
        return ArchivePeriod(year: y, month: m, day: d)!
    }
}
