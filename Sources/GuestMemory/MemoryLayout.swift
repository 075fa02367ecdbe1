/// The x86-64 guest-physical memory map Swiftlet builds.
///
/// RAM starts at 0 and runs up to the 32-bit MMIO hole; RAM beyond that continues at 4 GiB, so guests of
/// more than 3 GiB work. The hole holds device MMIO (PCI BARs, ECAM, IOAPIC, local APIC).
///
///     0x0000_0000 ─ RAM (low)       boot structures, kernel at 1 MiB / 16 MiB, initrd near the top
///     0xC000_0000 ─ MMIO hole       32-bit device space (1 GiB)
///       0xFEC0_0000   IOAPIC        (in-kernel)
///       0xFEE0_0000   local APIC    (in-kernel)
///     0x1_0000_0000 ─ RAM (high)    whatever does not fit below the hole
public enum X86MemoryLayout {
    public static let mmioHoleStart = GuestAddress(0xC000_0000)
    public static let mmioHoleEnd = GuestAddress(0x1_0000_0000)
    public static let highRAMStart = mmioHoleEnd

    /// The RAM ranges for a guest of `size` bytes.
    public static func ramRanges(size: UInt64) -> [(start: GuestAddress, size: UInt64)] {
        let lowLimit = mmioHoleStart.rawValue
        if size <= lowLimit { return [(GuestAddress(0), size)] }
        return [(GuestAddress(0), lowLimit), (highRAMStart, size - lowLimit)]
    }
}
