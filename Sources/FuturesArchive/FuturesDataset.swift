import Columnar

/// The futures datasets that are not klines (`futures/um` and `futures/cm`): funding rates
/// (monthly archives, one row per funding) and the 5-minute metrics (daily archives: open
/// interest, long/short ratios). Each has its CSV header, its MarketStore columns and bucket.
public enum FuturesDataset: String, CaseIterable, Sendable, Codable {
    case fundingRate, metrics

    /// The header line the archives carry, field by field.
    public var header: [String] {
        switch self {
        case .fundingRate: return ["calc_time", "funding_interval_hours", "last_funding_rate"]
        case .metrics:
            return ["create_time", "symbol", "sum_open_interest", "sum_open_interest_value", "count_toptrader_long_short_ratio",
                    "sum_toptrader_long_short_ratio", "count_long_short_ratio", "sum_taker_long_short_vol_ratio"]
        }
    }

    /// MarketStore columns after Epoch: every value float64 (the exact decimal's nearest double),
    /// the funding interval as an integer.
    public var columns: [(name: String, type: String)] {
        switch self {
        case .fundingRate: return [("Rate", "f8"), ("IntervalHours", "i8")]
        case .metrics:
            return [("SumOpenInterest", "f8"), ("SumOpenInterestValue", "f8"), ("CountTopTraderLongShortRatio", "f8"),
                    ("SumTopTraderLongShortRatio", "f8"), ("CountLongShortRatio", "f8"), ("SumTakerLongShortVolRatio", "f8")]
        }
    }

    /// The bucket's timeframe: funding happens on the hour (every 8, 4 or 1 hours), so 1H holds
    /// any schedule with one slot per funding; metrics come every 5 minutes.
    public var timeframe: String { self == .fundingRate ? "1H" : "5Min" }

    /// Seconds of one slot of the bucket.
    public var slotSeconds: Int64 { self == .fundingRate ? 3600 : 300 }

    public var defaultAttributeGroup: String { self == .fundingRate ? "FUNDING" : "METRICS" }

    /// Archives are monthly for funding rates, daily for metrics.
    public var isMonthly: Bool { self == .fundingRate }

    /// Binance's REST serves its history (`to: now` continues the archives from it): funding.
    public var continuesFromREST: Bool { self == .fundingRate }

    /// Its rows are labelled by a time whose convention changed (metrics: period end or start).
    public var hasLabelConvention: Bool { self == .metrics }
}

/// The columns of one decoded archive: epochs (UTC seconds, the slot's start) and one column per
/// `FuturesDataset.columns`, in that order.
public struct FuturesBatch: Sendable, Equatable {
    public var epochs: [Int64]
    public var columns: [ColumnValues]
    /// Rows of the period before the archive's own (an end-labelled metrics day's 00:00 row):
    /// the import writes them only when no archive of that period does.
    public var before: FuturesRows?
    public var count: Int { epochs.count }

    public init(epochs: [Int64], columns: [ColumnValues]) {
        (self.epochs, self.columns) = (epochs, columns)
    }

    /// Decoded rows, in slot order.
    init(sorted rows: [FuturesArchiveDecoder.Row], dataset: FuturesDataset) {
        switch dataset {
        case .fundingRate: columns = [.float64(rows.map { $0.values[0] }), .int64(rows.map(\.hours))]
        case .metrics: columns = (0..<dataset.columns.count).map { k in .float64(rows.map { $0.values[k] }) }
        }
        epochs = rows.map(\.epoch)
    }

    /// `earlier`'s rows (all before this batch's first slot), then these.
    public func after(_ earlier: FuturesRows) -> FuturesBatch {
        var out = FuturesBatch(epochs: earlier.epochs + epochs, columns: [])
        for (theirs, mine) in zip(earlier.columns, columns) {
            var column = theirs
            column.append(contentsOf: mine)
            out.columns.append(column)
        }
        return out
    }
}

/// Rows apart from a batch's own (see `FuturesBatch.before`).
public struct FuturesRows: Sendable, Equatable {
    public var epochs: [Int64]
    public var columns: [ColumnValues]
    init(_ batch: FuturesBatch) { (epochs, columns) = (batch.epochs, batch.columns) }
}
