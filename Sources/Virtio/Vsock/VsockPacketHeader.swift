/// virtio-vsock packet header (virtio 1.2 §5.10.6): every packet on the RX and TX queues starts with this
/// 44-byte little-endian structure, followed by `len` payload bytes (only RW packets carry payload).
///
///     le64 src_cid; le64 dst_cid; le32 src_port; le32 dst_port; le32 len;
///     le16 type; le16 op; le32 flags; le32 buf_alloc; le32 fwd_cnt;
///
/// Every packet, whatever its op, also carries the sender's credit information (buf_alloc, fwd_cnt), so the
/// receiver refreshes its view of the peer's buffer on every packet (§5.10.6.3).

/// One end of a vsock connection: a context id (2 = host, 3+ = guests, §5.10.4) and a port.
public struct VsockAddress: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var cid: UInt64
    public var port: UInt32

    public init(cid: UInt64, port: UInt32) {
        self.cid = cid
        self.port = port
    }

    public var description: String { "\(cid):\(port)" }
}

/// `op` (§5.10.6). 0 is VIRTIO_VSOCK_OP_INVALID and, like any unknown value, is rejected when parsing.
public enum VsockOperation: UInt16, Sendable, CaseIterable {
    /// Connection request (client → server).
    case request = 1
    /// Connection accepted (server → client).
    case response = 2
    /// Reset: the connection is gone (or never existed). Never answered with another RST.
    case reset = 3
    /// The sender will no longer receive and/or send (flags say which).
    case shutdown = 4
    /// Stream data ("read/write"): the only op with a payload.
    case readWrite = 5
    /// Unsolicited or requested report of the sender's buf_alloc / fwd_cnt.
    case creditUpdate = 6
    /// Asks the peer to send a CREDIT_UPDATE.
    case creditRequest = 7
}

/// `type` (§5.10.6). Only stream sockets are offered (VIRTIO_VSOCK_F_SEQPACKET is not negotiated).
public enum VsockSocketType: UInt16, Sendable {
    case stream = 1
}

/// `flags` of a SHUTDOWN packet (§5.10.6.5): what the sender stops doing.
public struct VsockShutdownFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// VIRTIO_VSOCK_SHUTDOWN_F_RECEIVE: the sender will receive no more data.
    public static let receive = VsockShutdownFlags(rawValue: 1)
    /// VIRTIO_VSOCK_SHUTDOWN_F_SEND: the sender will send no more data.
    public static let send = VsockShutdownFlags(rawValue: 2)
    public static let both: VsockShutdownFlags = [.receive, .send]
}

/// A header that cannot be accepted. Except for `.truncated`, the addressing was readable, so the device can
/// answer with an RST (`resetReply`) as §5.10.6.4 asks for packets it does not understand.
public enum VsockHeaderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer than 44 bytes: nothing can be trusted, not even who sent it.
    case truncated(available: Int)
    /// `type` other than STREAM.
    case unsupportedType(UInt16, source: VsockAddress, destination: VsockAddress, operation: UInt16)
    /// `op` 0 (INVALID) or above 7.
    case unknownOperation(UInt16, source: VsockAddress, destination: VsockAddress)
    /// `len` larger than the device accepts for one packet.
    case payloadTooLong(UInt32, maximum: UInt32, source: VsockAddress, destination: VsockAddress, operation: UInt16)
    /// A non-RW packet that claims a payload (only RW carries data, §5.10.6).
    case unexpectedPayload(UInt32, operation: VsockOperation, source: VsockAddress, destination: VsockAddress)
    /// A SHUTDOWN whose flags have bits other than RECEIVE and SEND.
    case invalidShutdownFlags(UInt32, source: VsockAddress, destination: VsockAddress)

    /// The RST to send back to the packet's sender, or nil when none may be sent: a truncated header has no
    /// trustworthy sender, and an RST is never answered with an RST (that could ping-pong forever).
    public var resetReply: VsockPacketHeader? {
        let source: VsockAddress
        let destination: VsockAddress
        switch self {
        case .truncated:
            return nil
        case let .unsupportedType(_, src, dst, op), let .payloadTooLong(_, _, src, dst, op):
            if op == VsockOperation.reset.rawValue { return nil }
            source = src
            destination = dst
        case let .unknownOperation(_, src, dst), let .invalidShutdownFlags(_, src, dst):
            source = src
            destination = dst
        case let .unexpectedPayload(_, op, src, dst):
            if op == .reset { return nil }
            source = src
            destination = dst
        }
        return VsockPacketHeader(source: destination, destination: source, operation: .reset)
    }

    public var description: String {
        switch self {
        case let .truncated(available):
            return "vsock header truncated: \(available) of \(VsockPacketHeader.size) bytes"
        case let .unsupportedType(type, src, dst, _):
            return "vsock \(src) → \(dst): unsupported socket type \(type)"
        case let .unknownOperation(op, src, dst):
            return "vsock \(src) → \(dst): unknown op \(op)"
        case let .payloadTooLong(length, maximum, src, dst, _):
            return "vsock \(src) → \(dst): payload length \(length) exceeds \(maximum)"
        case let .unexpectedPayload(length, op, src, dst):
            return "vsock \(src) → \(dst): \(op) carries \(length) payload bytes"
        case let .invalidShutdownFlags(flags, src, dst):
            return "vsock \(src) → \(dst): invalid shutdown flags \(flags)"
        }
    }
}

