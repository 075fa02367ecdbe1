import ACPI
import GuestMemory

/// Little-endian field readers over table bytes, so tests can state offsets exactly as the spec does.
extension Array where Element == UInt8 {
    func u8(_ offset: Int) -> UInt8 { self[offset] }

    func u16(_ offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }

    func u32(_ offset: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 | UInt32(self[offset + $1]) << (8 * $1) }
    }

    func u64(_ offset: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 | UInt64(self[offset + $1]) << (8 * $1) }
    }

    func ascii(_ offset: Int, _ count: Int) -> String {
        String(decoding: self[offset..<(offset + count)], as: UTF8.self)
    }

    /// The 8-bit sum of all bytes; a valid ACPI table (or RSDP range) sums to 0.
    var byteSum: UInt8 { reduce(0, &+) }
}

extension GuestMemory {
    func u32(at address: UInt64) throws -> UInt32 { try load(UInt32.self, at: GuestAddress(address)) }
    func u64(at address: UInt64) throws -> UInt64 { try load(UInt64.self, at: GuestAddress(address)) }
    func bytes(at address: UInt64, count: Int) throws -> [UInt8] { try read(at: GuestAddress(address), count: count) }
}

/// Guest memory shaped like a small Swiftlet VM.
func makeGuestMemory(size: UInt64 = 64 << 20) throws -> GuestMemory {
    try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: size))
}

/// Bytes written as hex in the order they appear, e.g. `hex("08 5F 53 35 5F")`, for hand-checked encodings.
func hex(_ text: String) -> [UInt8] {
    text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map { UInt8($0, radix: 16)! }
}

/// "_HID" etc. as bytes.
func name(_ text: String) -> [UInt8] { Array(text.utf8) }
