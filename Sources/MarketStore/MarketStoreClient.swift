import Columnar
import CurlHTTP
import MarketStoreModel
import MsgPack

/// What GetInfo says about a bucket.
public struct BucketInfo: Equatable, Sendable {
    public var key: String
    /// Columns in the bucket's order, Epoch first.
    public var columns: [ColumnSchema]
    public var timeframeSeconds: Int64
    public var latestYear: Int64
    public var variableLength: Bool
}

/// Rows of one key read back by Query: epochs and columns in the bucket's order.
public struct QueryResult: Equatable, Sendable {
    public var key: String
    public var names: [String]
    public var columns: [ColumnValues]
    public init(key: String, names: [String], columns: [ColumnValues]) {
        self.key = key
        self.names = names
        self.columns = columns
    }
    public var epochs: [Int64] {
        if case let .int64(e)? = columns.first { return e }
        return []
    }
    public var count: Int { columns.first?.count ?? 0 }
}

/// A MarketStore RPC client (msgpack over HTTP, libcurl, one kept-alive connection). One Write
/// request per call, so each error can be attributed to its keys.
public actor MarketStoreClient {
    public let url: String
    private let session: CurlSession
    private var nextID = 1
    public private(set) var serverVersion: String?

    /// `caFile`: CA certificates to trust instead of the system's (a proxy with a private CA).
    public init(url: String, timeouts: HTTPTimeouts = .init(connect: 5, total: 120), caFile: String? = nil) {
        self.url = url
        session = CurlSession(timeouts: timeouts, caFile: caFile)
    }

    // MARK: - RPC envelope

    /// Sends one RPC and returns its `result`, or throws the typed error.
    public func call(_ method: String, params: MsgPackValue) async throws -> MsgPackValue {
        var w = MsgPackWriter()
        w.write(.object(["method": .string(method), "id": .string(String(nextID)), "jsonrpc": "2.0", "params": params]))
        return try await send(method, body: w.bytes)
    }

    private func send(_ method: String, body: [UInt8]) async throws -> MsgPackValue {
        let id = String(nextID)
        nextID += 1
        let response: HTTPResponse
        do {
            response = try await session.perform(method: "POST", url: url, headers: ["Content-Type: application/x-msgpack", "Expect:"], body: body)
        } catch let e as TransportError {
            throw MarketStoreError.transport(e)
        }
        if let v = response.headers["marketstore-version"] { serverVersion = v }
        guard response.status == 200 else {
            throw MarketStoreError.http(status: response.status, body: String(decoding: response.body, as: UTF8.self))
        }
        guard !response.body.isEmpty else { throw MarketStoreError.emptyBody(method: method) }
        let reply: MsgPackValue
        do {
            reply = try MsgPackReader.decode(response.body)
        } catch let e as MsgPackDecodeError {
            throw MarketStoreError.malformedResponse(method: method, reason: e.description)
        }
        if let error = reply["error"], !error.isNull {
            throw MarketStoreError.rpc(method: method, code: error["code"]?.int64Value ?? 0,
                                       message: error["message"]?.stringValue ?? "\(error)")
        }
        guard let result = reply["result"] else {
            throw MarketStoreError.malformedResponse(method: method, reason: "neither result nor error (id \(id))")
        }
        return result
    }

    // MARK: - Methods

    /// The server's version (the `Marketstore-Version` header), asked with a cheap RPC if unknown.
    public func version() async throws -> String {
        if let serverVersion { return serverVersion }
        _ = try await listSymbols()
        guard let serverVersion else { throw MarketStoreError.malformedResponse(method: "version", reason: "no Marketstore-Version header") }
        return serverVersion
    }

    /// Writes one dataset (one WriteRequest). Throws `refused` with the server's text and keys.
    public func write(_ dataset: WriteDataSet, variableLength: Bool = false) async throws {
        guard !dataset.keys.isEmpty else { return }
        let result = try await send("DataService.Write", body: dataset.requestBody(id: String(nextID), variableLength: variableLength))
        if let responses = result["responses"]?.arrayValue, let first = responses.first {
            throw MarketStoreError.refused(method: "DataService.Write", keys: dataset.keys.map(\.key),
                                           message: first["error"]?.stringValue ?? "\(first)")
        }
    }

    /// Reads rows of `symbols` for one timeframe and attribute group. The range is inclusive of
    /// whole seconds: `to` is sent with its last nanosecond, since the server ends the range at
    /// epoch_end + epoch_end_nanos and cuts a variable-length bucket's later records (a range
    /// ending at `to`.0 loses that second's sub-second trades). `limit` keeps the last N rows
    /// (the first N with `limitFromStart`).
    public func query(symbols: [String], timeframe: String, attributeGroup: String, from: Int64? = nil, to: Int64? = nil,
                      limit: Int? = nil, limitFromStart: Bool = false) async throws -> [QueryResult] {
        var request: [MsgPackValue.Pair] = [.init("destination", .string(symbols.joined(separator: ",") + "/\(timeframe)/\(attributeGroup)"))]
        if let from { request.append(.init("epoch_start", .int(from))) }
        if let to { request += [.init("epoch_end", .int(to)), .init("epoch_end_nanos", .int(999_999_999))] }
        if let limit { request.append(.init("limit_record_count", .int(Int64(limit)))) }
        if limitFromStart { request.append(.init("limit_from_start", true)) }
        let result = try await call("DataService.Query", params: .object(["requests": [.map(request)]]))
        guard let ds = result["responses"]?.arrayValue?.first?["result"] else {
            throw MarketStoreError.malformedResponse(method: "DataService.Query", reason: "no responses[0].result")
        }
        return try Self.splitDataSet(ds)
    }

    static func splitDataSet(_ ds: MsgPackValue) throws -> [QueryResult] {
        func bad(_ r: String) -> MarketStoreError { .malformedResponse(method: "DataService.Query", reason: r) }
        guard let names = ds["names"]?.arrayValue?.compactMap(\.stringValue),
              let types = ds["types"]?.arrayValue?.compactMap(\.stringValue),
              let data = ds["data"]?.arrayValue, names.count == types.count, data.count == names.count else {
            throw bad("names, types and data do not match")
        }
        let columns = try zip(types, data).map { type, raw -> ColumnValues in
            guard let bytes = raw.binaryValue, let c = ColumnValues(wireType: type, bytes: bytes) else { throw bad("column of type \(type) cannot be read") }
            return c
        }
        let starts = ds["startindex"]?.mapValue ?? [], lengths = ds["lengths"]
        return try starts.map { pair in
            guard let fullKey = pair.key.stringValue, let start = pair.value.int64Value,
                  let count = lengths?[fullKey]?.int64Value, start >= 0, count >= 0,
                  columns.allSatisfy({ Int(start + count) <= $0.count }) else { throw bad("a key range is outside the data") }
            let key = String(fullKey.split(separator: ":").first ?? Substring(fullKey))
            return QueryResult(key: key, names: names, columns: columns.map { $0.slice(Int(start)..<Int(start + count)) })
        }.sorted { $0.key < $1.key }
    }

    /// GetInfo for one key; nil when the bucket does not exist.
    public func getInfo(_ key: String) async throws -> BucketInfo? {
        let result = try await call("DataService.GetInfo", params: .object(["requests": [.object(["key": .string(key)])]]))
        guard let info = result["responses"]?.arrayValue?.first else {
            throw MarketStoreError.malformedResponse(method: "DataService.GetInfo", reason: "no responses")
        }
        if let error = info["ServerResp"]?["error"]?.stringValue, !error.isEmpty {
            if error.contains("not found in catalog") { return nil }
            throw MarketStoreError.refused(method: "DataService.GetInfo", keys: [key], message: error)
        }
        let columns = try (info["DSV"]?.arrayValue ?? []).map { shape -> ColumnSchema in
            guard let name = shape["Name"]?.stringValue, let code = shape["Type"]?.int64Value else {
                throw MarketStoreError.malformedResponse(method: "DataService.GetInfo", reason: "bad DSV entry \(shape)")
            }
            return ColumnSchema(name, ColumnSchema.typeByCode[code] ?? "type\(code)")
        }
        return BucketInfo(key: key, columns: columns, timeframeSeconds: (info["TimeFrame"]?.int64Value ?? 0) / 1_000_000_000,
                          latestYear: info["LatestYear"]?.int64Value ?? 0, variableLength: info["RecordType"]?.int64Value == 1)
    }

    /// Symbols (`format: "symbol"`) or whole keys (`"tbk"`).
    public func listSymbols(format: String = "symbol") async throws -> [String] {
        let result = try await call("DataService.ListSymbols", params: .object(["format": .string(format)]))
        return result["Results"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// Creates a bucket with these columns (Epoch included or not).
    public func create(key: String, columns: [ColumnSchema], variableLength: Bool = false) async throws {
        let data = columns.filter { $0.name != "Epoch" }
        let result = try await call("DataService.Create", params: .object(["requests": [.object([
            "key": .string(key + ":Symbol/Timeframe/AttributeGroup"),
            "column_names": .array(data.map { .string($0.name) }),
            "column_types": .array(data.map { .string($0.type) }),
            "is_variable_length": .bool(variableLength),
        ])]]))
        try Self.checkResponses(result, method: "DataService.Create", key: key)
    }

    public func destroy(key: String) async throws {
        let result = try await call("DataService.Destroy", params: .object(["requests": [.object(["key": .string(key)])]]))
        try Self.checkResponses(result, method: "DataService.Destroy", key: key)
    }

    private static func checkResponses(_ result: MsgPackValue, method: String, key: String) throws {
        if let first = result["responses"]?.arrayValue?.first, let error = first["error"]?.stringValue, !error.isEmpty {
            throw MarketStoreError.refused(method: method, keys: [key], message: error)
        }
    }
}
