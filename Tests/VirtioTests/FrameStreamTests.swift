import Testing

@testable import Virtio

/// The socket backend's wire format: a 4-byte big-endian length, then the Ethernet frame.
@Suite("frame stream")
struct FrameStreamTests {
    static func frame(_ length: Int, fill: UInt8 = 0xA5) -> [UInt8] {
        (0..<length).map { UInt8(truncatingIfNeeded: $0) ^ fill }
    }

    @Test func encodesTheLengthBigEndianInFront() {
        let frame = Self.frame(300)
        let record = FrameStream.encode(frame[...])
        #expect(Array(record.prefix(4)) == [0, 0, 0x01, 0x2C])
        #expect(Array(record.dropFirst(4)) == frame)
    }

    @Test func decodesRecordsArrivingOneByteAtATime() throws {
        let frames = [Self.frame(14), Self.frame(1514, fill: 1), Self.frame(60, fill: 2)]
        let stream = frames.flatMap { FrameStream.encode($0[...]) }
        var decoder = FrameStreamDecoder()
        var decoded: [[UInt8]] = []
        for byte in stream {
            decoder.append([byte][...])
            while let frame = try decoder.next() { decoded.append(Array(frame)) }
        }
        #expect(decoded == frames)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func decodesSeveralRecordsFromOneReadAndKeepsTheIncompleteTail() throws {
        let first = Self.frame(100), second = Self.frame(200, fill: 3)
        let stream = FrameStream.encode(first[...]) + FrameStream.encode(second[...])
        var decoder = FrameStreamDecoder()
        decoder.append(stream[..<(stream.count - 50)])
        #expect(try decoder.next().map(Array.init) == first)
        #expect(try decoder.next() == nil, "the second is 50 bytes short")
        #expect(decoder.bufferedByteCount == 4 + 150)
        decoder.append(stream[(stream.count - 50)...])
        #expect(try decoder.next().map(Array.init) == second)
        #expect(try decoder.next() == nil)
    }

    @Test func theLargestFrameIsAcceptedAndOneByteMoreIsNot() throws {
        #expect(FrameStream.frameLengths == 14...65550)
        var decoder = FrameStreamDecoder()
        decoder.append(FrameStream.encode(Self.frame(65550)[...])[...])
        #expect(try decoder.next()?.count == 65550)
    }

    @Test("a length that is not a frame's breaks the stream", arguments: [UInt32(0), 1, 13, 65551, 0x7FFF_FFFF, 0xFFFF_FFFF])
    func garbageLengthsThrow(length: UInt32) {
        var decoder = FrameStreamDecoder()
        decoder.append([UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)][...])
        #expect(throws: FrameStreamError.badLength(length)) { try decoder.next() }
    }

    @Test func aLengthFieldAloneIsNotEnoughToDecide() throws {
        var decoder = FrameStreamDecoder()
        decoder.append([0, 0, 0][...])
        #expect(try decoder.next() == nil)
        decoder.reset()
        #expect(decoder.bufferedByteCount == 0)
    }
}
