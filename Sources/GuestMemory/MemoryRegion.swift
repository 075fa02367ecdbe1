#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import SystemPackage

/// One contiguous piece of guest RAM backed by an anonymous private mapping, or by a private (copy-on-write)
/// mapping of a snapshot's memory file.
///
/// AUDITED UNSAFE FILE: this is the only place that holds a host pointer to guest RAM. Every access goes
/// through `hostOffset(of:length:)`, which proves that `[address, address + length)` lies inside the
/// region with overflow-checked arithmetic before any pointer is formed.
public final class MemoryRegion: @unchecked Sendable {
    // SAFETY of @unchecked Sendable: `base` and `size` never change after init; the mapping lives until
    // deinit. Concurrent access to the bytes themselves is the guest's (and the devices') business, as on
    // real hardware; the VMM never relies on it for its own invariants.
    public let guestBase: GuestAddress
    public let size: UInt64
    private let base: UnsafeMutableRawPointer
    /// Whether the mapping is of a snapshot's memory file (pages the guest never touched then hold the file's
    /// bytes, not zeros).
    private let isFileBacked: Bool
    /// The pages the VMM writes while dirty-page logging is on (for `Diff` snapshots; KVM logs the vCPUs' writes).
    public let dirtyLog: DirtyPageLog

    /// Maps `size` bytes of zeroed anonymous memory for guest-physical `[guestBase, guestBase + size)`.
    public init(guestBase: GuestAddress, size: UInt64) throws(GuestMemoryError) {
        guard size > 0, size <= UInt64(Int.max), guestBase.checkedAdding(size) != nil else {
            throw .invalidLayout("region at \(guestBase) of size \(size)")
        }
        // MAP_NORESERVE: guest RAM is touched lazily; a 4 GiB guest that uses 100 MiB costs 100 MiB.
        let pointer = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let pointer, pointer != MAP_FAILED else {
            throw .mapFailed(size: size, errno: Errno(rawValue: errno))
        }
        self.guestBase = guestBase
        self.size = size
        self.base = pointer
        isFileBacked = false
        dirtyLog = DirtyPageLog(regionSize: size)
    }

