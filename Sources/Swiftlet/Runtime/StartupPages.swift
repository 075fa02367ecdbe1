import CHost
#if canImport(Glibc)
import Glibc
#endif

/// Gives back the executable's code and read-only data that start-up touched, once the machine runs.
///
/// Why: a VMM's process maps each page of its binary it has touched, and keeps it mapped for its whole life. Most
/// of those pages are start-up's — the argument parser, the kernel loader, the device builders, the Swift
/// runtime's first metadata lookups — and the kernel maps the binary 64 KiB at a time around
/// each fault (fault-around), so a Swiftlet VM kept ~4.6 MiB of its 15 MiB of code mapped, of which an idle VM
/// uses a few pages. Those mapped pages are what the per-VM memory of many VMs at once (PSS) counts.
///
/// What: for each read-only mapping of the executable with no page of its own (nothing copied on write: the
/// relocated RELRO segment is writable at start and has such pages, so it is left alone), `madvise(MADV_DONTNEED)`
/// unmaps its pages. The file's pages stay in the page cache; the next call into released code faults its page
/// back in, from memory. Writable mappings (.data, .bss, the heap) are never touched: their changes would be lost.
///
/// The cost: a few page faults when code not run since start-up runs again (a device's first request, an API
/// call); docs/performance.md has the figures. A debugger's breakpoints in the released code (written into
/// copies of the pages) would be lost, so nothing is released while a tracer is attached.
public final class StartupPages {
    /// /proc/self/smaps and /proc/self/status, opened before the calling thread's seccomp filter (which has no
    /// open): read at release.
    private let smaps: Int32
    private let status: Int32
    /// The ranges of the last release, kept (not freed) so that no deallocation runs right after the drop.
    private var starts: [UInt] = []
    private var lengths: [Int] = []

    /// Opens what `release()` reads; nil where /proc is not mounted (a jail without it): then nothing is released.
    public init?() {
        let smaps = open("/proc/self/smaps", O_RDONLY | O_CLOEXEC)
        let status = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard smaps >= 0, status >= 0 else {
            if smaps >= 0 { close(smaps) }
            if status >= 0 { close(status) }
            return nil
        }
        self.smaps = smaps
        self.status = status
    }

    deinit {
        close(smaps)
        close(status)
    }

    /// Releases the executable's read-only mappings (see the type). Returns the bytes of address space
    /// advised (the part that was resident is what is given back), or 0 if nothing was (a tracer is attached,
    /// smaps could not be read).
    @discardableResult
    public func release() -> Int {
        (starts, lengths) = releasableRanges()
        // The text just parsed (tens of KiB) is free again: its pages go back too, with any other free ones.
        chost_return_free_heap()
        // Code run after the drop faults its 64 KiB back in: the parsing's clean-up (string and array destruction,
        // free) is over before it, and the ranges stay allocated in this object after it.
        return Int(chost_drop_mapped_page_ranges(starts, lengths, starts.count))
    }

    /// The ranges `release()` drops, as two arrays C reads (start addresses, lengths). Not inlined: the text it
    /// parses is freed when it returns.
    @inline(never)
    private func releasableRanges() -> (starts: [UInt], lengths: [Int]) {
        // A process's smaps is tens of KiB; a cut one leaves its last mapping without its Anonymous line (kept).
        guard let status = ProcFile.read(descriptor: status), !Self.traced(status: status),
              let text = ProcFile.read(descriptor: smaps, maximum: 4 << 20) else { return ([], []) }
        let mappings = Self.releasable(smaps: text, entryPoint: Self.entryPoint)
        return (mappings.map(\.start), mappings.map { Int($0.end - $0.start) })
    }

    /// One mapping of /proc/self/smaps: its range, permissions, file (device and inode), and its resident and own
    /// (anonymous) pages.
    struct Mapping: Equatable {
        var start: UInt
        var end: UInt
        var permissions: Substring
        var file: Substring
        var residentKiB: Int?
        var anonymousKiB: Int?
    }

    /// The mappings of /proc/self/smaps' text, with their Rss and Anonymous lines (nil where missing).
    static func mappings(smaps text: String) -> [Mapping] {
        var mappings: [Mapping] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard let first = fields.first else { continue }
            if first.hasSuffix(":") {
                guard fields.count >= 2, !mappings.isEmpty else { continue }
                if first == "Rss:" { mappings[mappings.count - 1].residentKiB = Int(fields[1]) }
                if first == "Anonymous:" { mappings[mappings.count - 1].anonymousKiB = Int(fields[1]) }
                continue
            }
            // A header: start-end perms offset dev inode [path].
            let range = first.split(separator: "-")
            guard fields.count >= 5, range.count == 2,
                  let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16), end > start else { continue }
            // Device and inode ("fe:00 5334847"); inode 0 is an anonymous mapping.
            let file: Substring = fields[4] == "0" ? "" : line[fields[3].startIndex..<fields[4].endIndex]
            mappings.append(Mapping(start: start, end: end, permissions: fields[1], file: file))
        }
        return mappings
    }

    /// The mappings `release()` drops, from the text of /proc/self/smaps: those of the executable (the file mapped
    /// where the kernel says the program's entry point is, AT_ENTRY: no path to read), not writable, private, with
    /// no anonymous page. A mapping whose Anonymous line is missing or unreadable is kept.
    static func releasable(smaps text: String, entryPoint: UInt) -> [Mapping] {
        let mappings = Self.mappings(smaps: text)
        guard let program = mappings.first(where: { $0.start <= entryPoint && entryPoint < $0.end }),
              !program.file.isEmpty else { return [] }
        return mappings.filter { mapping in
            mapping.file == program.file && mapping.permissions.hasPrefix("r") && mapping.permissions.hasSuffix("p")
                && !mapping.permissions.contains("w") && mapping.anonymousKiB == 0
        }
    }

    /// Where the program's entry point is (AT_ENTRY): inside the executable's code mapping.
    static var entryPoint: UInt { chost_program_entry_point() }

    /// Whether /proc/self/status names a tracer (a debugger or strace); unreadable counts as traced.
    static func traced(status: String) -> Bool {
        for line in status.split(separator: "\n") where line.hasPrefix("TracerPid:") {
            return line.dropFirst("TracerPid:".count).drop(while: { $0 == " " || $0 == "\t" }) != "0"
        }
        return true
    }
}
