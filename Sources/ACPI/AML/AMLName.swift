/// An AML NameString (ACPI 6.5 §20.2.2): an optional root (`\`) or parent (`^`) prefix, then zero or
/// more 4-character name segments.
///
/// Written as in ASL: `"_HID"`, `"COM1"`, `"\\_SB_.PCI0"`, `"^CPU0"`. Segments shorter than four characters
/// are padded with `_`, as the ASL compiler does (`"_S5"` is `_S5_`, `"RTC"` is `RTC_`). A segment starts
/// with `A-Z` or `_` and continues with `A-Z`, `0-9` or `_`.
///
/// Names are chosen by the VMM's own code, so an invalid one is a programmer error and traps.
public struct AMLName: AMLEncodable, Hashable, ExpressibleByStringLiteral, CustomStringConvertible {
    /// Number of leading `^` (each one goes up a scope); ignored when `isRooted`.
    public let parentCount: Int
    public let isRooted: Bool
    /// The padded 4-character segments.
    public let segments: [String]

    public init(_ path: String) {
        var rest = Substring(path)
        isRooted = rest.first == "\\"
        if isRooted { rest = rest.dropFirst() }
        var parents = 0
        while !isRooted, rest.first == "^" {
            parents += 1
            rest = rest.dropFirst()
        }
        parentCount = parents
        segments = rest.isEmpty ? [] : rest.split(separator: ".", omittingEmptySubsequences: false).map { segment in
            precondition(AMLName.isValidSegment(segment), "invalid AML name segment '\(segment)' in '\(path)'")
            return String(segment) + String(repeating: "_", count: 4 - segment.count)
        }
        precondition(segments.count <= 255, "AML name '\(path)' has more than 255 segments")
    }

    public init(stringLiteral value: String) { self.init(value) }

    static func isValidSegment(_ segment: Substring) -> Bool {
        guard (1...4).contains(segment.count) else { return false }
        for (index, character) in segment.utf8.enumerated() {
            let isLeadChar = (character >= UInt8(ascii: "A") && character <= UInt8(ascii: "Z")) || character == UInt8(ascii: "_")
            let isDigit = character >= UInt8(ascii: "0") && character <= UInt8(ascii: "9")
            guard isLeadChar || (index > 0 && isDigit) else { return false }
        }
        return true
    }

    public func encodeAML(into bytes: inout [UInt8]) {
        if isRooted {
            bytes.append(AMLOpcode.rootPrefix)
        } else {
            bytes += repeatElement(AMLOpcode.parentPrefix, count: parentCount)
        }
        switch segments.count {
        case 0: bytes.append(0x00)  // NullName
        case 1: break
        case 2: bytes.append(AMLOpcode.dualNamePrefix)
        default:
            bytes.append(AMLOpcode.multiNamePrefix)
            bytes.append(UInt8(segments.count))
        }
        for segment in segments { bytes += segment.utf8 }
    }

    public var description: String {
        (isRooted ? "\\" : String(repeating: "^", count: parentCount)) + segments.joined(separator: ".")
    }
}
