/// A byte count written the way people write memory sizes: `512M`, `2G`, `1536MiB`, `65536K`, or plain bytes.
public struct MemorySize: Equatable, Sendable, CustomStringConvertible, Codable {
    public var bytes: UInt64

    public init(bytes: UInt64) { self.bytes = bytes }

    public static func mebibytes(_ count: UInt64) -> MemorySize { MemorySize(bytes: count << 20) }

    /// Parses `text`; nil when it is not a size. Units are binary (K = 1024) as in QEMU's `-m`; without a unit
    /// the number is MiB (QEMU does the same: `-m 512` is 512 MiB).
    public init?(parsing text: String) {
        let trimmed = text.trimmingASCIIWhitespace()
        let digits = trimmed.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let value = UInt64(digits) else { return nil }
        var unit = trimmed.dropFirst(digits.count).uppercased()
        if unit.hasSuffix("IB") { unit.removeLast(2) } else if unit.count == 2, unit.hasSuffix("B") { unit.removeLast() }
        let shift: UInt64
        switch unit {
        case "": shift = 20   // a bare number is MiB, as with QEMU's `-m 512`
        case "B": shift = 0
        case "K": shift = 10
        case "M": shift = 20
        case "G": shift = 30
        case "T": shift = 40
        default: return nil
        }
        guard value.leadingZeroBitCount >= Int(shift) else { return nil }
        bytes = value << shift
    }

    public var description: String {
        if bytes >= 1 << 30, bytes % (1 << 30) == 0 { return "\(bytes >> 30) GiB" }
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20) MiB" }
        if bytes % 1024 == 0 { return "\(bytes >> 10) KiB" }
        return "\(bytes) bytes"
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[start...end])
    }
}
