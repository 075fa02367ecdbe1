import GuestMemory

/// The BIOS e820 memory map, as the kernel receives it in the zero page (boot_params.e820_table) or in the
/// PVH memory map: which guest-physical ranges are RAM and which are reserved.
///
/// The first megabyte is described the way a PC's firmware does, because Linux expects it:
///
///     [0,        0x9fc00)   RAM        conventional memory
///     [0x9fc00,  0xa0000)   reserved   EBDA (the last KiB below 640 KiB)
///     [0xa0000,  0xe0000)   (absent)   VGA memory and option ROMs: a hole
///     [0xe0000,  0x100000)  reserved   BIOS area; the ACPI RSDP and tables live here
///     [1 MiB,    end of low RAM)       RAM
///     [4 GiB,    end of high RAM)      RAM (guests larger than the 32-bit MMIO hole allows)
public struct E820Map: Equatable, Sendable {
    public enum EntryType: UInt32, Equatable, Sendable {
        case ram = 1
        case reserved = 2
        case acpiReclaimable = 3
        case acpiNVS = 4
        case unusable = 5
    }

    public struct Entry: Equatable, Sendable {
        public var address: GuestAddress
        public var size: UInt64
        public var type: EntryType

        public init(address: GuestAddress, size: UInt64, type: EntryType) {
            self.address = address
            self.size = size
            self.type = type
        }
    }

    /// boot_params has room for 128 entries (E820_MAX_ENTRIES_ZEROPAGE).
    public static let maxEntries = 128

    public private(set) var entries: [Entry]

    /// The map for a guest whose RAM is `ranges` (as from `X86MemoryLayout.ramRanges(size:)`).
    public init(ramRanges ranges: [(start: GuestAddress, size: UInt64)]) throws(BootError) {
        var entries: [Entry] = []
        for (start, size) in ranges.sorted(by: { $0.start < $1.start }) where size > 0 {
            guard let end = start.checkedAdding(size) else {
                throw .unsupportedMemoryLayout("RAM range at \(start) of \(size) bytes wraps past 2^64")
            }
            if start.rawValue != 0 {
                guard start >= BootLayout.highMemoryStart else {
                    throw .unsupportedMemoryLayout("RAM range at \(start) inside the first MiB but not at 0")
                }
                entries.append(Entry(address: start, size: size, type: .ram))
                continue
            }
            // Low RAM must reach past 1 MiB: the kernel and the BIOS area live there.
            guard end > BootLayout.highMemoryStart else {
                throw .unsupportedMemoryLayout("low RAM ends at \(end); a PC guest needs more than 1 MiB")
            }
            let ebda = BootLayout.ebdaStart.rawValue
            let bios = BootLayout.biosAreaStart.rawValue
            let high = BootLayout.highMemoryStart.rawValue
            entries.append(Entry(address: GuestAddress(0), size: ebda, type: .ram))
            entries.append(Entry(address: BootLayout.ebdaStart, size: BootLayout.vgaHoleStart.rawValue - ebda, type: .reserved))
            entries.append(Entry(address: BootLayout.biosAreaStart, size: high - bios, type: .reserved))
            entries.append(Entry(address: BootLayout.highMemoryStart, size: end.rawValue - high, type: .ram))
        }
        guard entries.contains(where: { $0.address.rawValue == 0 }) else {
            throw .unsupportedMemoryLayout("no RAM at address 0")
        }
        guard entries.count <= Self.maxEntries else {
            throw .unsupportedMemoryLayout("\(entries.count) e820 entries (at most \(Self.maxEntries))")
        }
        self.entries = entries
    }

    /// The map for the RAM regions of `memory`, plus `reserved` ranges outside RAM (device memory the guest
    /// must not take for itself, e.g. PCI ECAM: Linux uses an MCFG area only if firmware reserved it).
    public init(memory: GuestMemory, reserved: [(start: GuestAddress, size: UInt64)] = []) throws(BootError) {
        try self.init(ramRanges: memory.regions.map { (start: $0.guestBase, size: $0.size) })
        for range in reserved where range.size > 0 {
            guard !memory.regions.contains(where: { $0.guestBase < range.start.adding(range.size) && range.start < $0.end }) else {
                throw .unsupportedMemoryLayout("reserved range at \(range.start) overlaps RAM")
            }
            entries.append(Entry(address: range.start, size: range.size, type: .reserved))
        }
        entries.sort { $0.address < $1.address }
        guard entries.count <= Self.maxEntries else {
            throw .unsupportedMemoryLayout("\(entries.count) e820 entries (at most \(Self.maxEntries))")
        }
    }

    /// End of the RAM that starts at 0 (below the 32-bit MMIO hole): the ceiling for the initrd.
    public var lowRAMEnd: GuestAddress {
        entries.filter { $0.type == .ram && $0.address.rawValue < X86MemoryLayout.mmioHoleStart.rawValue }
            .map { $0.address.adding($0.size) }.max() ?? GuestAddress(0)
    }
}
