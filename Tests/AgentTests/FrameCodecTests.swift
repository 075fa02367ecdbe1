import AgentProtocol
import Testing

/// The wire format as the spec (docs/agent.md): every message round-trips; truncated, oversized, unknown and
/// trailing bytes are typed errors, never traps.
@Suite struct FrameCodecTests {
    static let everyMessage: [AgentMessage] = [
        .hello(version: 1, client: "swiftlet"),
        .ready(version: 1, agent: "swiftlet-agent 1.0"),
        .exec(ExecRequest(arguments: ["sh", "-c", "echo ü"], environment: ["PATH=/bin", "A=b=c"], workingDirectory: "/tmp",
                          user: .init(uid: 1000, gid: 100), tty: true, rows: 24, columns: 80)),
        .exec(ExecRequest(arguments: ["true"])),
        .started(pid: 42),
        .stdin([1, 2, 3]), .stdin([]), .stdinClose,
        .stdout(Array(repeating: 0xAB, count: 65536)), .stderr([0]),
        .signal(2), .resize(rows: 50, columns: 132),
        .exit(code: 130, signal: 2), .exit(code: -1, signal: 0),
        .copyIn(destination: "/root", name: "file.txt"), .copyOut(source: "/etc/hostname"),
        .entry(CopyEntry(path: "a/b", kind: .file, mode: 0o4755, size: 1 << 40, modificationTime: -5)),
        .entry(CopyEntry(path: "", kind: .directory, mode: 0o700)),
        .entry(CopyEntry(path: "link", kind: .symlink, mode: 0o777, linkTarget: "../x")),
        .data([9, 8, 7]), .copyEnd, .done,
        .setClock(seconds: 1_800_000_000, nanoseconds: 999_999_999),
        .error(AgentError(code: .copyFailed, errno: 28, message: "write /x: No space left on device")),
    ]

    @Test("every message survives encode → decode unchanged, alone and all in one stream fed a byte at a time")
    func roundTrips() throws {
        for message in Self.everyMessage {
            let frame = AgentFrame.encode(message)
            var decoder = FrameDecoder()
            decoder.append(frame)
            #expect(try decoder.next() == message)
            #expect(try decoder.next() == nil)
            try decoder.finish()
        }
        var decoder = FrameDecoder()
        var decoded: [AgentMessage] = []
        for byte in Self.everyMessage.flatMap(AgentFrame.encode) {
            decoder.append([byte])
            while let message = try decoder.next() { decoded.append(message) }
        }
        #expect(decoded == Self.everyMessage)
    }

    @Test("the header is a big-endian body length, the body starts with the type byte")
    func layout() {
        #expect(AgentFrame.encode(.stdinClose) == [0, 0, 0, 1, 0x13])
        #expect(AgentFrame.encode(.signal(15)) == [0, 0, 0, 5, 0x16, 0, 0, 0, 15])
        #expect(AgentFrame.encode(.stdout([0x41])) == [0, 0, 0, 6, 0x14, 0, 0, 0, 1, 0x41])
    }

    @Test("a stream that ends inside a frame is reported, at every cut")
    func truncated() throws {
        let frame = AgentFrame.encode(.exec(ExecRequest(arguments: ["ls", "-l"], environment: ["X=1"])))
        for cut in 1..<frame.count {
            var decoder = FrameDecoder()
            decoder.append(frame[..<cut])
            #expect(try decoder.next() == nil)
            #expect(throws: FrameError.self) { try decoder.finish() }
        }
    }

    @Test("a body whose fields end early is a truncation error, at every shortened length")
    func shortBodies() {
        let body = Array(AgentFrame.encode(.entry(CopyEntry(path: "p", kind: .file, mode: 0o644, size: 3, linkTarget: "t"))).dropFirst(4))
        for length in 1..<body.count {
            #expect(throws: FrameError.self) { try AgentFrame.decode(body: body[..<length]) }
        }
    }

    @Test("lengths over the limit are refused from the header alone, before any allocation; zero is refused too")
    func oversized() {
        var decoder = FrameDecoder()
        decoder.append([0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: FrameError.frameTooLong(length: 0xFFFF_FFFF)) { try decoder.next() }
        var limit = FrameDecoder()
        let over = UInt32(AgentProtocol.maximumFrameBody + 1)
        limit.append([UInt8(over >> 24), UInt8((over >> 16) & 0xFF), UInt8((over >> 8) & 0xFF), UInt8(over & 0xFF)])
        #expect(throws: FrameError.frameTooLong(length: over)) { try limit.next() }
        var empty = FrameDecoder()
        empty.append([0, 0, 0, 0])
        #expect(throws: FrameError.emptyFrame) { try empty.next() }
        // A blob length inside the body larger than the body.
        #expect(throws: FrameError.self) { try AgentFrame.decode(body: [0x14, 0x7F, 0xFF, 0xFF, 0xFF, 1, 2]) }
        // A list count beyond the limit.
        #expect(throws: FrameError.self) { try AgentFrame.decode(body: [0x10, 0xFF, 0xFF, 0xFF, 0xFF]) }
    }

    @Test("unknown types, trailing bytes, invalid flags, modes, signals and strings are errors")
    func invalid() {
        #expect(throws: FrameError.unknownType(0x55)) { try AgentFrame.decode(body: [0x55]) }
        #expect(throws: FrameError.self) { try AgentFrame.decode(body: [0x13, 0]) }   // stdinClose + 1 byte
        #expect(throws: FrameError.self) { try AgentFrame.decode(body: [0x16, 0, 0, 0, 0]) }   // signal 0
        #expect(throws: FrameError.self) { try AgentFrame.decode(body: [0x16, 0, 0, 1, 0]) }   // signal 256
        var body = Array(AgentFrame.encode(.entry(CopyEntry(path: "", kind: .file, mode: 0o644))).dropFirst(4))
        body[1 + 4 + 0] = 9   // the kind byte after an empty path
        #expect(throws: FrameError.invalidValue(field: "entry kind", value: 9)) { try AgentFrame.decode(body: body[...]) }
        // A string with a NUL byte, and one that is not UTF-8.
        #expect(throws: FrameError.self) { try AgentFrame.decode(body: [0x21, 0, 0, 0, 2, 0x61, 0]) }
        #expect(throws: FrameError.self) { try AgentFrame.decode(body: [0x21, 0, 0, 0, 1, 0xFF]) }
        // exec without arguments.
        #expect(throws: FrameError.self) { try AgentFrame.decode(body: [0x10, 0, 0, 0, 0]) }
        // nanoseconds ≥ 10⁹.
        #expect(throws: FrameError.self) { try AgentFrame.decode(body: [0x30, 0, 0, 0, 0, 0, 0, 0, 1, 0x3B, 0x9A, 0xCA, 0x00]) }
    }

    @Test("random garbage never traps: every outcome is a message, a wait for more, or a FrameError")
    func garbage() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            let length = Int.random(in: 0..<64, using: &generator)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Make many of them plausible: a small length header over a random body with a known type.
            if length > 5 && Bool.random(using: &generator) {
                let bodyLength = UInt32(length - 4)
                bytes[0] = 0; bytes[1] = 0; bytes[2] = UInt8(bodyLength >> 8); bytes[3] = UInt8(bodyLength & 0xFF)
                bytes[4] = [0x01, 0x02, 0x10, 0x12, 0x16, 0x17, 0x18, 0x20, 0x22, 0x30, 0x7F].randomElement(using: &generator)!
            }
            var decoder = FrameDecoder()
            decoder.append(bytes)
            do { while try decoder.next() != nil {} } catch {}
        }
    }
}
