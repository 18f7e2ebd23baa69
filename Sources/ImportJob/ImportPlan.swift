import BinanceSource
import Foundation
import KlineArchive
import MarketStore

/// One planned unit: an archive and the MarketStore key its rows go to.
public struct PlannedUnit: Sendable, Equatable {
    public var address: ArchiveAddress
    public var key: String
    public var id: String { address.remotePath }
}

/// The units of a job: market x symbol x interval x period, where a period is a month when its
/// monthly archive is published and a day otherwise (the current month, and months whose monthly
/// archive is late). Daily units of months now covered by a monthly unit are listed as superseded.
public struct ImportPlan: Sendable {
    public var units: [PlannedUnit]
    /// Manifest ids of daily units replaced by a monthly unit of this plan.
    public var superseded: [String: String]  // daily id -> monthly id

    public static func make(spec: JobSpec, symbols: [String], today: ArchivePeriod, lister: ArchiveLister,
                            from: ArchivePeriod? = nil, manifest: Manifest) async throws -> ImportPlan {
        let last = spec.to ?? ArchivePeriod(year: today.year, month: today.month)!
        let months = PeriodPlanner.months(from: from ?? spec.from, to: last)
        var units: [PlannedUnit] = []
        var superseded: [String: String] = [:]
        for symbol in symbols {
            for interval in spec.intervals {
                let timeframe = try Timeframe.forBinanceInterval(interval.name)
                let key = "\(symbol)/\(timeframe)/\(spec.attributeGroup)"
                let published = Set(try await lister.periods(market: spec.market, symbol: symbol, interval: interval, daily: false))
                for month in months {
                    for period in PeriodPlanner.periods(for: month, today: today, monthlyPublished: published.contains(month)) {
                        let address = try ArchiveAddress(market: spec.market, symbol: symbol, interval: interval, period: period)
                        units.append(PlannedUnit(address: address, key: key))
                        if period.kind == .month {
                            // Daily units of this month imported earlier are replaced by it.
                            for day in 1...UTCCalendar.daysInMonth(year: month.year, month: month.month) {
                                let daily = try ArchiveAddress(market: spec.market, symbol: symbol, interval: interval,
                                                               period: ArchivePeriod(year: month.year, month: month.month, day: day)!)
                                if let record = manifest.units[daily.remotePath], record.status != .superseded {
                                    superseded[daily.remotePath] = address.remotePath
                                }
                            }
                        }
                    }
                }
            }
        }
        return ImportPlan(units: units, superseded: superseded)
    }
}
