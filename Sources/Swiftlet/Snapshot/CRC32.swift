/// CRC-32 as zlib, PNG and Ethernet compute it (IEEE 802.3: reflected polynomial 0xEDB88320, initial value and
/// final XOR 0xFFFFFFFF). `CRC32.checksum(Array("123456789".utf8)) == 0xCBF43926`, the standard check value.
enum CRC32 {
    private static let table: [UInt32] = (0..<256).map { index in
        var value = UInt32(index)
        for _ in 0..<8 { value = value & 1 != 0 ? (value >> 1) ^ 0xEDB8_8320 : value >> 1 }
        return value
    }

    static func checksum<Bytes: Collection<UInt8>>(_ bytes: Bytes, continuing previous: UInt32 = 0) -> UInt32 {
        // Contiguous bytes (arrays and their slices: every caller) go through buffer pointers, which matters in
        // debug builds, where generic iteration costs ~60 ns a byte and restores check a ~15 KB state file.
        if let crc = bytes.withContiguousStorageIfAvailable({ buffer in
            table.withUnsafeBufferPointer { table in
                var crc = ~previous
                for byte in buffer { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
                return ~crc
            }
        }) { return crc }
        var crc = ~previous
        for byte in bytes { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return ~crc
    }
}
