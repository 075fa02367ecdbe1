import Testing
@testable import Boot

/// The LZ4 legacy frame (`lz4 -l`), as Debian's kernels compress their payload. Round trips against the
/// lz4 tool's own output, hand-made blocks that spell out the format, and malformed input.
@Suite struct LZ4LegacyTests {
    static let magic: [UInt8] = [0x02, 0x21, 0x4c, 0x18]

    /// A legacy frame holding the given blocks.
    static func frame(_ blocks: [UInt8]...) -> [UInt8] {
        var bytes = magic
        for block in blocks {
            bytes += withUnsafeBytes(of: UInt32(block.count).littleEndian, Array.init)
            bytes += block
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8], max: Int = 1 << 20) throws(BootError) -> [UInt8] {
        try LZ4Legacy.decompress(bytes[...], maxOutputSize: max)
    }

    // MARK: The lz4 tool's output

    @Test func decodesWhatLz4DashLWrote() throws {
        #expect(try Self.decode(Fixture.bytes("sample.txt.lz4")) == Fixture.bytes("sample.txt"))
        // Random data does not compress: the block is one long run of literals.
        #expect(try Self.decode(Fixture.bytes("random.bin.lz4")) == Fixture.bytes("random.bin"))
    }

    @Test func concatenatedFramesDecodeToTheConcatenation() throws {
        let both = Fixture.bytes("sample.txt.lz4") + Fixture.bytes("random.bin.lz4")
        #expect(try Self.decode(both) == Fixture.bytes("sample.txt") + Fixture.bytes("random.bin"))
    }

    // MARK: The block format, by hand

    @Test func literalOnlySequence() throws {
        // Token 0x50: 5 literals, no match (the last sequence of a block has none).
        #expect(try Self.decode(Self.frame([0x50] + Array("hello".utf8))) == Array("hello".utf8))
    }

    @Test func matchCopiesFromEarlierOutput() throws {
        // Token 0x32: 3 literals "abc", then a match of 2 + 4 = 6 bytes at offset 3; then a final "!".
        let block: [UInt8] = [0x32] + Array("abc".utf8) + [0x03, 0x00] + [0x10, UInt8(ascii: "!")]
        #expect(try Self.decode(Self.frame(block)) == Array("abcabcabc!".utf8))
    }

    @Test func overlappingMatchRepeatsAPattern() throws {
        // One literal "a", then a match at offset 1 of 15 + 4 + 6 = 25 bytes (nibble 15 → extra byte 6).
        let block: [UInt8] = [0x1f, UInt8(ascii: "a"), 0x01, 0x00, 6, 0x00]
        #expect(try Self.decode(Self.frame(block)) == [UInt8](repeating: UInt8(ascii: "a"), count: 26))
    }

    @Test func longLiteralLengthUsesExtraBytes() throws {
        // 15 + 255 + 10 = 280 literals: nibble 15, then 255 (continue), then 10 (stop).
        let literals = [UInt8](repeating: 0x41, count: 280)
        #expect(try Self.decode(Self.frame([0xf0, 255, 10] + literals)) == literals)
    }

    @Test func blocksAreIndependent() throws {
        // The second block's match at offset 1 would reach into the first block's output: not allowed.
        let error = thrownError { try Self.decode(Self.frame([0x10, 0x61], [0x00, 0x01, 0x00, 0x00])) }
        guard case .corruptPayload(.lz4, _, let reason) = error else {
            Issue.record("expected corruptPayload")
            return
        }
        #expect(reason.contains("before the start of the block"))
    }

    // MARK: Malformed input

    @Test func missingMagicIsRejected() {
        #expect(thrownError { try Self.decode([0x04, 0x22, 0x4d, 0x18, 0, 0, 0, 0]) }
                == .corruptPayload(format: .lz4, offset: 0, reason: "no LZ4 legacy frame magic (02 21 4c 18)"))
    }

    @Test func zeroOffsetIsRejected() {
        #expect(thrownError { try Self.decode(Self.frame([0x10, 0x61, 0x00, 0x00, 0x00])) } != nil)
    }

    @Test func offsetBeforeTheOutputIsRejected() {
        #expect(thrownError { try Self.decode(Self.frame([0x10, 0x61, 0x02, 0x00, 0x00])) } != nil)
    }

    @Test func literalsRunningPastTheBlockAreRejected() {
        #expect(thrownError { try Self.decode(Self.frame([0x50, 0x61, 0x62])) } != nil)
    }

    @Test func blockLongerThanTheInputIsRejected() {
        var bytes = Self.frame([0x50] + Array("hello".utf8))
        bytes.removeLast()
        #expect(thrownError { try Self.decode(bytes) } != nil)
    }

    @Test func blockSizeAboveTheFormatLimitIsRejected() {
        var bytes = Self.magic
        bytes += withUnsafeBytes(of: UInt32(LZ4Legacy.maxCompressedBlockSize + 1).littleEndian, Array.init)
        #expect(thrownError { try Self.decode(bytes) } != nil)
    }

    @Test func outputIsBoundedByTheCaller() {
        // 26 bytes of output against a bound of 10.
        let block: [UInt8] = [0x1f, UInt8(ascii: "a"), 0x01, 0x00, 6, 0x00]
        #expect(thrownError { try Self.decode(Self.frame(block), max: 10) } != nil)
    }

    @Test func everyTruncationThrowsOrYieldsAPrefix() {
        // A cut at a block boundary is a valid shorter stream; any other cut must throw.
        let full = Fixture.bytes("sample.txt.lz4")
        let expected = Fixture.bytes("sample.txt")
        for length in 0..<full.count {
            if let output = try? Self.decode(Array(full[..<length])) {
                #expect(expected.starts(with: output), "length \(length)")
            }
        }
    }

    @Test func corruptedBytesNeverCrashTheDecoder() {
        // Flip every byte of a real stream, one at a time: decoding must throw or return bounded output.
        let original = Fixture.bytes("sample.txt.lz4")
        for index in 4..<original.count {
            var bytes = original
            bytes[index] ^= 0x5a
            if let output = try? Self.decode(bytes, max: 1 << 16) { #expect(output.count <= 1 << 16) }
        }
    }
}