    /// Maps `size` bytes of the open file `file` from `fileOffset` on, copy-on-write (MAP_PRIVATE), for
    /// guest-physical `[guestBase, guestBase + size)`: a snapshot's memory file. Pages load from the file on
    /// first touch; the guest's writes go to private copies and never reach the file, so many machines can map
    /// one file at once. The caller checked the file's size; `fileOffset` must be page-aligned.
    public init(guestBase: GuestAddress, size: UInt64, mappingFile file: FileDescriptor, fileOffset: UInt64) throws(GuestMemoryError) {
        guard size > 0, size <= UInt64(Int.max), guestBase.checkedAdding(size) != nil,
              fileOffset % Self.pageSize == 0, fileOffset <= UInt64(Int.max) else {
            throw .invalidLayout("file-backed region at \(guestBase) of size \(size), file offset \(fileOffset)")
        }
        let pointer = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, file.rawValue, off_t(fileOffset))
        guard let pointer, pointer != MAP_FAILED else {
            throw .mapFailed(size: size, errno: Errno(rawValue: errno))
        }
        self.guestBase = guestBase
        self.size = size
        self.base = pointer
        isFileBacked = true
        dirtyLog = DirtyPageLog(regionSize: size)
    }

    deinit {
        munmap(base, Int(size))
    }

    /// The page granularity of snapshots' memory files (x86's base page).
    public static let pageSize: UInt64 = 4096

    /// Writes the region's pages that are not all zero to `file` at `fileOffset + their offset`, leaving the
    /// all-zero ones as holes (the file was sized beforehand, so they read back as zeros). Runs of non-zero pages
    /// go out in one pwrite each. Returns the bytes written.
    func writeNonZeroPages(to file: FileDescriptor, fileOffset: UInt64, path: String) throws(GuestMemoryError) -> UInt64 {
        let page = Int(Self.pageSize)
        let zeros = [UInt8](repeating: 0, count: page)
        let maxRun = 8 << 20
        var written: UInt64 = 0
        var runStart: Int?
        func flush(_ start: Int, _ end: Int) throws(GuestMemoryError) {
            try writeRange(start..<end, to: file, fileOffset: fileOffset, path: path)
            written += UInt64(end - start)
        }
        var offset = 0
        let total = Int(size)
        var pagemap = isFileBacked ? -1 : open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        defer { if pagemap >= 0 { close(pagemap) } }
        var entries: [UInt64] = []
        var entriesStart = 0
        while offset < total {
            let length = min(page, total - offset)
            // An anonymous page that is neither present nor swapped out was never touched: it is zero, and there
            // is no need to fault it in to compare it (that was most of the time of saving a large, idle guest).
            // /proc/self/pagemap has one 64-bit entry per virtual page: bit 63 present, bit 62 swapped.
            if pagemap >= 0, offset / page - entriesStart >= entries.count {
                entriesStart = offset / page
                entries = Self.pagemapEntries(pagemap, firstPage: (Int(bitPattern: base) + offset) / page,
                                              count: min(65536, (total - offset + page - 1) / page))
                if entries.isEmpty { close(pagemap); pagemap = -1 }
            }
            let index = offset / page - entriesStart
            let untouched = index < entries.count && entries[index] & (3 << 62) == 0
            // SAFETY: offset + length <= size.
            let isZero = untouched || zeros.withUnsafeBytes { memcmp(base + offset, $0.baseAddress!, length) == 0 }
            if isZero {
                if let start = runStart { try flush(start, offset); runStart = nil }
            } else if let start = runStart, offset - start >= maxRun {
                try flush(start, offset)
                runStart = offset
            } else if runStart == nil {
                runStart = offset
            }
            offset += length
        }
        if let start = runStart { try flush(start, total) }
        return written
    }

    /// Writes the pages whose bit is set in `pages` (one bit per page, bit i of word i/64 for page i) to `file` at
    /// `fileOffset + their offset`, zero pages included: in a `Diff` memory file a written page replaces the base's,
    /// and a hole means "unchanged". Runs of set bits go out in one pwrite each. Returns the bytes written.
    func writePages(_ pages: [UInt64], to file: FileDescriptor, fileOffset: UInt64, path: String) throws(GuestMemoryError) -> UInt64 {
        let page = Int(Self.pageSize)
        let pageCount = (Int(size) + page - 1) / page
        func isSet(_ index: Int) -> Bool { index >> 6 < pages.count && pages[index >> 6] & (1 << UInt64(index & 63)) != 0 }
        var written: UInt64 = 0
        var index = 0
        while index < pageCount {
            guard isSet(index) else { index += 1; continue }
            var end = index
            while end < pageCount && isSet(end) && end - index < 2048 { end += 1 }
            let start = index * page, stop = min(end * page, Int(size))
            try writeRange(start..<stop, to: file, fileOffset: fileOffset, path: path)
            written += UInt64(stop - start)
            index = end
        }
        return written
    }

    /// Writes the region's bytes `range` to `file` at `fileOffset + range.lowerBound`, all of them (pwrite may take
    /// less at a time). The callers' ranges are page offsets below `size`, clamped to it.
    private func writeRange(_ range: Range<Int>, to file: FileDescriptor, fileOffset: UInt64, path: String) throws(GuestMemoryError) {
        precondition(range.lowerBound >= 0 && range.upperBound <= Int(size))
        var done = range.lowerBound
        while done < range.upperBound {
            // SAFETY: range lies inside the mapping (checked above).
            let count = pwrite(file.rawValue, base + done, range.upperBound - done, off_t(fileOffset + UInt64(done)))
            if count < 0 {
                if errno == EINTR { continue }
                throw .file(path: path, operation: "write", errno: Errno(rawValue: errno))
            }
            done += count
        }
    }

    /// `count` pagemap entries from virtual page `firstPage` on; fewer (even none) if the kernel gives fewer, in
    /// which case the caller compares those pages instead.
    private static func pagemapEntries(_ fd: Int32, firstPage: Int, count: Int) -> [UInt64] {
        var entries = [UInt64](repeating: 0, count: count)
        let bytes = entries.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(firstPage) * 8) }
        return bytes <= 0 ? [] : Array(entries.prefix(bytes / 8))
    }

    /// One past the last guest address in the region.
    public var end: GuestAddress { guestBase.adding(size) }

    /// The offset of `address` inside this region if `[address, address + length)` fits wholly inside it.
    @inline(__always)
    func hostOffset(of address: GuestAddress, length: UInt64) -> Int? {
        guard address.rawValue >= guestBase.rawValue else { return nil }
        let offset = address.rawValue - guestBase.rawValue
        let (last, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, last <= size else { return nil }
        return Int(offset)
    }

    /// Host virtual address of the mapping, for KVM_SET_USER_MEMORY_REGION only. `package` so that it never
    /// leaves this package: clients of the library cannot reach guest RAM except through checked accessors.
    package var hostAddressForKVM: UInt64 { UInt64(UInt(bitPattern: base)) }

    // MARK: - Checked primitive accesses (offsets already proven by hostOffset)

    @inline(__always)
    func copyOut(offset: Int, into destination: UnsafeMutableRawBufferPointer) {
        // SAFETY: hostOffset proved offset + destination.count <= size.
        destination.baseAddress?.copyMemory(from: base + offset, byteCount: destination.count)
    }

    @inline(__always)
    func copyIn(offset: Int, from source: UnsafeRawBufferPointer) {
        // SAFETY: hostOffset proved offset + source.count <= size.
        guard let src = source.baseAddress else { return }
        dirtyLog.mark(offset: offset, count: source.count)
        (base + offset).copyMemory(from: src, byteCount: source.count)
    }

    // Aligned integer accesses are one load or store of the whole value (`load(as:)` of a concrete type per width). A
    // running guest writes the virtqueue indices while devices read them, and `loadUnaligned` copies through
    // memcpy, which for 2 bytes reads the word and then its last byte again: a value half old, half new (seen as
    // avail.idx "jumping" by more than the queue size under load; ConcurrentAccessTests). Unaligned accesses
    // (never a ring index: the spec aligns the rings) keep the byte-wise copy.

    @inline(__always)
    func loadLittleEndian<T: FixedWidthInteger>(_: T.Type, offset: Int) -> T {
        // SAFETY: hostOffset proved offset + MemoryLayout<T>.size <= size; loadUnaligned tolerates any alignment.
        let address = base + offset
        switch MemoryLayout<T>.size {
        case 1: return T(truncatingIfNeeded: address.load(as: UInt8.self))
        case 2 where Int(bitPattern: address) % 2 == 0:
            return T(truncatingIfNeeded: UInt16(littleEndian: address.load(as: UInt16.self)))
        case 4 where Int(bitPattern: address) % 4 == 0:
            return T(truncatingIfNeeded: UInt32(littleEndian: address.load(as: UInt32.self)))
        case 8 where Int(bitPattern: address) % 8 == 0:
            return T(truncatingIfNeeded: UInt64(littleEndian: address.load(as: UInt64.self)))
        default: return T(littleEndian: address.loadUnaligned(as: T.self))
        }
    }

    @inline(__always)
    func storeLittleEndian<T: FixedWidthInteger>(_ value: T, offset: Int) {
        // SAFETY: as above.
        dirtyLog.mark(offset: offset, count: MemoryLayout<T>.size)
        let address = base + offset
        switch MemoryLayout<T>.size {
        case 1: address.storeBytes(of: UInt8(truncatingIfNeeded: value), as: UInt8.self)
        case 2 where Int(bitPattern: address) % 2 == 0:
            address.storeBytes(of: UInt16(truncatingIfNeeded: value).littleEndian, as: UInt16.self)
        case 4 where Int(bitPattern: address) % 4 == 0:
            address.storeBytes(of: UInt32(truncatingIfNeeded: value).littleEndian, as: UInt32.self)
        case 8 where Int(bitPattern: address) % 8 == 0:
            address.storeBytes(of: UInt64(truncatingIfNeeded: value).littleEndian, as: UInt64.self)
        default: address.storeBytes(of: value.littleEndian, as: T.self)
        }
    }

    @inline(__always)
    func zero(offset: Int, count: Int) {
        // SAFETY: hostOffset proved offset + count <= size.
        dirtyLog.mark(offset: offset, count: count)
        memset(base + offset, 0, count)
    }

    /// Runs `body` over a checked sub-range as a read-only buffer. `package`: for in-package fast paths
    /// (device backends doing I/O straight into guest RAM); the buffer must not escape `body`.
    package func withBytes<R>(offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base + offset, count: count))
    }

    package func withMutableBytes<R>(offset: Int, count: Int, _ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        dirtyLog.mark(offset: offset, count: count)  // whether or not body writes all of it: a page too many is harmless
        return try body(UnsafeMutableRawBufferPointer(start: base + offset, count: count))
    }
}
