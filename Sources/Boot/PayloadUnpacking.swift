extension BzImage {
    /// Refuse to produce a vmlinux larger than this from a payload (a real one is 20–60 MiB).
    public static let maxUnpackedSize = 1 << 30

    /// Unpacks the payload into the vmlinux ELF it contains, on the host.
    ///
    /// The kernel build (arch/x86/boot/compressed/Makefile and mkpiggy.c) appends the vmlinux size as a
    /// little-endian u32 to most formats (`size_append`); payload_length covers it. For gzip that u32 is
    /// the gzip trailer's own ISIZE. The decoded size must equal it.
    public func unpackPayload(maxOutputSize: Int = BzImage.maxUnpackedSize) throws(BootError) -> [UInt8] {
        guard let payload else { throw .unsupportedPayload(.unknown) }
        let format = PayloadFormat.detect(payload)
        switch format {
        case .lz4:
            guard payload.count >= 8 else {
                throw .corruptPayload(format: .lz4, offset: 0, reason: "payload of \(payload.count) bytes is too short")
            }
            let sizeAt = payload.endIndex - 4
            let expected = Int(payload[sizeAt]) | Int(payload[sizeAt + 1]) << 8
                | Int(payload[sizeAt + 2]) << 16 | Int(payload[sizeAt + 3]) << 24
            guard expected <= maxOutputSize else {
                throw .corruptPayload(format: .lz4, offset: payload.count - 4,
                                      reason: "declared size \(expected) exceeds the limit of \(maxOutputSize) bytes")
            }
            let output = try LZ4Legacy.decompress(payload[..<sizeAt], maxOutputSize: expected, expectedSize: expected)
            guard output.count == expected else {
                throw .corruptPayload(format: .lz4, offset: payload.count - 4,
                                      reason: "decoded \(output.count) bytes, the appended size says \(expected)")
            }
            return output
        case .gzip:
            return try Gzip.decompress(payload, maxOutputSize: maxOutputSize)
        case .uncompressed:
            return Array(payload)
        default:
            throw .unsupportedPayload(format)
        }
    }
}
