import GuestMemory

/// The zero page: Linux's `struct boot_params` (arch/x86/include/uapi/asm/bootparam.h), 4096 bytes that
/// the 64-bit entry receives in RSI. It carries the setup header (0x1f1 onwards, the same bytes as in the
/// bzImage file), the e820 memory map, and where the loader put the command line, initrd and ACPI RSDP.
///
/// It is built in host memory and written to the guest in one go. Fields the loader does not set stay 0;
/// in particular the `sentinel` byte at 0x1ef stays 0, which tells the kernel the loader cleared the
/// structure (sanitize_boot_params() would otherwise wipe fields).
public struct BootParams: Equatable, Sendable {
    public static let size = 4096

    /// Offsets of the boot_params fields outside the setup header (Documentation/arch/x86/zero-page.rst).
    public enum Offset {
        public static let acpiRsdpAddr = 0x070      // u64, protocol 2.14+
        public static let extRamdiskImage = 0x0c0   // u32: bits 63:32 of ramdisk_image
        public static let extRamdiskSize = 0x0c4    // u32: bits 63:32 of ramdisk_size
        public static let extCmdLinePtr = 0x0c8     // u32: bits 63:32 of cmd_line_ptr
        public static let e820Entries = 0x1e8       // u8
        public static let sentinel = 0x1ef          // u8, must stay 0
        /// The setup header may extend at most to here (edd_mbr_sig_buffer follows).
        public static let setupHeaderLimit = 0x290
        public static let e820Table = 0x2d0         // 128 × {u64 addr, u64 size, u32 type}
        public static let e820EntrySize = 20
    }

    /// The bytes as they will appear in the guest.
    public private(set) var bytes: [UInt8]

    /// All zero.
    public init() {
        bytes = [UInt8](repeating: 0, count: Self.size)
    }

    /// For a bzImage: the setup header copied from the image, as boot.rst asks a loader to do (the kernel
    /// keeps reading its own fields, e.g. kernel_alignment and init_size, from the zero page).
    public init(copyingHeaderOf image: BzImage) {
        self.init()
        let header = image.setupHeaderBytes
        bytes.replaceSubrange(SetupHeader.Offset.start..<(SetupHeader.Offset.start + header.count), with: header)
    }

    /// For an ELF vmlinux, which has no setup header of its own: the fields the kernel checks or a loader
    /// would copy, made up the way Firecracker and Cloud Hypervisor do.
    public static func forELFKernel() -> BootParams {
        var params = BootParams()
        params.bytes.put(UInt16(0xaa55), at: SetupHeader.Offset.bootFlag)
        params.bytes.put(BzImage.headerMagic, at: SetupHeader.Offset.header)
        // 2.15: the newest protocol whose fields we fill (acpi_rsdp_addr arrived in 2.14).
        params.bytes.put(UInt16(0x020f), at: SetupHeader.Offset.version)
        // What x86-64 kernels declare (CONFIG_PHYSICAL_ALIGN's default); informational for a vmlinux, which
        // runs where its segments were loaded.
        params.bytes.put(UInt32(0x20_0000), at: SetupHeader.Offset.kernelAlignment)
        // COMMAND_LINE_SIZE on x86 is 2048 including the NUL.
        params.bytes.put(UInt32(LinuxKernelDefaults.elfCommandLineMaximum), at: SetupHeader.Offset.cmdlineSize)
        params.bytes.put(SetupHeader.XLoadFlags.kernel64, at: SetupHeader.Offset.xloadflags)
        return params
    }

    // MARK: Fields a loader fills in

    /// type_of_loader = 0xff ("undefined"), loadflags, heap_end_ptr, vid_mode.
    ///
    /// LOADED_HIGH: the protected-mode kernel is at 1 MiB or above. CAN_USE_HEAP with heap_end_ptr = 0xfe00:
    /// the usual real-mode heap end (setup code at 0x90000), only ever read by the 16-bit setup code, which
    /// the 64-bit entry skips; set so that the header is what a conventional loader would leave.
    /// KEEP_SEGMENTS is not set: it is a 32-bit-entry detail, obsolete and ignored by the 64-bit entry.
    /// vid_mode 0xffff = "normal" (no mode change).
    public mutating func setLoaderFields() {
        bytes[SetupHeader.Offset.typeOfLoader] = 0xff
        bytes[SetupHeader.Offset.loadflags] |= SetupHeader.LoadFlags.loadedHigh | SetupHeader.LoadFlags.canUseHeap
        bytes.put(UInt16(0xfe00), at: SetupHeader.Offset.heapEndPtr)
        bytes.put(UInt16(0xffff), at: SetupHeader.Offset.vidMode)
    }

    /// cmd_line_ptr (+ ext_cmd_line_ptr for the high half).
    public mutating func setCommandLine(at address: GuestAddress) {
        bytes.put(UInt32(truncatingIfNeeded: address.rawValue), at: SetupHeader.Offset.cmdLinePtr)
        bytes.put(UInt32(truncatingIfNeeded: address.rawValue >> 32), at: Offset.extCmdLinePtr)
    }

    /// ramdisk_image / ramdisk_size (+ the ext_ fields for values above 4 GiB).
    public mutating func setRamdisk(at address: GuestAddress, size: UInt64) {
        bytes.put(UInt32(truncatingIfNeeded: address.rawValue), at: SetupHeader.Offset.ramdiskImage)
        bytes.put(UInt32(truncatingIfNeeded: size), at: SetupHeader.Offset.ramdiskSize)
        bytes.put(UInt32(truncatingIfNeeded: address.rawValue >> 32), at: Offset.extRamdiskImage)
        bytes.put(UInt32(truncatingIfNeeded: size >> 32), at: Offset.extRamdiskSize)
    }

    /// acpi_rsdp_addr (protocol 2.14+): spares the kernel its scan of 0xe0000 – 0xfffff for "RSD PTR ".
    public mutating func setACPIRSDP(_ address: GuestAddress) {
        bytes.put(address.rawValue, at: Offset.acpiRsdpAddr)
    }

    /// code32_start: where the protected-mode kernel was loaded.
    public mutating func setCode32Start(_ address: GuestAddress) {
        bytes.put(UInt32(truncatingIfNeeded: address.rawValue), at: SetupHeader.Offset.code32Start)
    }

    /// e820_entries and e820_table.
    public mutating func setE820(_ map: E820Map) {
        precondition(map.entries.count <= E820Map.maxEntries)
        bytes[Offset.e820Entries] = UInt8(map.entries.count)
        for (index, entry) in map.entries.enumerated() {
            let at = Offset.e820Table + index * Offset.e820EntrySize
            bytes.put(entry.address.rawValue, at: at)
            bytes.put(entry.size, at: at + 8)
            bytes.put(entry.type.rawValue, at: at + 16)
        }
    }

    public func write(to memory: GuestMemory, at address: GuestAddress = BootLayout.zeroPage) throws(BootError) {
        try writing("zero page at \(address)") { () throws(GuestMemoryError) in try memory.write(bytes, at: address) }
    }

    // MARK: Reading back (tests, logs)

    public func u8(at offset: Int) -> UInt8 { bytes[offset] }
    public func u16(at offset: Int) -> UInt16 { bytes.le16(at: offset)! }
    public func u32(at offset: Int) -> UInt32 { bytes.le32(at: offset)! }
    public func u64(at offset: Int) -> UInt64 { bytes.le64(at: offset)! }
}

/// Values used when a kernel has no setup header to say them.
enum LinuxKernelDefaults {
    /// x86 COMMAND_LINE_SIZE (2048) minus the terminating NUL.
    static let elfCommandLineMaximum = 2047
}
