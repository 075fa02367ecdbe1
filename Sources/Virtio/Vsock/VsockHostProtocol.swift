/// The host side of Firecracker's vsock-over-Unix-socket convention, as pure functions (the muxer with its
/// sockets and event loop uses them):
///
/// - host → guest: a host program connects to the device's socket `PATH` and writes `CONNECT <port>\n`; the
///   VMM opens a connection to the guest's listener on `<port>` and, once the guest accepts, answers
///   `OK <hostport>\n` (the host-side port it picked); from then on the socket is the byte stream.
/// - guest → host: a guest connecting to host CID 2, port P reaches the Unix listener at `PATH_P`.

/// The host end of one connection: a non-blocking Unix stream socket in the VMM, a fake in tests. Sendable:
/// streams are created on the event loop and may be closed by a device reset on a vCPU thread (the device's
/// lock orders those calls).
public protocol VsockHostStream: AnyObject, Sendable {
    /// Reads up to `maximumCount` bytes: `[]` at end of file, nil when nothing is available right now.
    func read(maximumCount: Int) throws -> [UInt8]?
    /// Writes a prefix of `bytes` and returns how many were accepted (0 when the socket would block).
    func write(_ bytes: ArraySlice<UInt8>) throws -> Int
    /// Half-closes the socket for writing (shutdown(SHUT_WR)): the host program reads end of file once the
    /// guest has shut down its sending side and everything it sent has been written.
    func shutdownWrite()
    /// Closes the socket; later calls are ignored.
    func close()
    /// The file descriptor an event loop polls for this stream's readiness; nil once closed, or for a stream
    /// that has none (test fakes, which the caller services directly).
    var pollDescriptor: Int32? { get }
}

extension VsockHostStream {
    /// Streams that cannot half-close simply stay open until the connection ends.
    public func shutdownWrite() {}
    public var pollDescriptor: Int32? { nil }
}

/// Why a host program's first line was refused (the VMM then closes its socket).
public enum VsockConnectLineError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No newline within `VsockHostProtocol.maximumConnectLineLength` bytes.
    case lineTooLong(Int)
    /// The line does not start with `CONNECT `.
    case unknownCommand(String)
    /// The port is missing, not decimal, or does not fit 32 bits.
    case invalidPort(String)

    public var description: String {
        switch self {
        case let .lineTooLong(length): return "vsock CONNECT line longer than \(length) bytes"
        case let .unknownCommand(line): return "vsock host command not understood: \(line.debugDescription)"
        case let .invalidPort(text): return "vsock CONNECT port not understood: \(text.debugDescription)"
        }
    }
}

public enum VsockHostProtocol {
    /// The CID of the host (§5.10.4: VMADDR_CID_HOST).
    public static let hostCID: UInt64 = 2
    /// "CONNECT 4294967295\n" is 19 bytes; anything much longer is not a CONNECT line.
    public static let maximumConnectLineLength = 32

    /// The outcome of looking at the bytes a host program has sent so far.
    public enum ConnectLine: Equatable, Sendable {
        /// No newline yet: wait for more.
        case incomplete
        /// `CONNECT <port>` parsed; `consumed` bytes (the line and its newline) belong to the protocol, anything
        /// after them is already stream data for the guest.
        case connect(port: UInt32, consumed: Int)
    }

    /// Parses the first line of a host connection. Accepts `CONNECT <port>\n` with an optional `\r` before the
    /// newline (a human typing into socat); the port is decimal, 0...UInt32.max.
    public static func parseConnectLine(_ bytes: some Collection<UInt8>) throws(VsockConnectLineError) -> ConnectLine {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            if bytes.count > maximumConnectLineLength { throw .lineTooLong(maximumConnectLineLength) }
            return .incomplete
        }
        var line = Array(bytes[bytes.startIndex..<newline])
        let consumed = line.count + 1
        guard consumed <= maximumConnectLineLength else { throw .lineTooLong(maximumConnectLineLength) }
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        let text = String(decoding: line, as: UTF8.self)
        let command = Array("CONNECT ".utf8)
        guard line.starts(with: command) else { throw .unknownCommand(text) }
        let digits = line.dropFirst(command.count)
        guard !digits.isEmpty, digits.count <= 10, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { throw .invalidPort(String(decoding: digits, as: UTF8.self)) }
        var port: UInt64 = 0
        for digit in digits { port = port * 10 + UInt64(digit - UInt8(ascii: "0")) }
        guard let port32 = UInt32(exactly: port) else { throw .invalidPort(String(decoding: digits, as: UTF8.self)) }
        return .connect(port: port32, consumed: consumed)
    }

    /// The acknowledgement sent once the guest accepted: `OK <hostport>\n`.
    public static func okReply(hostPort: UInt32) -> [UInt8] {
        Array("OK \(hostPort)\n".utf8)
    }

    /// Where a guest connection to host port `port` goes: the device's socket path with `_<port>` appended.
    public static func hostListenerPath(socketPath: String, port: UInt32) -> String {
        "\(socketPath)_\(port)"
    }
}

/// Picks the host-side port for host-initiated connections. Like Firecracker, it counts up from 2^30 so the
/// ports stay clear of the well-known and ephemeral ranges guests listen on, skipping ports still in use.
public struct VsockLocalPortAllocator: Sendable {
    public static let firstPort: UInt32 = 1 << 30
    private var next: UInt32 = firstPort

    public init() {}

    /// The next free port, or nil when every port from 2^30 up is taken (over a billion connections).
    public mutating func allocate(isInUse: (UInt32) -> Bool) -> UInt32? {
        let span = UInt64(UInt32.max) - UInt64(Self.firstPort) + 1
        for _ in 0..<span {
            let candidate = next
            next = next == UInt32.max ? Self.firstPort : next + 1
            if !isInUse(candidate) { return candidate }
        }
        return nil
    }
}
