import GuestMemory

/// A bzImage: the real-mode setup code (with the setup header at 0x1f1) followed by the protected-mode
/// kernel, whose middle is the compressed vmlinux ("payload").
///
/// Layout and field meanings: Linux Documentation/arch/x86/boot.rst, "THE REAL-MODE KERNEL HEADER".
/// Every offset and length read from the file is checked against the file's size.
public struct BzImage: Sendable {
    /// The whole file.
    public let bytes: [UInt8]
    public let header: SetupHeader
    /// Size of the real-mode part ((setup_sects + 1) * 512); the protected-mode kernel starts there.
    public let setupSize: Int

    /// The header magic "HdrS" at 0x202, little-endian.
    public static let headerMagic: UInt32 = 0x5372_6448
    /// Oldest boot protocol Swiftlet fills in: 2.06 added cmdline_size, which we must check against.
    public static let minimumProtocol: UInt16 = 0x0206
    /// startup_64 lies 0x200 bytes into the protected-mode kernel (boot.rst, "64-bit BOOT PROTOCOL").
    public static let startup64Offset: UInt64 = 0x200

    public init(_ bytes: [UInt8]) throws(BootError) {
        guard bytes.count >= SetupHeader.Offset.header + 4 else {
            throw .notAKernel("\(bytes.count) bytes is too short for a setup header")
        }
        guard bytes.le32(at: SetupHeader.Offset.header) == Self.headerMagic else {
            throw .notAKernel("no HdrS magic at 0x202")
        }
        let header = try SetupHeader(parsing: bytes)
        guard header.version >= Self.minimumProtocol else { throw .protocolTooOld(version: header.version) }
        guard header.xloadflags & SetupHeader.XLoadFlags.kernel64 != 0 else {
            throw .no64BitEntry(version: header.version)
        }
        // "If setup_sects is 0, the real value is 4." The boot sector itself is one more 512-byte sector.
        let setupSectors = Int(header.setupSects == 0 ? 4 : header.setupSects)
        let setupSize = (setupSectors + 1) * 512
        guard bytes.count > setupSize else {
            throw .truncated(what: "\(setupSectors) setup sectors and a protected-mode kernel",
                             needed: UInt64(setupSize + 1), available: UInt64(bytes.count))
        }
        self.bytes = bytes
        self.header = header
        self.setupSize = setupSize
        // The payload must lie inside the protected-mode kernel; check now so that later users can slice.
        if header.payloadLength > 0 {
            let start = UInt64(setupSize) + UInt64(header.payloadOffset)
            guard bytes.checkedRange(offset: start, count: UInt64(header.payloadLength)) != nil else {
                throw .truncated(what: "payload (offset \(header.payloadOffset), length \(header.payloadLength))",
                                 needed: start + UInt64(header.payloadLength), available: UInt64(bytes.count))
            }
        }
    }

    /// The part loaded at the kernel's load address (1 MiB or pref_address); startup_64 is at +0x200.
    public var protectedModeKernel: ArraySlice<UInt8> { bytes[setupSize...] }

    /// The compressed vmlinux (payload_offset / payload_length, protocol 2.08+), or nil if the header does
    /// not describe one. Includes the 4-byte uncompressed size the kernel build appends to most formats.
    public var payload: ArraySlice<UInt8>? {
        guard header.version >= 0x0208, header.payloadLength > 0 else { return nil }
        let start = setupSize + Int(header.payloadOffset)
        return bytes[start..<(start + Int(header.payloadLength))]
    }

    public var payloadFormat: PayloadFormat {
        payload.map { PayloadFormat.detect($0) } ?? .unknown
    }

    /// The setup header as the boot loader copies it into the zero page: from 0x1f1 up to the end the
    /// header declares, which is 0x202 plus the byte at 0x201 (the displacement of the short jump at 0x200
    /// that skips over the header). Capped at 0x290, where struct boot_params continues with other fields.
    public var setupHeaderBytes: ArraySlice<UInt8> {
        let end = min(SetupHeader.Offset.jump + 2 + Int(bytes[SetupHeader.Offset.jump + 1]), BootParams.Offset.setupHeaderLimit)
        return bytes[SetupHeader.Offset.start..<min(end, bytes.count)]
    }

    /// Where the protected-mode kernel goes when it is loaded as is (no host unpacking).
    ///
    /// A relocatable kernel may run at any kernel_alignment-aligned address; its pref_address (2.10+) is
    /// where it was linked (16 MiB for Debian's) and avoids a self-relocation. A non-relocatable kernel
    /// must be at code32_start, traditionally 1 MiB.
    public var loadAddress: GuestAddress {
        let aligned = header.kernelAlignment != 0 && header.kernelAlignment.nonzeroBitCount == 1
            && header.prefAddress % UInt64(header.kernelAlignment) == 0
        if header.relocatableKernel, header.version >= 0x020a, aligned,
           header.prefAddress >= BootLayout.kernelMinimumAddress.rawValue {
            return GuestAddress(header.prefAddress)
        }
        if header.code32Start >= BootLayout.kernelMinimumAddress.rawValue {
            return GuestAddress(UInt64(header.code32Start))
        }
        return BootLayout.defaultKernelAddress
    }

    /// "2.15" for 0x020f.
    public static func versionString(_ version: UInt16) -> String {
        "\(version >> 8).\(String(version & 0xff).count < 2 ? "0" : "")\(version & 0xff)"
    }
}
