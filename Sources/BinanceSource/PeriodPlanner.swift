import Columnar
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

    /// Today's UTC date as a day period, within the periods' years (1970...9999): an epoch
    /// outside them is the nearest end, never a trap.
    public static func today(now: Int64) -> ArchivePeriod {
        let c = UTCCalendar.civil(min(max(now, 0), lastEpoch))
        return ArchivePeriod(year: c.year, month: c.month, day: c.day) ?? ArchivePeriod.epochDay
    }

    private static let lastEpoch = UTCCalendar.epoch(year: 9999, month: 12, day: 31)
}
