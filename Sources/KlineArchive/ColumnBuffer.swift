/// A column under construction: a raw buffer written by index. The parser fills nine of these
/// per row; `Array.append` costs a uniqueness and capacity check per value, which measured as a
/// third of the parse time. Owned by one parser, which frees it.
struct ColumnBuffer<T> {
    private(set) var base: UnsafeMutablePointer<T>
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        base = .allocate(capacity: self.capacity)
    }

    /// Doubles the capacity (at least `minimum`), keeping the first `count` values.
    mutating func grow(minimum: Int, keeping count: Int) {
        let newCapacity = max(minimum, capacity * 2)
        let newBase = UnsafeMutablePointer<T>.allocate(capacity: newCapacity)
        newBase.moveInitialize(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    /// The first `count` values, copied into an array.
    func array(_ count: Int) -> [T] { Array(UnsafeBufferPointer(start: base, count: count)) }

    func free() { base.deallocate() }
}
