import CMalloc

/// The allocator settings the decoders' batches want, applied once at a process's start.
///
/// A batch's columns are fresh arrays of a few hundred KB each (65,536 rows). Above its 128 KB
/// threshold glibc maps each such array afresh and, once the batch is freed, unmaps it or trims
/// the heap, so every batch pays its page faults again: 5-10% of an archive's decode time
/// (`decode-bench compare --allocator glibc`, docs/performance.md "Batch memory"). Serving arrays of up to 16 MB from the heap
/// and keeping up to 32 MB of freed memory there lets the next batch reuse the same pages; the
/// peak RSS does not change (measured the same).
public enum BatchMemory {
    public static func reuseFreedBatches() {
        #if os(Linux)
        _ = mallopt(M_MMAP_THRESHOLD, 16 << 20)
        _ = mallopt(M_TRIM_THRESHOLD, 32 << 20)
        #endif
    }
}
