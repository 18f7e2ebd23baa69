import Columnar
/// The interval slots seen so far, as a bitmap over a fixed range (the archive's period), with a
/// set for the rare rows outside it. Finds duplicate open times and gaps without sorting, in
/// memory proportional to the period (a month of 1s slots is 330 kB), not to the row count.
/// A class over a raw bitmap: marking a slot is then one load and one store per row, with no
/// copy-on-write check.
final class SlotSet {
    let anchor: Int64
    let step: Int64
    let slotCount: Int
    private let bits: UnsafeMutablePointer<UInt64>
    private var outside: Set<Int64> = []
    private(set) var distinct = 0
    // The last slot marked in the bitmap and the epoch that marked it: the next interval's epoch
    // then finds its slot without a division.
    private var lastEpoch: Int64 = .min
    private var lastSlot: Int64 = -1

    init(anchor: Int64, step: Int64, slotCount: Int) {
        self.anchor = anchor
        self.step = max(1, step)
        self.slotCount = max(0, slotCount)
        let words = max(1, (self.slotCount + 63) / 64)
        bits = .allocate(capacity: words)
        bits.initialize(repeating: 0, count: words)
    }

    deinit { bits.deallocate() }

    /// Marks the slot of `epoch`; false when it was already marked (a duplicate).
    @inline(__always)
    func insert(_ epoch: Int64) -> Bool {
        let offset = epoch &- anchor
        if offset >= 0 {
            let slot = lastSlot >= 0 && epoch == lastEpoch &+ step ? lastSlot + 1 : offset / step
            if slot < Int64(slotCount) {
                lastEpoch = epoch
                lastSlot = slot
                let word = Int(slot >> 6), mask = UInt64(1) << UInt64(slot & 63)
                if bits[word] & mask != 0 { return false }
                bits[word] |= mask
                distinct += 1
                return true
            }
        }
        let key = offset >= 0 ? offset / step : -((-offset + step - 1) / step)
        if outside.insert(key).inserted { distinct += 1; return true }
        return false
    }

    /// Marks the `count` slots from `epoch`'s on, one step apart, when all are in the bitmap and
    /// none is marked yet; otherwise changes nothing and returns false (the caller then inserts
    /// them one by one, to find which are duplicates).
    func insertRun(_ epoch: Int64, count: Int) -> Bool {
        let offset = epoch &- anchor
        guard count > 0, offset >= 0, offset % step == 0 else { return false }
        let first = Int(offset / step), end = first + count
        guard end <= slotCount else { return false }
        let words = (first >> 6)...((end - 1) >> 6)
        // The bits of slots [first, end) in `word`.
        func mask(_ word: Int) -> UInt64 {
            let low = max(first, word << 6) - word << 6, high = min(end, (word + 1) << 6) - word << 6
            return (high == 64 ? ~0 : (1 << UInt64(high)) - 1) & ~((1 << UInt64(low)) - 1)
        }
        guard words.allSatisfy({ bits[$0] & mask($0) == 0 }) else { return false }
        for word in words { bits[word] |= mask(word) }
        distinct += count
        lastEpoch = epoch &+ Int64(count - 1) &* step
        lastSlot = Int64(end - 1)
        return true
    }

    func contains(slot: Int) -> Bool { bits[slot >> 6] & (UInt64(1) << UInt64(slot & 63)) != 0 }

    /// Unmarked slots in `[from, to)` (slot numbers): their count and the first `limit` runs as
    /// inclusive epoch ranges.
    func gaps(from: Int, to: Int, limit: Int) -> (count: Int, ranges: [[Int64]]) {
        var count = 0
        var ranges: [[Int64]] = []
        var runStart = -1
        var s = max(0, from)
        let end = min(to, slotCount)
        while s < end {
            if !contains(slot: s) {
                if runStart < 0 { runStart = s }
                count += 1
            } else if runStart >= 0 {
                if ranges.count < limit { ranges.append([epoch(runStart), epoch(s - 1)]) }
                runStart = -1
            }
            s += 1
        }
        if runStart >= 0, ranges.count < limit { ranges.append([epoch(runStart), epoch(end - 1)]) }
        return (count, ranges)
    }

    func epoch(_ slot: Int) -> Int64 { anchor + Int64(slot) * step }

    /// The UTC days (as day numbers since 1970) that a run of at least `minimum` unmarked slots
    /// in `[0, slotCount)` touches: every run is counted, not only the first few.
    func daysOfLongGaps(minimum: Int) -> [Int64] {
        var days: [Int64] = []
        var runStart = -1
        func close(_ end: Int) {  // the run [runStart, end)
            guard runStart >= 0, end - runStart >= minimum else { return }
            for day in floorDiv(epoch(runStart), 86400)...floorDiv(epoch(end - 1), 86400) where days.last != day { days.append(day) }
        }
        for s in 0..<slotCount {
            if !contains(slot: s) {
                if runStart < 0 { runStart = s }
            } else if runStart >= 0 {
                close(s)
                runStart = -1
            }
        }
        close(slotCount)
        return days
    }
}
