import Testing
@testable import Boot

/// gzip (RFC 1952) around DEFLATE (RFC 1951): the kernel's default payload compression. The fixtures
/// cover the three block types: dynamic Huffman (sample.txt.gz), stored (random.bin.gz), fixed (hello.gz).
@Suite struct GzipTests {
    static func decode(_ bytes: [UInt8], max: Int = 1 << 20) throws(BootError) -> [UInt8] {
        try Gzip.decompress(bytes[...], maxOutputSize: max)
    }

    @Test func dynamicHuffmanBlocks() throws {
        #expect(try Self.decode(Fixture.bytes("sample.txt.gz")) == Fixture.bytes("sample.txt"))
    }

    @Test func storedBlocks() throws {
        #expect(try Self.decode(Fixture.bytes("random.bin.gz")) == Fixture.bytes("random.bin"))
    }

    @Test func fixedHuffmanBlock() throws {
        #expect(try Self.decode(Fixture.bytes("hello.gz")) == Array("hello, hello, hello world\n".utf8))
    }

    @Test func handMadeStoredBlock() throws {
        // BFINAL=1, BTYPE=00, then LEN=3, NLEN=~3, "abc" — wrapped in a raw DEFLATE call.
        let deflate: [UInt8] = [0x01, 0x03, 0x00, 0xfc, 0xff] + Array("abc".utf8)
        let (output, end) = try Inflate.decompress(deflate[...], maxOutputSize: 100)
        #expect(output == Array("abc".utf8))
        #expect(end == deflate.count)
    }

    @Test func headerWithNameAndCommentIsSkipped() throws {
        // FLG = FNAME | FCOMMENT; the compressed data is the same as hello.gz's.
        let plain = Fixture.bytes("hello.gz")
        var withName = Array(plain[0..<10])
        withName[3] = 0x18
        withName += Array("hello.txt".utf8) + [0] + Array("a comment".utf8) + [0]
        withName += plain[10...]
        #expect(try Self.decode(withName) == Array("hello, hello, hello world\n".utf8))
    }

    // MARK: Malformed input

    @Test func badMagicOrMethodIsRejected() {
        var bytes = Fixture.bytes("hello.gz")
        bytes[1] = 0x8c
        #expect(thrownError { try Self.decode(bytes) } == .corruptPayload(format: .gzip, offset: 0, reason: "no gzip magic (1f 8b)"))
        bytes = Fixture.bytes("hello.gz")
        bytes[2] = 7
        #expect(thrownError { try Self.decode(bytes) } != nil)
    }

    @Test func crcMismatchIsRejected() {
        var bytes = Fixture.bytes("sample.txt.gz")
        bytes[bytes.count - 8] ^= 1
        guard case .corruptPayload(.gzip, _, let reason) = thrownError({ try Self.decode(bytes) }) else {
            Issue.record("expected corruptPayload")
            return
        }
        #expect(reason.hasPrefix("CRC-32 mismatch"))
    }

    @Test func sizeMismatchIsRejected() {
        var bytes = Fixture.bytes("sample.txt.gz")
        bytes[bytes.count - 4] ^= 1
        #expect(thrownError { try Self.decode(bytes) } != nil)
    }

    @Test func storedBlockWithBadComplementIsRejected() {
        let deflate: [UInt8] = [0x01, 0x03, 0x00, 0xfc, 0xfe] + Array("abc".utf8)
        #expect(thrownError { try Inflate.decompress(deflate[...], maxOutputSize: 100) } != nil)
    }

    @Test func reservedBlockTypeIsRejected() {
        #expect(thrownError { try Inflate.decompress([0x07, 0x00][...], maxOutputSize: 100) } != nil)
    }

    @Test func outputIsBoundedByTheCaller() {
        #expect(thrownError { try Self.decode(Fixture.bytes("sample.txt.gz"), max: 1000) } != nil)
    }

    @Test func everyTruncationThrows() {
        for name in ["sample.txt.gz", "random.bin.gz", "hello.gz"] {
            let full = Fixture.bytes(name)
            for length in 0..<full.count {
                #expect(thrownError { try Self.decode(Array(full[..<length])) } != nil, "\(name) cut at \(length)")
            }
        }
    }

    @Test func corruptedBytesNeverCrashTheDecoder() {
        let original = Fixture.bytes("sample.txt.gz")
        for index in 10..<(original.count - 8) {
            for mask: UInt8 in [0x01, 0x80, 0xff] {
                var bytes = original
                bytes[index] ^= mask
                // A change is caught by the CRC at the latest (a flipped padding bit after the final block
                // changes nothing); the point is that nothing traps.
                if let output = try? Self.decode(bytes, max: 1 << 16) { #expect(output == Fixture.bytes("sample.txt")) }
            }
        }
    }
}
