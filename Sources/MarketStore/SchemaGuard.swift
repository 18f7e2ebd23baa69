import MarketStoreModel
/// Protects writes from MarketStore's silent traps (reference: the real server stores columns of
/// the same names in another order SCRAMBLED, and silently converts types). Before the first
/// write to a key it asks GetInfo and then:
/// - same names and types in another order: the columns are sent in the bucket's order;
/// - a type differs: refused with both schemas (unless `allowTypeConversion`);
/// - names differ: refused; a variable-length bucket: refused (klines need fixed-length ones);
/// - a timeframe the server cannot serve back: refused (unless `allowUnservableTimeframes`).
public actor SchemaGuard {
    public let client: MarketStoreClient
    public let allowTypeConversion: Bool
    public let allowUnservableTimeframes: Bool
    /// Column order per key, once checked.
    private var orders: [String: [String]] = [:]

    public init(client: MarketStoreClient, allowTypeConversion: Bool = false, allowUnservableTimeframes: Bool = false) {
        self.client = client
        self.allowTypeConversion = allowTypeConversion
        self.allowUnservableTimeframes = allowUnservableTimeframes
    }

    /// Writes the dataset, checked and reordered per bucket. Keys whose buckets keep their columns
    /// in different orders go in separate requests.
    public func write(_ dataset: WriteDataSet) async throws {
        var groups: [[String]: Set<String>] = [:]
        for k in dataset.keys {
            groups[try await order(for: k.key, dataset: dataset), default: []].insert(k.key)
        }
        for (order, keys) in groups.sorted(by: { $0.key.joined() < $1.key.joined() }) {
            var part = dataset.restricted(to: keys)
            if order != part.names { part = try part.reordered(order) }
            try await client.write(part)
        }
    }

    /// The column order to send for `key`, checking the bucket's schema the first time.
    public func order(for key: String, dataset: WriteDataSet) async throws -> [String] {
        if let known = orders[key] { return known }
        let timeframe = BucketKey(key)?.timeframe ?? key  // a WriteDataSet's keys are checked on construction
        if !allowUnservableTimeframes, !Timeframe.isServable(timeframe) {
            throw MarketStoreModelError.unservableTimeframe(key: key, timeframe: timeframe)
        }
        let mine = dataset.schema
        guard let info = try await client.getInfo(key) else {
            orders[key] = dataset.names  // a new bucket takes the dataset's schema
            return dataset.names
        }
        if info.variableLength {
            throw MarketStoreError.schemaMismatch(key: key, bucket: info.columns, dataset: mine,
                                                  reason: "the bucket is variable-length: re-writing klines would append duplicates")
        }
        let theirs = info.columns
        guard Set(theirs.map(\.name)) == Set(mine.map(\.name)), theirs.count == mine.count else {
            throw MarketStoreError.schemaMismatch(key: key, bucket: theirs, dataset: mine, reason: "column names differ")
        }
        let myTypes = Dictionary(uniqueKeysWithValues: mine.map { ($0.name, $0.type) })
        let differing = theirs.filter { myTypes[$0.name] != $0.type }
        if !differing.isEmpty && !allowTypeConversion {
            throw MarketStoreError.schemaMismatch(key: key, bucket: theirs, dataset: mine,
                                                  reason: "column types differ (\(differing.map(\.name).joined(separator: ", "))); the server would convert them silently")
        }
        let order = theirs.map(\.name)
        orders[key] = order
        return order
    }
}
