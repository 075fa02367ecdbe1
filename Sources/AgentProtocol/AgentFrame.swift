/// A frame on the wire: a 4-byte big-endian length, then that many bytes of body: one byte of message type and
/// the message's fields (docs/agent.md lists them). Lengths above `AgentProtocol.maximumFrameBody` are refused
/// from the header alone, so a garbage length never makes anyone allocate.
public enum AgentFrame {
    public static let headerSize = 4

    enum MessageType: UInt8 {
        case hello = 0x01, ready = 0x02
        case exec = 0x10, started = 0x11, stdin = 0x12, stdinClose = 0x13, stdout = 0x14, stderr = 0x15
        case signal = 0x16, resize = 0x17, exit = 0x18
        case copyIn = 0x20, copyOut = 0x21, entry = 0x22, data = 0x23, copyEnd = 0x24, done = 0x25
        case setClock = 0x30
        case error = 0x7F
    }

    /// The frame for `message`, header included. A message whose body would exceed the limit (a data chunk
    /// larger than it, an enormous argument list) is a programming error of the sender, and traps.
    public static func encode(_ message: AgentMessage) -> [UInt8] {
        var body = WireWriter()
        switch message {
        case let .hello(version, client):
            body.u8(MessageType.hello.rawValue); body.u16(version); body.string(client)
        case let .ready(version, agent):
            body.u8(MessageType.ready.rawValue); body.u16(version); body.string(agent)
        case let .exec(request):
            body.u8(MessageType.exec.rawValue)
            body.strings(request.arguments)
            body.strings(request.environment)
            body.string(request.workingDirectory)
            body.u8(request.user == nil ? 0 : 1)
            body.u32(request.user?.uid ?? 0)
            body.u32(request.user?.gid ?? 0)
            body.u8(request.tty ? 1 : 0)
            body.u16(request.rows)
            body.u16(request.columns)
        case let .started(pid):
            body.u8(MessageType.started.rawValue); body.i32(pid)
        case let .stdin(bytes):
            body.u8(MessageType.stdin.rawValue); body.blob(bytes)
        case .stdinClose:
            body.u8(MessageType.stdinClose.rawValue)
        case let .stdout(bytes):
            body.u8(MessageType.stdout.rawValue); body.blob(bytes)
        case let .stderr(bytes):
            body.u8(MessageType.stderr.rawValue); body.blob(bytes)
        case let .signal(number):
            body.u8(MessageType.signal.rawValue); body.i32(number)
        case let .resize(rows, columns):
            body.u8(MessageType.resize.rawValue); body.u16(rows); body.u16(columns)
        case let .exit(code, signal):
            body.u8(MessageType.exit.rawValue); body.i32(code); body.i32(signal)
        case let .copyIn(destination, name):
            body.u8(MessageType.copyIn.rawValue); body.string(destination); body.string(name)
        case let .copyOut(source):
            body.u8(MessageType.copyOut.rawValue); body.string(source)
        case let .entry(entry):
            body.u8(MessageType.entry.rawValue)
            body.string(entry.path)
            body.u8(entry.kind.rawValue)
            body.u32(entry.mode)
            body.u64(entry.size)
            body.i64(entry.modificationTime)
            body.string(entry.linkTarget)
        case let .data(bytes):
            body.u8(MessageType.data.rawValue); body.blob(bytes)
        case .copyEnd:
            body.u8(MessageType.copyEnd.rawValue)
        case .done:
            body.u8(MessageType.done.rawValue)
        case let .setClock(seconds, nanoseconds):
            body.u8(MessageType.setClock.rawValue); body.i64(seconds); body.u32(nanoseconds)
        case let .error(error):
            body.u8(MessageType.error.rawValue); body.u16(error.code.rawValue); body.i32(error.errno)
            body.string(String(error.message.utf8.prefix(4096)) ?? "error")
        }
        precondition(body.bytes.count <= AgentProtocol.maximumFrameBody, "agent frame of \(body.bytes.count) bytes")
        var frame = WireWriter()
        frame.u32(UInt32(body.bytes.count))
        frame.bytes.append(contentsOf: body.bytes)
        return frame.bytes
    }

    /// The body length a header announces, checked against the limit.
    public static func bodyLength(header: some Collection<UInt8>) throws(FrameError) -> Int {
        precondition(header.count == headerSize)
        let length = header.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard length > 0 else { throw .emptyFrame }
        guard length <= AgentProtocol.maximumFrameBody else { throw .frameTooLong(length: length) }
        return Int(length)
    }

