import Synchronization

/// The pages of one region the VMM itself wrote (device models: virtio rings, disk reads, received packets) while
/// logging is on. KVM's dirty log sees only what the guest's vCPUs write; a `Diff` snapshot needs both, or it would
/// miss every page a device filled. One bit per page, set on each write through `MemoryRegion` while logging, and
/// taken (read and cleared) by a snapshot.
///
/// Off by default, and then each write pays one relaxed atomic load. The bitmap exists only while logging.
public final class DirtyPageLog: Sendable {
    private let logging = Atomic<Bool>(false)
    private let words: Mutex<[UInt64]>
    private let pageCount: Int

    init(regionSize: UInt64) {
        pageCount = Int((regionSize + MemoryRegion.pageSize - 1) / MemoryRegion.pageSize)
        words = Mutex([])
    }

    public var isLogging: Bool { logging.load(ordering: .acquiring) }

    /// Starts logging from a clean slate: every page counts as clean from now on.
    public func start() {
        words.withLock { $0 = [UInt64](repeating: 0, count: (pageCount + 63) / 64) }
        logging.store(true, ordering: .releasing)
    }

    public func stop() {
        logging.store(false, ordering: .releasing)
        words.withLock { $0 = [] }
    }

    /// Marks the pages `[offset, offset + count)` of the region touches (the caller checked the range). The check
    /// is inlined into every write; the marking is not. (Inlining all of it, Mutex included, into
    /// `MemoryRegion.copyIn` made release builds of Swift 6.3.1 corrupt `GuestMemory.write`'s caller: a raw image's
    /// load failed with a nonsense address and length. Kept out of line since.)
    @inline(__always)
    func mark(offset: Int, count: Int) {
        if logging.load(ordering: .relaxed) { markLogged(offset: offset, count: count) }
    }

    @inline(never)
    private func markLogged(offset: Int, count: Int) {
        guard count > 0 else { return }
        let page = Int(MemoryRegion.pageSize)
        let first = offset / page, last = (offset + count - 1) / page
        words.withLock { words in
            guard !words.isEmpty else { return }
            for index in first...last { words[index >> 6] |= 1 << UInt64(index & 63) }
        }
    }

    /// The pages written since the last `take()` (or `start()`), one bit per page, and clears them. Empty when
    /// not logging.
    public func take() -> [UInt64] {
        words.withLock { words in
            let taken = words
            for index in words.indices { words[index] = 0 }
            return taken
        }
    }

    /// Puts back bits a failed snapshot took, so that the next one still writes those pages.
    public func putBack(_ bits: [UInt64]) {
        words.withLock { words in
            for index in 0..<min(words.count, bits.count) { words[index] |= bits[index] }
        }
    }
}
