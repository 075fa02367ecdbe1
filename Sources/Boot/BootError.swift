import GuestMemory

/// Everything that can go wrong while loading a kernel. Each case names the problem in the words a user
/// needs to fix it ("boot protocol 2.03 too old"), with the numbers that prove it.
///
/// Kernel images, initrds and compressed payloads are untrusted input: every malformed file ends here as
/// an error, never as a crash or an out-of-range access.
public enum BootError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file is neither a bzImage (no "HdrS" at 0x202) nor an ELF executable.
    case notAKernel(String)
    /// The file ends before a structure it declares (`what`) is complete.
    case truncated(what: String, needed: UInt64, available: UInt64)
    /// The bzImage speaks a boot protocol older than 2.06 (the oldest one Swiftlet fills in).
    case protocolTooOld(version: UInt16)
    /// The bzImage does not declare a 64-bit entry point (xloadflags bit 0, XLF_KERNEL_64).
    case no64BitEntry(version: UInt16)
    /// The ELF file breaks a rule of the ELF64 format or of what a kernel image may contain.
    case invalidELF(String)
    /// A compressed payload is malformed; `offset` is the byte offset into the compressed input.
    case corruptPayload(format: PayloadFormat, offset: Int, reason: String)
    /// The payload format has no decoder in Swiftlet.
    case unsupportedPayload(PayloadFormat)
    /// The command line (in bytes, without its NUL) is longer than the kernel accepts (cmdline_size).
    case commandLineTooLong(length: Int, maximum: Int)
    /// The initrd does not fit between the end of the kernel and the highest address it may occupy.
    case initrdDoesNotFit(size: UInt64, limit: GuestAddress, kernelEnd: GuestAddress)
    /// The kernel (or one of its segments) does not fit in guest RAM, or overlaps what it must not.
    case kernelDoesNotFit(String)
    /// The guest's RAM layout cannot hold a PC memory map (too little RAM, too many ranges).
    case unsupportedMemoryLayout(String)
    /// PVH entry was requested but the kernel carries no XEN_ELFNOTE_PHYS32_ENTRY note (or cannot be
    /// unpacked to find it).
    case noPVHEntry(String)
    /// A guest memory access failed while writing `what` (a bug in the layout, or a too-small guest).
    case guestMemory(what: String, GuestMemoryError)
    /// The MP table's configuration breaks a rule of the MP specification or of what Linux accepts.
    case invalidMPTable(String)

    public var description: String {
        switch self {
        case let .notAKernel(reason):
            return "not a Linux kernel (\(reason))"
        case let .truncated(what, needed, available):
            return "truncated kernel image: \(what) needs \(needed) bytes, the file has \(available)"
        case let .protocolTooOld(version):
            return "boot protocol \(BzImage.versionString(version)) too old (Swiftlet needs 2.06 or newer)"
        case let .no64BitEntry(version):
            return "kernel has no 64-bit entry point (boot protocol \(BzImage.versionString(version)), "
                + "XLF_KERNEL_64 clear): is this a 32-bit kernel?"
        case let .invalidELF(reason):
            return "invalid ELF kernel: \(reason)"
        case let .corruptPayload(format, offset, reason):
            return "corrupt \(format) data at byte \(offset): \(reason)"
        case let .unsupportedPayload(format):
            return "kernel payload compressed with \(format), which Swiftlet cannot unpack"
        case let .commandLineTooLong(length, maximum):
            return "kernel command line of \(length) bytes is too long (this kernel accepts at most \(maximum))"
        case let .initrdDoesNotFit(size, limit, kernelEnd):
            return "initrd of \(Self.mebibytes(size)) does not fit below \(limit) "
                + "(it must lie above the kernel, which ends at \(kernelEnd))"
        case let .kernelDoesNotFit(reason):
            return "kernel does not fit: \(reason)"
        case let .unsupportedMemoryLayout(reason):
            return "unsupported guest memory layout: \(reason)"
        case let .noPVHEntry(reason):
            return "PVH entry not available: \(reason)"
        case let .guestMemory(what, error):
            return "writing \(what) into guest memory failed: \(error)"
        case let .invalidMPTable(reason):
            return "MP table: \(reason)"
        }
    }

    /// "8.1 MiB", for messages about sizes a user chose.
    static func mebibytes(_ bytes: UInt64) -> String {
        let tenths = (bytes * 10 + (1 << 19)) >> 20
        return "\(tenths / 10).\(tenths % 10) MiB"
    }
}

/// Runs a guest-memory write, tagging a failure with what was being written.
@inline(__always)
func writing<R>(_ what: @autoclosure () -> String, _ body: () throws(GuestMemoryError) -> R) throws(BootError) -> R {
    do {
        return try body()
    } catch {
        throw .guestMemory(what: what(), error)
    }
}
