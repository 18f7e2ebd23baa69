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
        try await send(dataset, variableLength: false) { try await self.order(for: $0, dataset: dataset) }
    }

    /// Appends the dataset's records to variable-length buckets (trades), checked per bucket as
    /// `write` does, with `Nanoseconds` last (the records' time, not a column of the bucket). A
    /// key whose bucket is fixed-length is refused: its record type would win silently, each
    /// second keeping one trade.
    public func append(_ dataset: WriteDataSet) async throws {
        try await send(dataset, variableLength: true) { try await self.appendOrder(for: $0, dataset: dataset) }
    }

    /// The dataset in one request per column order its buckets want (`order(key)`), reordered.
    private func send(_ dataset: WriteDataSet, variableLength: Bool, order: (String) async throws -> [String]) async throws {
        var groups: [[String]: Set<String>] = [:]
        for k in dataset.keys {
            groups[try await order(k.key), default: []].insert(k.key)
        }
        for (order, keys) in groups.sorted(by: { $0.key.joined() < $1.key.joined() }) {
            var part = dataset.restricted(to: keys)
            if order != part.names { part = try part.reordered(order) }
            try await client.write(part, variableLength: variableLength)
        }
    }

    /// The records `key` holds with epochs in [from, to] (inclusive), Nanoseconds among the
    /// columns; nil when the bucket does not exist.
    public func records(key: String, from: Int64, to: Int64) async throws -> QueryResult? {
        guard let bucket = BucketKey(key), try await client.getInfo(key) != nil else { return nil }
        let none = QueryResult(key: key, names: [], columns: [])
        do {
            return try await client.query(symbols: [bucket.symbol], timeframe: bucket.timeframe, attributeGroup: bucket.attributeGroup, from: from, to: to)
                .first { $0.key == key } ?? none
        } catch MarketStoreError.rpc(_, _, let message) where message.contains("no files returned") {
            return none  // the bucket has no file of those years: no records there
        }
    }

    /// Destroys `key` (every year of it); a key the server does not have is not an error.
    public func destroy(key: String) async throws {
        orders[key] = nil
        guard try await client.getInfo(key) != nil else { return }
        try await client.destroy(key: key)
    }

    private func appendOrder(for key: String, dataset: WriteDataSet) async throws -> [String] {
        if let known = orders[key] { return known }
        let timeframe = BucketKey(key)?.timeframe ?? key
        if !Timeframe.isServable(timeframe) { throw MarketStoreModelError.unservableTimeframe(key: key, timeframe: timeframe) }
        let mine = dataset.schema.filter { $0.name != "Nanoseconds" }
        guard let info = try await client.getInfo(key) else {
            orders[key] = dataset.names
            return dataset.names
        }
        guard info.variableLength else {
            throw MarketStoreError.schemaMismatch(key: key, bucket: info.columns, dataset: mine,
                                                  reason: "the bucket is fixed-length: its record type would win silently and keep one trade a second; trades need a variable-length bucket (another key, or destroy this one)")
        }
        let theirs = info.columns.filter { $0.name != "Nanoseconds" }
        try check(key, bucket: theirs, dataset: mine)
        let order = theirs.map(\.name) + (dataset.names.contains("Nanoseconds") ? ["Nanoseconds"] : [])
        orders[key] = order
        return order
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
        try check(key, bucket: theirs, dataset: mine)
        let order = theirs.map(\.name)
        orders[key] = order
        return order
    }

    /// The bucket's columns against the dataset's: the same names, and the same types unless
    /// conversion is allowed.
    private func check(_ key: String, bucket theirs: [ColumnSchema], dataset mine: [ColumnSchema]) throws {
        guard Set(theirs.map(\.name)) == Set(mine.map(\.name)), theirs.count == mine.count else {
            throw MarketStoreError.schemaMismatch(key: key, bucket: theirs, dataset: mine, reason: "column names differ")
        }
        let myTypes = Dictionary(uniqueKeysWithValues: mine.map { ($0.name, $0.type) })
        let differing = theirs.filter { myTypes[$0.name] != $0.type }
        if !differing.isEmpty && !allowTypeConversion {
            throw MarketStoreError.schemaMismatch(key: key, bucket: theirs, dataset: mine,
                                                  reason: "column types differ (\(differing.map(\.name).joined(separator: ", "))); the server would convert them silently")
        }
    }
}
