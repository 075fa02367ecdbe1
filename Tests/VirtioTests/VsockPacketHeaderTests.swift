import Testing

@testable import Virtio

/// The 44-byte virtio-vsock header (virtio 1.2 §5.10.6): exact wire layout, and every rule a guest can break.
@Suite("virtio-vsock packet header")
struct VsockPacketHeaderTests {
    let guest = VsockAddress(cid: 3, port: 1234)
    let host = VsockAddress(cid: 2, port: 52)

    /// Builds raw header bytes field by field, the way a guest driver lays them out.
    func raw(
        srcCID: UInt64 = 3, dstCID: UInt64 = 2, srcPort: UInt32 = 1234, dstPort: UInt32 = 52, len: UInt32 = 0,
        type: UInt16 = 1, op: UInt16 = 5, flags: UInt32 = 0, bufAlloc: UInt32 = 0x4_0000, fwdCnt: UInt32 = 7
    ) -> [UInt8] {
        var bytes: [UInt8] = []
        func put(_ value: UInt64, _ width: Int) {
            for index in 0..<width { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
        }
        put(srcCID, 8); put(dstCID, 8); put(UInt64(srcPort), 4); put(UInt64(dstPort), 4); put(UInt64(len), 4)
        put(UInt64(type), 2); put(UInt64(op), 2); put(UInt64(flags), 4); put(UInt64(bufAlloc), 4); put(UInt64(fwdCnt), 4)
        return bytes
    }

    @Test("the header is 44 bytes, little-endian, in the spec's field order")
    func wireLayout() {
        let header = VsockPacketHeader(
            source: VsockAddress(cid: 0x0102_0304_0506_0708, port: 0x1112_1314),
            destination: VsockAddress(cid: 2, port: 0x2122_2324), operation: .readWrite, length: 0x100,
            flags: 0x3132_3334, bufferAllocation: 0x4142_4344, forwardCount: 0x5152_5354)
        let bytes = header.encoded
        #expect(bytes.count == 44)
        #expect(Array(bytes[0..<8]) == [8, 7, 6, 5, 4, 3, 2, 1])  // src_cid
        #expect(Array(bytes[8..<16]) == [2, 0, 0, 0, 0, 0, 0, 0])  // dst_cid
        #expect(Array(bytes[16..<20]) == [0x14, 0x13, 0x12, 0x11])  // src_port
        #expect(Array(bytes[20..<24]) == [0x24, 0x23, 0x22, 0x21])  // dst_port
        #expect(Array(bytes[24..<28]) == [0, 1, 0, 0])  // len
        #expect(Array(bytes[28..<30]) == [1, 0])  // type STREAM
        #expect(Array(bytes[30..<32]) == [5, 0])  // op RW
        #expect(Array(bytes[32..<36]) == [0x34, 0x33, 0x32, 0x31])  // flags
        #expect(Array(bytes[36..<40]) == [0x44, 0x43, 0x42, 0x41])  // buf_alloc
        #expect(Array(bytes[40..<44]) == [0x54, 0x53, 0x52, 0x51])  // fwd_cnt
    }

    @Test("every op round-trips through encode and parse", arguments: VsockOperation.allCases)
    func roundTrip(operation: VsockOperation) throws {
        let header = VsockPacketHeader(
            source: guest, destination: host, operation: operation, length: operation == .readWrite ? 4096 : 0,
            flags: operation == .shutdown ? 3 : 0, bufferAllocation: 262_144, forwardCount: 0xFFFF_FFF0)
        #expect(try VsockPacketHeader(parsing: header.encoded) == header)
    }

    @Test("parsing reads the header and ignores the payload after it")
    func parseWithPayload() throws {
        let header = try VsockPacketHeader(parsing: raw(len: 3) + [9, 9, 9])
        #expect(header.source == guest && header.destination == host)
        #expect(header.operation == .readWrite && header.length == 3)
        #expect(header.bufferAllocation == 0x4_0000 && header.forwardCount == 7)
    }

    @Test("a header shorter than 44 bytes is refused and cannot be answered")
    func truncated() {
        let error = #expect(throws: VsockHeaderError.self) { try VsockPacketHeader(parsing: raw().prefix(43)) }
        #expect(error == .truncated(available: 43))
        #expect(error?.resetReply == nil)
        #expect(throws: VsockHeaderError.truncated(available: 0)) { try VsockPacketHeader(parsing: [UInt8]()) }
    }

    @Test("op 0 (INVALID) and ops above CREDIT_REQUEST are refused with an RST", arguments: [UInt16(0), 8, 0xFFFF])
    func unknownOperation(op: UInt16) {
        let error = #expect(throws: VsockHeaderError.self) { try VsockPacketHeader(parsing: raw(op: op)) }
        #expect(error == .unknownOperation(op, source: guest, destination: host))
        #expect(error?.resetReply == VsockPacketHeader(source: host, destination: guest, operation: .reset))
    }

    @Test("types other than STREAM are refused with an RST (SEQPACKET is not offered)", arguments: [UInt16(0), 2, 3])
    func unsupportedType(type: UInt16) {
        let error = #expect(throws: VsockHeaderError.self) { try VsockPacketHeader(parsing: raw(type: type, op: 1)) }
        #expect(error == .unsupportedType(type, source: guest, destination: host, operation: 1))
        #expect(error?.resetReply?.operation == .reset)
        #expect(error?.resetReply?.destination == guest)
    }

    @Test("len above the limit is refused; the limit itself is accepted")
    func payloadLimit() throws {
        #expect(try VsockPacketHeader(parsing: raw(len: 65536)).length == 65536)
        let error = #expect(throws: VsockHeaderError.self) { try VsockPacketHeader(parsing: raw(len: 65537)) }
        #expect(error == .payloadTooLong(65537, maximum: 65536, source: guest, destination: host, operation: 5))
        #expect(throws: VsockHeaderError.self) { try VsockPacketHeader(parsing: raw(len: 0xFFFF_FFFF)) }
        #expect(throws: VsockHeaderError.self) { try VsockPacketHeader(parsing: raw(len: 100), maximumPayload: 99) }
    }

    @Test("only RW may carry a payload")
    func payloadOnControlPacket() {
        let error = #expect(throws: VsockHeaderError.self) { try VsockPacketHeader(parsing: raw(len: 8, op: 1)) }
        #expect(error == .unexpectedPayload(8, operation: .request, source: guest, destination: host))
        #expect(error?.resetReply?.operation == .reset)
    }

    @Test("SHUTDOWN flags other than RECEIVE|SEND are refused")
    func shutdownFlags() throws {
        #expect(try VsockPacketHeader(parsing: raw(op: 4, flags: 3)).shutdownFlags == .both)
        let error = #expect(throws: VsockHeaderError.self) { try VsockPacketHeader(parsing: raw(op: 4, flags: 4)) }
        #expect(error == .invalidShutdownFlags(4, source: guest, destination: host))
    }

    @Test("a malformed RST is dropped silently: answering an RST with an RST could loop forever")
    func neverResetAnReset() {
        let badType = #expect(throws: VsockHeaderError.self) { try VsockPacketHeader(parsing: raw(type: 2, op: 3)) }
        #expect(badType != nil && badType?.resetReply == nil)
        let badLength = #expect(throws: VsockHeaderError.self) { try VsockPacketHeader(parsing: raw(len: 1, op: 3)) }
        #expect(badLength != nil && badLength?.resetReply == nil)
    }
}