    /// Decodes one frame body (type byte and fields, without the length header). Every field is checked; bytes
    /// left over are an error, as is an unknown type.
    public static func decode(body: ArraySlice<UInt8>) throws(FrameError) -> AgentMessage {
        var reader = WireReader(body)
        let typeByte = try reader.u8("message type")
        guard let type = MessageType(rawValue: typeByte) else { throw .unknownType(typeByte) }
        let message: AgentMessage
        switch type {
        case .hello: message = .hello(version: try reader.u16("version"), client: try reader.string("client"))
        case .ready: message = .ready(version: try reader.u16("version"), agent: try reader.string("agent"))
        case .exec:
            let arguments = try reader.strings("arguments")
            guard !arguments.isEmpty else { throw .invalidValue(field: "arguments count", value: 0) }
            guard !arguments[0].isEmpty else { throw .invalidString(field: "program") }
            let environment = try reader.strings("environment")
            let workingDirectory = try reader.string("working directory")
            let hasUser = try reader.u8("user flag")
            let uid = try reader.u32("uid"), gid = try reader.u32("gid")
            let tty = try reader.u8("tty flag")
            guard hasUser <= 1 else { throw .invalidValue(field: "user flag", value: UInt64(hasUser)) }
            guard tty <= 1 else { throw .invalidValue(field: "tty flag", value: UInt64(tty)) }
            message = .exec(ExecRequest(arguments: arguments, environment: environment, workingDirectory: workingDirectory,
                                        user: hasUser == 1 ? .init(uid: uid, gid: gid) : nil, tty: tty == 1,
                                        rows: try reader.u16("rows"), columns: try reader.u16("columns")))
        case .started: message = .started(pid: try reader.i32("pid"))
        case .stdin: message = .stdin(try reader.blob("stdin data"))
        case .stdinClose: message = .stdinClose
        case .stdout: message = .stdout(try reader.blob("stdout data"))
        case .stderr: message = .stderr(try reader.blob("stderr data"))
        case .signal:
            let number = try reader.i32("signal")
            guard (1...64).contains(number) else { throw .invalidValue(field: "signal", value: UInt64(UInt32(bitPattern: number))) }
            message = .signal(number)
        case .resize: message = .resize(rows: try reader.u16("rows"), columns: try reader.u16("columns"))
        case .exit: message = .exit(code: try reader.i32("exit code"), signal: try reader.i32("signal"))
        case .copyIn: message = .copyIn(destination: try reader.string("destination"), name: try reader.string("name"))
        case .copyOut: message = .copyOut(source: try reader.string("source"))
        case .entry:
            let path = try reader.string("entry path")
            let kindByte = try reader.u8("entry kind")
            guard let kind = CopyEntry.Kind(rawValue: kindByte) else { throw .invalidValue(field: "entry kind", value: UInt64(kindByte)) }
            let mode = try reader.u32("entry mode")
            guard mode <= 0o7777 else { throw .invalidValue(field: "entry mode", value: UInt64(mode)) }
            message = .entry(CopyEntry(path: path, kind: kind, mode: mode, size: try reader.u64("entry size"),
                                       modificationTime: try reader.i64("entry time"), linkTarget: try reader.string("link target")))
        case .data: message = .data(try reader.blob("data"))
        case .copyEnd: message = .copyEnd
        case .done: message = .done
        case .setClock:
            let seconds = try reader.i64("seconds"), nanoseconds = try reader.u32("nanoseconds")
            guard nanoseconds < 1_000_000_000 else { throw .invalidValue(field: "nanoseconds", value: UInt64(nanoseconds)) }
            message = .setClock(seconds: seconds, nanoseconds: nanoseconds)
        case .error:
            let codeValue = try reader.u16("error code")
            let errno = try reader.i32("errno")
            let text = try reader.string("error message")
            // An error code from a newer peer is still an error: reported as internal, with its text.
            message = .error(AgentError(code: AgentError.Code(rawValue: codeValue) ?? .internalError, errno: errno, message: text))
        }
        guard reader.isAtEnd else { throw .trailingBytes(type: typeByte, count: body.count) }
        return message
    }
}

/// Turns a byte stream into messages: feed it whatever arrived, take the complete messages out. A stream that
/// ends between frames is clean; inside one, `finish()` says so.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0

    public init() {}

    public mutating func append(_ bytes: some Sequence<UInt8>) { buffer.append(contentsOf: bytes) }

    /// The next complete message, nil if more bytes are needed.
    public mutating func next() throws(FrameError) -> AgentMessage? {
        let available = buffer.count - start
        guard available >= AgentFrame.headerSize else { compact(); return nil }
        let length = try AgentFrame.bodyLength(header: buffer[start..<start + AgentFrame.headerSize])
        guard available >= AgentFrame.headerSize + length else { compact(); return nil }
        let bodyStart = start + AgentFrame.headerSize
        start = bodyStart + length
        return try AgentFrame.decode(body: buffer[bodyStart..<bodyStart + length])
    }

    /// Throws if the stream ended inside a frame.
    public func finish() throws(FrameError) {
        if buffer.count > start { throw .endOfStreamInFrame(have: buffer.count - start) }
    }

    /// Bytes received but not yet a complete frame.
    public var pendingCount: Int { buffer.count - start }

    private mutating func compact() {
        if start > 0 {
            buffer.removeFirst(start)
            start = 0
        }
    }
}
