import Testing

@testable import Virtio

/// Firecracker's host-side convention: `CONNECT <port>\n` → `OK <hostport>\n`, and `PATH_<port>` listeners.
@Suite("virtio-vsock host protocol")
struct VsockHostProtocolTests {
    func parse(_ text: String) throws(VsockConnectLineError) -> VsockHostProtocol.ConnectLine {
        try VsockHostProtocol.parseConnectLine(Array(text.utf8))
    }

    @Test("CONNECT <port> parses; bytes after the newline are left for the stream")
    func connect() throws {
        #expect(try parse("CONNECT 52\n") == .connect(port: 52, consumed: 11))
        #expect(try parse("CONNECT 0\n") == .connect(port: 0, consumed: 10))
        #expect(try parse("CONNECT 4294967295\n") == .connect(port: 4_294_967_295, consumed: 19))
        #expect(try parse("CONNECT 1024\r\n") == .connect(port: 1024, consumed: 14))
        #expect(try parse("CONNECT 5000\nhello") == .connect(port: 5000, consumed: 13))
    }

    @Test("without a newline the line is incomplete until it gets too long")
    func incomplete() throws {
        #expect(try parse("") == .incomplete)
        #expect(try parse("CONNECT 52") == .incomplete)
        #expect(throws: VsockConnectLineError.lineTooLong(32)) { try parse(String(repeating: "C", count: 33)) }
        #expect(throws: VsockConnectLineError.lineTooLong(32)) { try parse("CONNECT " + String(repeating: "0", count: 30) + "\n") }
    }

    @Test("malformed lines are refused", arguments: [
        ("connect 52\n", VsockConnectLineError.unknownCommand("connect 52")),
        ("LISTEN 52\n", .unknownCommand("LISTEN 52")),
        ("CONNECT52\n", .unknownCommand("CONNECT52")),
        ("\n", .unknownCommand("")),
        ("CONNECT \n", .invalidPort("")),
        ("CONNECT -1\n", .invalidPort("-1")),
        ("CONNECT +5\n", .invalidPort("+5")),
        ("CONNECT 52 \n", .invalidPort("52 ")),
        ("CONNECT  52\n", .invalidPort(" 52")),
        ("CONNECT 0x10\n", .invalidPort("0x10")),
        ("CONNECT 4294967296\n", .invalidPort("4294967296")),
        ("CONNECT 99999999999\n", .invalidPort("99999999999")),
    ])
    func malformed(line: String, expected: VsockConnectLineError) {
        #expect(throws: expected) { try parse(line) }
    }

    @Test("the reply and the guest-to-host listener path")
    func replyAndPath() {
        #expect(VsockHostProtocol.okReply(hostPort: 1_073_741_824) == Array("OK 1073741824\n".utf8))
        #expect(VsockHostProtocol.hostListenerPath(socketPath: "/run/vm.vsock", port: 52) == "/run/vm.vsock_52")
    }

    @Test("host ports count up from 2^30 and skip ports in use")
    func portAllocation() {
        var allocator = VsockLocalPortAllocator()
        let inUse: Set<UInt32> = [VsockLocalPortAllocator.firstPort + 1]
        let first = allocator.allocate(isInUse: inUse.contains)
        let second = allocator.allocate(isInUse: inUse.contains)
        #expect(first == 1 << 30)
        #expect(second == VsockLocalPortAllocator.firstPort + 2)
    }
}

@Suite("virtio-vsock device constants")
struct VsockConstantsTests {
    @Test("guest_cid config space is 8 bytes little-endian")
    func configSpace() {
        #expect(VirtioVsock.configSpace(guestCID: 3) == [3, 0, 0, 0, 0, 0, 0, 0])
        #expect(VirtioVsock.configSpace(guestCID: 0x1234_5678) == [0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0])
    }

    @Test("reserved CIDs are not valid guest CIDs", arguments: [
        (UInt64(0), false), (1, false), (2, false), (3, true), (0xFFFF_FFFE, true), (0xFFFF_FFFF, false),
        (1 << 32, false),
    ])
    func guestCID(cid: UInt64, valid: Bool) {
        #expect(VirtioVsock.isValidGuestCID(cid) == valid)
    }
}
