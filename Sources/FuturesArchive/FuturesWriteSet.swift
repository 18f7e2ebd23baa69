import Columnar
import MarketStoreModel

extension FuturesDataset {
    /// The bucket of a symbol's rows: `BTCUSDT/1H/FUNDING`, `BTCUSDT/5Min/METRICS`.
    public func key(symbol: String, attributeGroup: String? = nil) -> BucketKey {
        BucketKey(symbol: symbol, timeframe: timeframe, attributeGroup: attributeGroup ?? defaultAttributeGroup)
    }
}

extension FuturesBatch {
    /// The batch as one Write into its bucket: Epoch, then the dataset's columns in their order.
    public func dataSet(_ dataset: FuturesDataset, symbol: String, attributeGroup: String? = nil) throws -> WriteDataSet {
        let key = dataset.key(symbol: symbol, attributeGroup: attributeGroup)
        return try WriteDataSet(names: ["Epoch"] + dataset.columns.map(\.name), columns: [.int64(epochs)] + columns,
                                keys: [.init(key: key.description, start: 0, count: count)])
    }
}
