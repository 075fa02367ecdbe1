import GuestMemory

/// An 8-byte code or data segment descriptor (Intel SDM Vol. 3A, 3.4.5 "Segment Descriptors").
///
/// `flags` packs the descriptor's attribute bits the way Firecracker and Cloud Hypervisor write them:
/// bits 0–7 are the access byte (type, S, DPL, P) and bits 12–15 are AVL, L, D/B, G. So 0xa09b is
/// "G, L, present, DPL 0, code, execute/read, accessed" — a 64-bit kernel code segment.
public struct SegmentDescriptor: Equatable, Sendable {
    public var flags: UInt16
    public var base: UInt32
    /// 20 bits; in 4 KiB units when G is set.
    public var limit: UInt32

    public init(flags: UInt16, base: UInt32, limit: UInt32) {
        self.flags = flags
        self.base = base
        self.limit = limit
    }

    /// The descriptor as it sits in the GDT.
    public var encoded: UInt64 {
        let base = UInt64(self.base), limit = UInt64(self.limit), flags = UInt64(self.flags)
        return (base & 0xff00_0000) << 32        // base 31:24  → bits 63:56
            | (flags & 0xf0ff) << 40              // G D/B L AVL → bits 55:52, access byte → bits 47:40
            | (limit & 0x000f_0000) << 32         // limit 19:16 → bits 51:48
            | (base & 0x00ff_ffff) << 16          // base 23:0   → bits 39:16
            | (limit & 0x0000_ffff)               // limit 15:0  → bits 15:0
    }

    /// The hidden part of a segment register after loading `selector` with this descriptor.
    public func segmentState(selector: UInt16) -> SegmentState {
        let g = UInt8((flags >> 15) & 1)
        return SegmentState(
            base: UInt64(base),
            limit: g == 1 ? (limit << 12) | 0xfff : limit,
            selector: selector,
            type: UInt8(flags & 0xf),
            present: UInt8((flags >> 7) & 1),
            dpl: UInt8((flags >> 5) & 3),
            db: UInt8((flags >> 14) & 1),
            s: UInt8((flags >> 4) & 1),
            l: UInt8((flags >> 13) & 1),
            g: g,
            avl: UInt8((flags >> 12) & 1))
    }
}

/// The one GDT Swiftlet installs at `BootLayout.gdt`, shared by every entry path:
///
///     0x00  null
///     0x08  null (unused; keeps Linux's numbering)
///     0x10  __BOOT_CS: 64-bit code, DPL 0          flags 0xa09b
///     0x18  __BOOT_DS: flat 4 GiB data, DPL 0      flags 0xc093
///     0x20  64-bit TSS (16 bytes: 0x20 and 0x28)   flags 0x008b (busy), base BootLayout.tss, limit 0x67
///     0x30  flat 32-bit code, DPL 0 (PVH entry)    flags 0xc09b
///     0x38  flat data, DPL 3  (selector 0x3b)      flags 0xc0f3
///     0x40  64-bit code, DPL 3 (selector 0x43)     flags 0xa0fb
///
/// Linux's 64-bit boot protocol (boot.rst, "64-bit BOOT PROTOCOL") asks for __BOOT_CS = 0x10 and
/// __BOOT_DS = 0x18 with CS = __BOOT_CS and DS/ES/SS = __BOOT_DS; Firecracker uses 0x08/0x10 and gets away
/// with it because the kernel reloads its GDT at once, but we follow the protocol. The PVH entry wants a
/// 32-bit flat code segment (any selector), hence 0x30. The DPL 3 pair is for test guests running at CPL 3.
public enum BootGDT {
    public static let bootCodeSelector: UInt16 = 0x10
    public static let bootDataSelector: UInt16 = 0x18
    public static let tssSelector: UInt16 = 0x20
    public static let code32Selector: UInt16 = 0x30
    /// Selectors with RPL 3 (the low two bits), as user code loads them.
    public static let userDataSelector: UInt16 = 0x38 | 3
    public static let userCodeSelector: UInt16 = 0x40 | 3

    public static let code64 = SegmentDescriptor(flags: 0xa09b, base: 0, limit: 0xfffff)
    public static let data = SegmentDescriptor(flags: 0xc093, base: 0, limit: 0xfffff)
    /// Busy 64-bit TSS (type 0xb): KVM requires TR to hold a busy TSS at VM entry. G = 0, byte limit.
    public static let tss = SegmentDescriptor(flags: 0x008b, base: UInt32(BootLayout.tss.rawValue),
                                              limit: UInt32(BootLayout.tssSize - 1))
    public static let code32 = SegmentDescriptor(flags: 0xc09b, base: 0, limit: 0xfffff)
    public static let userData = SegmentDescriptor(flags: 0xc0f3, base: 0, limit: 0xfffff)
    public static let userCode64 = SegmentDescriptor(flags: 0xa0fb, base: 0, limit: 0xfffff)

    /// The table as 8-byte entries. A system descriptor (the TSS) takes two slots in long mode; the second
    /// holds base bits 63:32, which are 0 here, so a 32-bit CPU (PVH entry) sees it as a null descriptor.
    public static var entries: [UInt64] {
        [0, 0, code64.encoded, data.encoded, tss.encoded, UInt64(tss.base) >> 32,
         code32.encoded, userData.encoded, userCode64.encoded]
    }

    /// GDTR.limit: the table's size minus one.
    public static var limit: UInt16 { UInt16(entries.count * 8 - 1) }

    /// Writes the GDT, an empty IDT and the TSS. The TSS's RSP0 is `BootLayout.ring0StackTop` so that an
    /// interrupt or exception taken at CPL 3 has a stack to land on. Its I/O permission bitmap allows ports
    /// 0-0x3FF to CPL 3 code: RFLAGS.IOPL = 3 already does that on hardware virtualization, but a nested-PVM
    /// host does not honour the guest's IOPL and consults only the bitmap (measured).
    public static func write(to memory: GuestMemory) throws(BootError) {
        var table = [UInt8](repeating: 0, count: entries.count * 8)
        for (index, entry) in entries.enumerated() { table.put(entry, at: index * 8) }
        var tss = [UInt8](repeating: 0, count: Int(BootLayout.tssSize))
        tss.put(BootLayout.ring0StackTop.rawValue, at: 4)          // RSP0
        tss.put(UInt16(104), at: 102)                               // I/O map base: right after the TSS
        tss[Int(BootLayout.tssSize) - 1] = 0xFF                     // bitmap terminator (SDM 20.5.2)
        try writing("GDT, IDT and TSS") { () throws(GuestMemoryError) in
            try memory.write(table, at: BootLayout.gdt)
            // IDT limit is 0, so no gate is ever valid: an exception before the guest loads its own IDT
            // escalates to a triple fault, which KVM reports as a shutdown exit instead of running garbage.
            try memory.zero(at: BootLayout.idt, count: 16)
            try memory.write(tss, at: BootLayout.tss)
        }
    }

    public static var gdtr: DescriptorTableState { DescriptorTableState(base: BootLayout.gdt.rawValue, limit: limit) }
    public static var idtr: DescriptorTableState { DescriptorTableState(base: BootLayout.idt.rawValue, limit: 0) }
}
