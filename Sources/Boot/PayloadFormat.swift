/// How the vmlinux inside a bzImage is compressed, recognised by the magic bytes the compressors write
/// (the kernel chooses one at build time: CONFIG_KERNEL_GZIP, _LZ4, _ZSTD, ...).
public enum PayloadFormat: String, Equatable, Sendable, CustomStringConvertible {
    case gzip
    case bzip2
    case lzma
    case xz
    case lzo
    case lz4
    case zstd
    /// CONFIG_KERNEL_UNCOMPRESSED: the payload is the (stripped) vmlinux ELF itself.
    case uncompressed
    case unknown

    /// Recognises the format from the first bytes of a payload.
    public static func detect(_ bytes: ArraySlice<UInt8>) -> PayloadFormat {
        func starts(with magic: [UInt8]) -> Bool {
            bytes.count >= magic.count && zip(bytes, magic).allSatisfy { $0 == $1 }
        }
        // Each magic is the one the corresponding tool writes first (RFC 1952 for gzip; the xz, zstd and
        // lz4 format documents; lzop's file header; the LZMA "alone" header with the kernel's lc/lp/pb).
        if starts(with: [0x1f, 0x8b]) { return .gzip }
        if starts(with: [0x42, 0x5a, 0x68]) { return .bzip2 }                    // "BZh"
        if starts(with: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]) { return .xz }     // FD "7zXZ" 00
        if starts(with: [0x02, 0x21, 0x4c, 0x18]) { return .lz4 }                // legacy frame magic
        if starts(with: [0x28, 0xb5, 0x2f, 0xfd]) { return .zstd }
        if starts(with: [0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a]) { return .lzo } // 0x89 "LZO"
        if starts(with: [0x5d, 0x00, 0x00]) { return .lzma }                      // props 0x5d (lc=3 lp=0 pb=2)
        if starts(with: [0x7f, 0x45, 0x4c, 0x46]) { return .uncompressed }       // 0x7f "ELF"
        return .unknown
    }

    /// True when Swiftlet can unpack this payload on the host (instead of letting the kernel's own
    /// decompressor do it inside the guest).
    public var canUnpackInHost: Bool {
        switch self {
        case .lz4, .gzip, .uncompressed: return true
        default: return false
        }
    }

    public var description: String { rawValue }
}