/// A validated vsock header. Built by the device for RX packets, parsed (`init(parsing:)`) from TX packets.
public struct VsockPacketHeader: Equatable, Sendable {
    /// sizeof(struct virtio_vsock_hdr).
    public static let size = 44
    /// The default upper bound on `len`: Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE, the largest packet its
    /// driver sends; Firecracker applies the same limit.
    public static let defaultMaximumPayload: UInt32 = 64 * 1024

    public var source: VsockAddress
    public var destination: VsockAddress
    /// `len`: payload bytes that follow the header.
    public var length: UInt32
    public var type: VsockSocketType
    public var operation: VsockOperation
    public var flags: UInt32
    /// The sender's total receive buffer space for this connection.
    public var bufferAllocation: UInt32
    /// Bytes the sender has taken out of that buffer so far (wraps at 2^32).
    public var forwardCount: UInt32

    public init(
        source: VsockAddress, destination: VsockAddress, operation: VsockOperation, length: UInt32 = 0,
        flags: UInt32 = 0, bufferAllocation: UInt32 = 0, forwardCount: UInt32 = 0, type: VsockSocketType = .stream
    ) {
        self.source = source
        self.destination = destination
        self.length = length
        self.type = type
        self.operation = operation
        self.flags = flags
        self.bufferAllocation = bufferAllocation
        self.forwardCount = forwardCount
    }

    /// The shutdown flags of a SHUTDOWN packet.
    public var shutdownFlags: VsockShutdownFlags { VsockShutdownFlags(rawValue: flags) }

    /// Parses and validates the first 44 bytes of `bytes` (more may follow: the payload).
    public init(parsing bytes: some Collection<UInt8>, maximumPayload: UInt32 = VsockPacketHeader.defaultMaximumPayload)
        throws(VsockHeaderError)
    {
        let header = Array(bytes.prefix(Self.size))
        guard header.count == Self.size else { throw .truncated(available: header.count) }
        func field(_ offset: Int, _ width: Int) -> UInt64 {
            var value: UInt64 = 0
            for index in (0..<width).reversed() { value = value << 8 | UInt64(header[offset + index]) }
            return value
        }
        let source = VsockAddress(cid: field(0, 8), port: UInt32(field(16, 4)))
        let destination = VsockAddress(cid: field(8, 8), port: UInt32(field(20, 4)))
        let length = UInt32(field(24, 4))
        let rawType = UInt16(field(28, 2))
        let rawOperation = UInt16(field(30, 2))
        let flags = UInt32(field(32, 4))

        guard let operation = VsockOperation(rawValue: rawOperation) else {
            throw .unknownOperation(rawOperation, source: source, destination: destination)
        }
        guard let type = VsockSocketType(rawValue: rawType) else {
            throw .unsupportedType(rawType, source: source, destination: destination, operation: rawOperation)
        }
        guard length <= maximumPayload else {
            throw .payloadTooLong(
                length, maximum: maximumPayload, source: source, destination: destination, operation: rawOperation)
        }
        guard operation == .readWrite || length == 0 else {
            throw .unexpectedPayload(length, operation: operation, source: source, destination: destination)
        }
        if operation == .shutdown, flags & ~VsockShutdownFlags.both.rawValue != 0 {
            throw .invalidShutdownFlags(flags, source: source, destination: destination)
        }
        self.init(
            source: source, destination: destination, operation: operation, length: length, flags: flags,
            bufferAllocation: UInt32(field(36, 4)), forwardCount: UInt32(field(40, 4)), type: type)
    }

    /// The 44 little-endian bytes of this header.
    public var encoded: [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Self.size)
        func append(_ value: UInt64, _ width: Int) {
            for index in 0..<width { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
        }
        append(source.cid, 8)
        append(destination.cid, 8)
        append(UInt64(source.port), 4)
        append(UInt64(destination.port), 4)
        append(UInt64(length), 4)
        append(UInt64(type.rawValue), 2)
        append(UInt64(operation.rawValue), 2)
        append(UInt64(flags), 4)
        append(UInt64(bufferAllocation), 4)
        append(UInt64(forwardCount), 4)
        return bytes
    }
}
