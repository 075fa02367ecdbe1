import GuestMemory

/// Where Swiftlet puts the boot structures in guest-physical memory. All of them live in the first
/// 1 MiB, below the kernel, in places a PC firmware would also leave alone or use for the same purpose:
///
///     0x0000_0000   real-mode IVT and BIOS data area (left zero; Linux does not need them here)
///     0x0000_0500   GDT                 (BootLayout.gdt, 16 descriptors at most)
///     0x0000_0580   IDT                 (empty: limit 0, so any early exception shuts the guest down)
///     0x0000_0600   64-bit TSS          (104 bytes; RSP0 for the CPL 3 test guests)
///     0x0000_6000   PVH hvm_start_info  (+ module list at 0x6040, memory map at 0x6080)
///     0x0000_7000   zero page           (struct boot_params, 4 KiB)
///     0x0000_8000   boot stack          (grows down from 0x8ff0)
///     0x0000_9000   PML4                (one page)
///     0x0000_a000   PDPT                (one page)
///     0x0000_b000   4 page directories  (2 MiB pages identity-mapping 0 – 4 GiB; up to 0xf000)
///     0x0000_f000   ring-0 stack        (TSS.RSP0, grows down from 0xfff0)
///     0x0002_0000   kernel command line (NUL-terminated, up to cmdline_size + 1 bytes)
///     0x0009_fc00   EBDA, 0xa0000 VGA hole, 0xe0000 – 0xfffff BIOS area: e820-reserved (ACPI tables go there)
///     0x0010_0000   protected-mode kernel of a non-relocatable bzImage (1 MiB)
///     0x0100_0000   kernel of a relocatable bzImage / vmlinux (its pref_address or p_paddr, 16 MiB)
///     …             initrd, as high as possible below min(initrd_addr_max, end of low RAM)
///
/// The same addresses serve the Linux 64-bit entry, the PVH 32-bit entry and the tiny test guests.
public enum BootLayout {
    public static let gdt = GuestAddress(0x500)
    /// Room for 16 eight-byte descriptors.
    public static let gdtMaxSize: UInt64 = 0x80
    public static let idt = GuestAddress(0x580)
    public static let tss = GuestAddress(0x600)
    /// A 64-bit TSS is 104 bytes (Intel SDM Vol. 3A, 8.7 "Task Management in 64-bit Mode").
    /// The 64-bit TSS (104 bytes) followed by an I/O permission bitmap for ports 0-0x3FF (128 bytes, all
    /// allowed) and its terminating 0xFF byte.
    public static let tssSize: UInt64 = 104 + 128 + 1

    public static let pvhStartInfo = GuestAddress(0x6000)
    public static let pvhModuleList = GuestAddress(0x6040)
    public static let pvhMemoryMap = GuestAddress(0x6080)

    public static let zeroPage = GuestAddress(0x7000)
    public static let zeroPageSize: UInt64 = 0x1000

    /// Initial RSP for the Linux entries: 16-byte aligned, inside the page 0x8000 – 0x8fff.
    public static let bootStackTop = GuestAddress(0x8ff0)

    public static let pml4 = GuestAddress(0x9000)
    public static let pdpt = GuestAddress(0xa000)
    /// First of four page directories (one per GiB of the identity map).
    public static let pageDirectories = GuestAddress(0xb000)
    /// How much the boot page tables identity-map: the first 4 GiB, with 2 MiB pages.
    public static let identityMappedSize: UInt64 = 4 << 30

    /// TSS.RSP0: the stack the CPU switches to when an interrupt or exception arrives at CPL 3.
    public static let ring0StackTop = GuestAddress(0xfff0)

    public static let commandLine = GuestAddress(0x20000)
    /// The command line area runs up to 0x30000; no kernel accepts more than that (Linux: 2 KiB).
    public static let commandLineMaxSize: UInt64 = 0x10000

    /// Start of the EBDA on a PC: the last 1 KiB of the 640 KiB of conventional memory.
    public static let ebdaStart = GuestAddress(0x9fc00)
    /// Start of the legacy VGA / option ROM hole.
    public static let vgaHoleStart = GuestAddress(0xa0000)
    /// The BIOS area (0xe0000 – 0xfffff): where the ACPI RSDP is searched for and the tables live.
    public static let biosAreaStart = GuestAddress(0xe0000)
    /// 1 MiB: the end of the PC's real-mode address space and the start of "high memory".
    public static let highMemoryStart = GuestAddress(0x100000)

    /// Everything below this belongs to the boot structures above; a kernel segment must not reach into it.
    public static let kernelMinimumAddress = highMemoryStart
    /// Load address of the protected-mode part of a bzImage that is not relocatable (code32_start).
    public static let defaultKernelAddress = highMemoryStart
}
