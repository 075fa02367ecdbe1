/// What kind of kernel file a user handed us, decided from its headers alone (cheap: nothing is
/// decompressed), so a CLI can reject a wrong file before it builds a VM.
public enum KernelKind: Equatable, Sendable, CustomStringConvertible {
    /// A bzImage speaking the given boot protocol, with its payload's compression.
    case bzImage(protocolVersion: UInt16, payload: PayloadFormat)
    /// An uncompressed ELF64 x86-64 executable (vmlinux, or a test guest).
    case elf

    /// The kind, or nil when `bytes` is not a kernel Swiftlet can boot. `validate` says why.
    public static func identify(_ bytes: [UInt8]) -> KernelKind? {
        try? validate(bytes)
    }

    /// The kind, or the error that names what is wrong with the file's headers.
    public static func validate(_ bytes: [UInt8]) throws(BootError) -> KernelKind {
        if ElfKernel.hasMagic(bytes) {
            _ = try ElfKernel(bytes)
            return .elf
        }
        let image = try BzImage(bytes)
        return .bzImage(protocolVersion: image.header.version, payload: image.payloadFormat)
    }

    public var description: String {
        switch self {
        case let .bzImage(version, payload):
            return "bzImage, boot protocol \(BzImage.versionString(version)), payload \(payload)"
        case .elf:
            return "ELF vmlinux"
        }
    }
}
