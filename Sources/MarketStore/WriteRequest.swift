import Columnar
import MarketStoreModel
import MsgPack

extension WriteDataSet {
    /// The `DataService.Write` request body: one WriteRequest carrying this dataset; column data
    /// as `bin` straight from the arrays' bytes.
    public func requestBody(id: String, variableLength: Bool = false) -> [UInt8] {
        var w = MsgPackWriter(capacity: 512 + columns.reduce(0) { $0 + $1.count * 8 })
        w.writeMapHeader(4)
        w.writeString("method"); w.writeString("DataService.Write")
        w.writeString("id"); w.writeString(id)
        w.writeString("jsonrpc"); w.writeString("2.0")
        w.writeString("params")
        w.writeMapHeader(1)
        w.writeString("requests")
        w.writeArrayHeader(1)
        w.writeMapHeader(2)
        w.writeString("dataset")
        w.writeMapHeader(6)
        w.writeString("types"); w.writeArrayHeader(columns.count)
        for c in columns { w.writeString(c.wireType) }
        w.writeString("names"); w.writeArrayHeader(names.count)
        for n in names { w.writeString(n) }
        w.writeString("data"); w.writeArrayHeader(columns.count)
        for c in columns { c.withUnsafeBytes { w.writeBinary($0) } }
        w.writeString("length"); w.writeInt(Int64(length))
        w.writeString("startindex"); w.writeMapHeader(keys.count)
        for k in keys { w.writeString(k.key); w.writeInt(Int64(k.start)) }
        w.writeString("lengths"); w.writeMapHeader(keys.count)
        for k in keys { w.writeString(k.key); w.writeInt(Int64(k.count)) }
        w.writeString("is_variable_length"); w.writeBool(variableLength)
        return w.bytes
    }
}
