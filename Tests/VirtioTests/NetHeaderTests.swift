import Testing

@testable import Virtio

/// `struct virtio_net_hdr_v1` (virtio 1.2 §5.1.6): 12 little-endian bytes in front of every frame, and the
/// checks the device makes on the ones the guest sends.
@Suite("virtio-net header")
struct NetHeaderTests {
    @Test func encodesFieldsAtTheirSpecOffsetsLittleEndian() {
        let header = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv4, headerLength: 0x0102,
            gsoSize: 0x0304, checksumStart: 0x0506, checksumOffset: 0x0708, numBuffers: 0x090A)
        #expect(header.encoded() == [1, 1, 0x02, 0x01, 0x04, 0x03, 0x06, 0x05, 0x08, 0x07, 0x0A, 0x09])
        #expect(VirtioNetHeader.size == 12)
    }

    @Test func parsesWhatItEncodesAndIgnoresTheFrameBehind() throws {
        let header = VirtioNetHeader(
            flags: 1, gsoType: VirtioNetHeader.gsoTCPv6 | VirtioNetHeader.gsoECN, headerLength: 74,
            gsoSize: 1448, checksumStart: 54, checksumOffset: 16, numBuffers: 3)
        #expect(try VirtioNetHeader(parsing: header.encoded() + [0xAA, 0xBB]) == header)
    }

    @Test func refusesFewerThanTwelveBytes() {
        #expect(throws: VirtioNetHeaderError.truncated(length: 11)) {
            try VirtioNetHeader(parsing: [UInt8](repeating: 0, count: 11))
        }
    }

    @Test func acceptsEveryDefinedGSOType() throws {
        for type in [VirtioNetHeader.gsoTCPv4, VirtioNetHeader.gsoUDP, VirtioNetHeader.gsoTCPv6, VirtioNetHeader.gsoUDPL4] {
            try VirtioNetHeader(gsoType: type, gsoSize: 1448).validate(frameLength: 9000)
            try VirtioNetHeader(gsoType: type | VirtioNetHeader.gsoECN, gsoSize: 1448).validate(frameLength: 9000)
        }
        try VirtioNetHeader().validate(frameLength: 60)
    }

    @Test func refusesUnknownGSOTypesAndECNAlone() {
        for type: UInt8 in [2, 6, 0x7F, VirtioNetHeader.gsoECN] {
            #expect(throws: VirtioNetHeaderError.unknownGSOType(type)) {
                try VirtioNetHeader(gsoType: type, gsoSize: 1448).validate(frameLength: 9000)
            }
        }
    }

    @Test func refusesGSOWithoutASegmentSize() {
        #expect(throws: VirtioNetHeaderError.gsoWithoutSegmentSize(gsoType: 1)) {
            try VirtioNetHeader(gsoType: VirtioNetHeader.gsoTCPv4, gsoSize: 0).validate(frameLength: 9000)
        }
    }

    @Test func refusesUnknownFlags() {
        #expect(throws: VirtioNetHeaderError.unknownFlags(0x08)) {
            try VirtioNetHeader(flags: 0x08).validate(frameLength: 60)
        }
    }

    /// NEEDS_CSUM: the 16-bit checksum at csum_start + csum_offset must lie inside the frame.
    @Test func checksumFieldMustFitInTheFrame() throws {
        // TCP over IPv4: checksum at 14 + 20 + 16 = 50, two bytes, so a 52-byte frame is just enough.
        let tcp = VirtioNetHeader(flags: VirtioNetHeader.flagNeedsChecksum, checksumStart: 34, checksumOffset: 16)
        try tcp.validate(frameLength: 52)
        #expect(throws: VirtioNetHeaderError.checksumOutsideFrame(start: 34, offset: 16, frameLength: 51)) {
            try tcp.validate(frameLength: 51)
        }
        // No overflow from the largest values.
        let huge = VirtioNetHeader(flags: 1, checksumStart: .max, checksumOffset: .max)
        #expect(throws: VirtioNetHeaderError.self) { try huge.validate(frameLength: 65550) }
        // Without NEEDS_CSUM the fields mean nothing and are not checked.
        try VirtioNetHeader(checksumStart: .max, checksumOffset: .max).validate(frameLength: 60)
    }

    @Test func validatedPacketMeasuresTheFrameAfterTheHeader() throws {
        let header = VirtioNetHeader(flags: 1, checksumStart: 40, checksumOffset: 6)
        let packet = header.encoded() + [UInt8](repeating: 0, count: 48)
        #expect(try VirtioNetHeader.validated(packet: packet) == header)
        #expect(throws: VirtioNetHeaderError.self) { try VirtioNetHeader.validated(packet: packet.dropLast()) }
    }

    /// §5.1.6.2.1: a transmit header may only ask for offloads the driver negotiated.
    @Test func transmitOffloadsNeedTheirFeatures() throws {
        let tso4 = VirtioNetHeader(
            flags: VirtioNetHeader.flagNeedsChecksum, gsoType: VirtioNetHeader.gsoTCPv4, gsoSize: 1448,
            checksumStart: 34, checksumOffset: 16)
        try tso4.checkTransmitOffloads(negotiated: VirtioNetFeature.checksum | VirtioNetFeature.hostTSO4)
        let refused = VirtioNetHeaderError.offloadNotNegotiated(flags: 1, gsoType: 1)
        #expect(throws: refused) { try tso4.checkTransmitOffloads(negotiated: VirtioNetFeature.checksum) }
        #expect(throws: refused) { try tso4.checkTransmitOffloads(negotiated: VirtioNetFeature.hostTSO4) }
        // Plain frames need nothing; UDP_L4 (HOST_USO) and ECN (HOST_ECN) are never offered.
        try VirtioNetHeader().checkTransmitOffloads(negotiated: 0)
        let all = VirtioNetFeature.offloads
        #expect(throws: VirtioNetHeaderError.self) {
            try VirtioNetHeader(gsoType: VirtioNetHeader.gsoUDPL4, gsoSize: 1400).checkTransmitOffloads(negotiated: all)
        }
        #expect(throws: VirtioNetHeaderError.self) {
            try VirtioNetHeader(gsoType: VirtioNetHeader.gsoTCPv4 | VirtioNetHeader.gsoECN, gsoSize: 1448)
                .checkTransmitOffloads(negotiated: all)
        }
    }
}
