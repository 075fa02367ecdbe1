/// The gzip container (RFC 1952) around a DEFLATE stream: a header with optional fields, the compressed
/// data, then CRC-32 and the input size modulo 2^32 ("ISIZE"), both checked.
///
/// The kernel build writes it with `gzip -n -9` (no name, no timestamp); mkpiggy takes ISIZE as the size
/// of the decompressed vmlinux.
public enum Gzip {
    // FLG bits (RFC 1952, 2.3.1).
    static let flagHeaderCRC: UInt8 = 1 << 1
    static let flagExtra: UInt8 = 1 << 2
    static let flagName: UInt8 = 1 << 3
    static let flagComment: UInt8 = 1 << 4
    static let reservedFlags: UInt8 = 0xe0

    /// Decodes the first gzip member of `input`; bytes after its trailer are ignored (as gzip does).
    public static func decompress(_ input: ArraySlice<UInt8>, maxOutputSize: Int) throws(BootError) -> [UInt8] {
        let base = input.startIndex
        var position = base
        func fail(_ reason: String) -> BootError { .corruptPayload(format: .gzip, offset: position - base, reason: reason) }
        func take(_ count: Int) throws(BootError) -> ArraySlice<UInt8> {
            guard input.endIndex - position >= count else { throw fail("input ends inside the gzip header") }
            defer { position += count }
            return input[position..<(position + count)]
        }
        func skipZeroTerminated() throws(BootError) {
            while true {
                if try take(1).first == 0 { return }
            }
        }

        // ID1 ID2 CM FLG MTIME(4) XFL OS
        let bytes = Array(try take(10))
        position = base
        guard bytes[0] == 0x1f, bytes[1] == 0x8b else { throw fail("no gzip magic (1f 8b)") }
        guard bytes[2] == 8 else { throw fail("compression method \(bytes[2]) (only 8, deflate, exists)") }
        let flags = bytes[3]
        guard flags & reservedFlags == 0 else { throw fail("reserved header flags set (0x\(String(flags, radix: 16)))") }
        position = base + 10
        if flags & flagExtra != 0 {
            let lengthBytes = try take(2)
            let length = Int(lengthBytes[lengthBytes.startIndex]) | Int(lengthBytes[lengthBytes.startIndex + 1]) << 8
            _ = try take(length)
        }
        if flags & flagName != 0 { try skipZeroTerminated() }
        if flags & flagComment != 0 { try skipZeroTerminated() }
        if flags & flagHeaderCRC != 0 { _ = try take(2) }

        let (output, end) = try Inflate.decompress(input[position...], maxOutputSize: maxOutputSize)
        position = end
        let trailer = Array(try take(8))
        let storedCRC = UInt32(trailer[0]) | UInt32(trailer[1]) << 8 | UInt32(trailer[2]) << 16 | UInt32(trailer[3]) << 24
        let storedSize = UInt32(trailer[4]) | UInt32(trailer[5]) << 8 | UInt32(trailer[6]) << 16 | UInt32(trailer[7]) << 24
        guard storedSize == UInt32(truncatingIfNeeded: output.count) else {
            throw fail("trailer says \(storedSize) bytes, the data decoded to \(output.count)")
        }
        let crc = CRC32.checksum(output)
        guard storedCRC == crc else {
            throw fail("CRC-32 mismatch (trailer 0x\(String(storedCRC, radix: 16)), data 0x\(String(crc, radix: 16)))")
        }
        return output
    }
}

/// CRC-32 as gzip uses it (ISO 3309 polynomial, reflected: 0xEDB88320).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { index -> UInt32 in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 == 1 ? 0xEDB8_8320 ^ (value >> 1) : value >> 1 }
        return value
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        let table = self.table
        for byte in bytes {
            crc = table[Int((crc ^ UInt32(byte)) & 0xff)] ^ (crc >> 8)
        }
        return ~crc
    }
}
