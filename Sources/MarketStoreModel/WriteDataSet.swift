import Columnar

/// One `DataService.Write` dataset: columns of one schema holding the rows of one or more keys,
/// each key a contiguous row range. Checked on construction, because the real server crashes
/// (closes the connection) on a range past the data.
public struct WriteDataSet: Sendable {
    public struct KeyRange: Equatable, Sendable {
        public var key: String
        public var start: Int
        public var count: Int
        public init(key: String, start: Int, count: Int) {
            self.key = key
            self.start = start
            self.count = count
        }
    }

    public private(set) var names: [String]
    public private(set) var columns: [ColumnValues]
    public private(set) var keys: [KeyRange]
    public var length: Int { columns.first?.count ?? 0 }
    public var schema: [ColumnSchema] { zip(names, columns).map { ColumnSchema($0, $1.wireType) } }

    /// `names[0]` must be `Epoch` (i8); every column as long as the others; every key
    /// `SYMBOL/Timeframe/AttributeGroup` with its range inside the columns, ranges not overlapping.
    public init(names: [String], columns: [ColumnValues], keys: [KeyRange]) throws {
        guard names.count == columns.count, !names.isEmpty else {
            throw MarketStoreModelError.invalidDataSet("\(names.count) names for \(columns.count) columns")
        }
        guard names[0] == "Epoch", columns[0].wireType == "i8" else {
            throw MarketStoreModelError.invalidDataSet("the first column must be Epoch (i8), not \(names[0]) (\(columns[0].wireType))")
        }
        guard Set(names).count == names.count else { throw MarketStoreModelError.invalidDataSet("repeated column names in \(names)") }
        let n = columns[0].count
        for (name, c) in zip(names, columns) where c.count != n {
            throw MarketStoreModelError.invalidDataSet("column \(name) has \(c.count) rows, Epoch has \(n)")
        }
        var seen = Set<String>()
        for k in keys {
            guard BucketKey(k.key) != nil else {
                throw MarketStoreModelError.invalidDataSet("key \(k.key) is not SYMBOL/Timeframe/AttributeGroup")
            }
            guard seen.insert(k.key).inserted else { throw MarketStoreModelError.invalidDataSet("key \(k.key) appears twice") }
            guard k.start >= 0, k.count >= 0, k.start + k.count <= n else {
                throw MarketStoreModelError.invalidDataSet("key \(k.key) covers rows \(k.start)..<\(k.start + k.count) of \(n)")
            }
        }
        let sorted = keys.sorted { $0.start < $1.start }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.start + a.count > b.start {
            throw MarketStoreModelError.invalidDataSet("keys \(a.key) and \(b.key) overlap")
        }
        self.names = names
        self.columns = columns
        self.keys = keys
    }

    /// One dataset from several keys' columns of the same schema, concatenated in order.
    public static func concatenating(_ parts: [(key: String, names: [String], columns: [ColumnValues])]) throws -> WriteDataSet {
        guard let first = parts.first else { return try WriteDataSet(names: ["Epoch"], columns: [.int64([])], keys: []) }
        var columns = first.columns
        var keys = [KeyRange(key: first.key, start: 0, count: first.columns.first?.count ?? 0)]
        for part in parts.dropFirst() {
            guard part.names == first.names, zip(part.columns, first.columns).allSatisfy({ $0.wireType == $1.wireType }) else {
                throw MarketStoreModelError.invalidDataSet("\(part.key) has columns \(part.names), \(first.key) has \(first.names)")
            }
            keys.append(KeyRange(key: part.key, start: columns[0].count, count: part.columns.first?.count ?? 0))
            for i in columns.indices { columns[i].append(contentsOf: part.columns[i]) }
        }
        return try WriteDataSet(names: first.names, columns: columns, keys: keys)
    }

    /// The same rows with the columns in `order` (names), Epoch first; throws when `order` is
    /// not a permutation of the names.
    public func reordered(_ order: [String]) throws -> WriteDataSet {
        let index = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        guard order.count == names.count, Set(order) == Set(names) else {
            throw MarketStoreModelError.invalidDataSet("columns \(order) are not a reordering of \(names)")
        }
        var copy = self
        copy.names = order
        copy.columns = order.compactMap { index[$0].map { columns[$0] } }
        return copy
    }

    /// The rows of some keys only (for retries and for splitting by bucket order).
    public func restricted(to wanted: Set<String>) -> WriteDataSet {
        var copy = self
        copy.keys = keys.filter { wanted.contains($0.key) }
        return copy
    }
}
