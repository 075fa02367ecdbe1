/// The fields of the Linux setup header ("struct setup_header", boot.rst) that a 64-bit loader needs.
/// Offsets are file offsets, which are also the offsets inside the zero page (struct boot_params).
///
/// Fields added by later protocol versions read as 0 when the header is too short to hold them, which is
/// what the protocol says an older kernel means.
public struct SetupHeader: Equatable, Sendable {
    /// Number of 512-byte setup sectors after the boot sector (0 means 4).
    public var setupSects: UInt8
    /// Boot protocol version, e.g. 0x020f for 2.15.
    public var version: UInt16
    /// LOADED_HIGH, KASLR_FLAG, QUIET_FLAG, KEEP_SEGMENTS, CAN_USE_HEAP.
    public var loadflags: UInt8
    /// Where a non-relocatable protected-mode kernel must be loaded (default 1 MiB).
    public var code32Start: UInt32
    /// Highest address the initrd may occupy (its last byte), 2.03+.
    public var initrdAddrMax: UInt32
    /// Alignment a relocatable kernel needs, 2.05+.
    public var kernelAlignment: UInt32
    public var relocatableKernel: Bool
    /// log2 of the minimum alignment, 2.10+.
    public var minAlignment: UInt8
    /// XLF_KERNEL_64 and friends, 2.12+.
    public var xloadflags: UInt16
    /// Longest command line the kernel accepts, without the terminating NUL, 2.06+.
    public var cmdlineSize: UInt32
    /// The compressed payload, relative to the start of the protected-mode kernel, 2.08+.
    public var payloadOffset: UInt32
    public var payloadLength: UInt32
    /// Preferred load address of a relocatable kernel, 2.10+.
    public var prefAddress: UInt64
    /// Bytes the kernel needs from its load address until it has set up its own memory, 2.10+.
    public var initSize: UInt32

    /// Offsets inside the file and the zero page (boot.rst, "THE REAL-MODE KERNEL HEADER").
    public enum Offset {
        public static let start = 0x1f1
        public static let setupSects = 0x1f1
        public static let vidMode = 0x1fa
        public static let bootFlag = 0x1fe
        public static let jump = 0x200
        public static let header = 0x202
        public static let version = 0x206
        public static let typeOfLoader = 0x210
        public static let loadflags = 0x211
        public static let code32Start = 0x214
        public static let ramdiskImage = 0x218
        public static let ramdiskSize = 0x21c
        public static let heapEndPtr = 0x224
        public static let cmdLinePtr = 0x228
        public static let initrdAddrMax = 0x22c
        public static let kernelAlignment = 0x230
        public static let relocatableKernel = 0x234
        public static let minAlignment = 0x235
        public static let xloadflags = 0x236
        public static let cmdlineSize = 0x238
        public static let payloadOffset = 0x248
        public static let payloadLength = 0x24c
        public static let prefAddress = 0x258
        public static let initSize = 0x260
        /// One past the last field of protocol 2.15 (kernel_info_offset at 0x268).
        public static let end = 0x26c
    }

    /// Bits of `loadflags` (boot.rst).
    public enum LoadFlags {
        /// The protected-mode code is loaded at 0x100000 or above (always, for a bzImage).
        public static let loadedHigh: UInt8 = 1 << 0
        /// Set by the kernel's decompressor when it randomised the kernel's location.
        public static let kaslr: UInt8 = 1 << 1
        public static let quiet: UInt8 = 1 << 5
        /// Obsolete (a 32-bit entry detail); the 64-bit entry ignores it.
        public static let keepSegments: UInt8 = 1 << 6
        /// heap_end_ptr is valid.
        public static let canUseHeap: UInt8 = 1 << 7
    }

    /// Bits of `xloadflags` (boot.rst, protocol 2.12+).
    public enum XLoadFlags {
        /// The kernel has the legacy 64-bit entry point at load address + 0x200.
        public static let kernel64: UInt16 = 1 << 0
        /// Kernel, boot_params, command line and initrd may be above 4 GiB.
        public static let canBeLoadedAbove4G: UInt16 = 1 << 1
    }

    /// Reads the header from a bzImage whose "HdrS" magic the caller already checked.
    init(parsing bytes: [UInt8]) throws(BootError) {
        // The header's declared end: 0x202 + the jump displacement at 0x201.
        guard let jumpDisplacement = bytes.le8(at: Offset.jump + 1), let version = bytes.le16(at: Offset.version) else {
            throw .truncated(what: "setup header", needed: UInt64(Offset.version + 2), available: UInt64(bytes.count))
        }
        let declaredEnd = Offset.jump + 2 + Int(jumpDisplacement)
        guard bytes.count >= declaredEnd else {
            throw .truncated(what: "setup header", needed: UInt64(declaredEnd), available: UInt64(bytes.count))
        }
        // A field exists when it lies inside the declared header (and, of course, inside the file).
        func field<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            guard offset + MemoryLayout<T>.size <= declaredEnd else { return 0 }
            switch MemoryLayout<T>.size {
            case 1: return T(bytes.le8(at: offset) ?? 0)
            case 2: return T(bytes.le16(at: offset) ?? 0)
            case 4: return T(bytes.le32(at: offset) ?? 0)
            default: return T(bytes.le64(at: offset) ?? 0)
            }
        }
        setupSects = bytes[Offset.setupSects]
        self.version = version
        loadflags = field(Offset.loadflags, UInt8.self)
        code32Start = field(Offset.code32Start, UInt32.self)
        initrdAddrMax = field(Offset.initrdAddrMax, UInt32.self)
        kernelAlignment = field(Offset.kernelAlignment, UInt32.self)
        relocatableKernel = field(Offset.relocatableKernel, UInt8.self) != 0
        minAlignment = field(Offset.minAlignment, UInt8.self)
        xloadflags = version >= 0x020c ? field(Offset.xloadflags, UInt16.self) : 0
        cmdlineSize = version >= 0x0206 ? field(Offset.cmdlineSize, UInt32.self) : 255
        payloadOffset = version >= 0x0208 ? field(Offset.payloadOffset, UInt32.self) : 0
        payloadLength = version >= 0x0208 ? field(Offset.payloadLength, UInt32.self) : 0
        prefAddress = version >= 0x020a ? field(Offset.prefAddress, UInt64.self) : 0
        initSize = version >= 0x020a ? field(Offset.initSize, UInt32.self) : 0
        if initrdAddrMax == 0 {
            // Protocols before 2.03 did not say; the documented default is 0x37ffffff.
            initrdAddrMax = 0x37ff_ffff
        }
    }
}
