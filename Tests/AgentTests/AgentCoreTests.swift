import AgentCore
import AgentProtocol
import SwiftletAgentClient
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The agent's core (what swiftlet-agent runs per connection) served on one end of a socketpair on this host,
/// the host's client on the other: exec, copy both ways, errors, malformed frames.
@Suite struct AgentCoreTests {
    /// A client connected to a fresh agent connection served on a thread.
    static func client() throws -> AgentClient {
        let (agentEnd, clientEnd) = try Descriptor.socketPair()
        Thread.detached { AgentConnection.serve(fd: agentEnd) }
        return try AgentClient.connected(fd: clientEnd)
    }

    static func temporaryDirectory() throws -> String {
        var template = Array("/tmp/swiftlet-agent-test-XXXXXX".utf8CString)
        guard mkdtemp(&template) != nil else { throw SystemCallError("mkdtemp") }
        return String(cString: template)
    }

    static func write(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard fd >= 0 else { throw SystemCallError("open \(path)") }
        defer { close(fd) }
        try Descriptor.writeAll(fd, bytes[...])
        fchmod(fd, mode)
    }

    static func read(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw SystemCallError("open \(path)") }
        defer { close(fd) }
        var all: [UInt8] = []
        while let chunk = try Descriptor.read(fd), !chunk.isEmpty { all += chunk }
        return all
    }

    static func mode(_ path: String) -> UInt32 {
        var status = stat()
        return lstat(path, &status) == 0 ? UInt32(status.st_mode) & 0o7777 : 0
    }

    @Test("exec: stdin in, stdout and stderr out, the exit status back")
    func execStreams() throws {
        let result = try Self.client().run(["sh", "-c", "tr a-z A-Z; echo err >&2; exit 3"], input: Array("hello agent\n".utf8))
        #expect(String(decoding: result.output, as: UTF8.self) == "HELLO AGENT\n")
        #expect(String(decoding: result.errorOutput, as: UTF8.self) == "err\n")
        #expect(result.status == 3)
        #expect(result.signal == 0)
    }

    @Test("exec: a missing command is 127 with the reason; a directory as a command is 126")
    func execFailures() throws {
        let missing = try Self.client().run(["no-such-command-here"])
        #expect(missing.status == 127)
        #expect(missing.failure?.message == "exec: no-such-command-here: No such file or directory")
        #expect(missing.failure?.errno == ENOENT)
        let directory = try Self.client().run(["/tmp"])
        #expect(directory.status == 126)
        let badDirectory = try Self.client().run(["true"], workingDirectory: "/no/such/dir")
        #expect(badDirectory.status == 126)
        #expect(badDirectory.failure?.message.contains("cannot change to /no/such/dir") == true)
    }

    @Test("exec: environment and working directory are the request's; a signal ends the command with 128+N")
    func execEnvironmentAndSignals() throws {
        let result = try Self.client().run(["sh", "-c", "echo $GREETING; pwd"], environment: ["GREETING=hi", "PATH=/usr/bin:/bin"],
                                           workingDirectory: "/tmp")
        #expect(String(decoding: result.output, as: UTF8.self) == "hi\n/tmp\n")

        let process = try Self.client().exec(ExecRequest(arguments: ["sleep", "30"]))
        guard case .started? = try process.nextEvent() else { Issue.record("no started event"); return }
        try process.signal(SIGTERM)
        var exit: ExecEvent?
        while let event = try process.nextEvent() { exit = event }
        #expect(exit == .exited(code: 128 + SIGTERM, signal: SIGTERM))
    }

    @Test("exec: 4 MiB through cat both ways, intact (flow control on both sides)")
    func execLargeStreams() throws {
        var generator = SystemRandomNumberGenerator()
        let input = (0..<(4 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let result = try Self.client().run(["cat"], input: input)
        #expect(result.status == 0)
        #expect(result.output == input)
    }

    @Test("exec -t: the command has a terminal of the requested size")
    func execTTY() throws {
        let process = try Self.client().exec(ExecRequest(arguments: ["sh", "-c", "stty size; tty -s && echo is-a-tty"], tty: true,
                                                         rows: 33, columns: 101))
        let (text, status) = try Self.stdoutAndStatus(of: process)
        #expect(status == 0)
        #expect(text.contains("33 101"), "\(text)")
        #expect(text.contains("is-a-tty"))
    }

    @Test("exec -t without a size (the host side has no terminal): the command's terminal is 24x80, not 0x0")
    func execTTYWithoutASize() throws {
        let process = try Self.client().exec(ExecRequest(arguments: ["stty", "size"], tty: true, rows: 0, columns: 0))
        let (text, status) = try Self.stdoutAndStatus(of: process)
        #expect(status == 0, "\(text)")
        #expect(text.contains("24 80"), "\(text)")
    }

    /// A command's whole stdout and its exit status, read until it ends.
    static func stdoutAndStatus(of process: ExecProcess) throws -> (text: String, status: Int32) {
        var output: [UInt8] = []
        var status: Int32 = -1
        while let event = try process.nextEvent() {
            if case let .stdout(bytes) = event { output += bytes }
            if case let .exited(code, _) = event { status = code }
        }
        return (String(decoding: output, as: UTF8.self), status)
    }

    @Test("copy in and out: a tree with a large file, a nested directory, modes and a symbolic link")
    func copyTreeBothWays() throws {
        let base = try Self.temporaryDirectory()
        defer { _ = system("rm -rf '\(base)'") }
        let source = base + "/src"
        mkdir(source, 0o755)
        mkdir(source + "/sub", 0o750)
        let large = (0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Self.write(source + "/large.bin", large, mode: 0o640)
        try Self.write(source + "/sub/run.sh", Array("#!/bin/sh\n".utf8), mode: 0o755)
        try Self.write(source + "/empty", [], mode: 0o600)
        symlink("sub/run.sh", source + "/link")
        mkdir(base + "/guest", 0o755)

        let client = try Self.client()
        let sent = try client.copyIn(localPath: source, to: base + "/guest")
        #expect(sent == UInt64(large.count + 10))
        #expect(try Self.read(base + "/guest/src/large.bin") == large)
        #expect(Self.mode(base + "/guest/src/large.bin") == 0o640)
        #expect(Self.mode(base + "/guest/src/sub") == 0o750)
        #expect(Self.mode(base + "/guest/src/sub/run.sh") == 0o755)
        #expect(try Self.read(base + "/guest/src/empty").isEmpty)

        // The same connection serves the next request: copy it back out under a new name.
        let received = try client.copyOut(source: base + "/guest/src", to: base + "/back")
        #expect(received == sent)
        #expect(try Self.read(base + "/back/large.bin") == large)
        #expect(Self.mode(base + "/back/sub/run.sh") == 0o755)
        var buffer = [CChar](repeating: 0, count: 256)
        #expect(readlink(base + "/back/link", &buffer, 255) == 10)

        // A single file to a new name.
        try client.copyIn(localPath: source + "/sub/run.sh", to: base + "/guest/renamed.sh")
        #expect(Self.mode(base + "/guest/renamed.sh") == 0o755)
    }

    @Test("copy errors: a missing destination directory and a missing source are ENOENT, and the connection stays usable")
    func copyErrors() throws {
        let base = try Self.temporaryDirectory()
        defer { _ = system("rm -rf '\(base)'") }
        try Self.write(base + "/f", Array(repeating: 1, count: 300_000))
        let client = try Self.client()
        #expect {
            try client.copyIn(localPath: base + "/f", to: "/no/such/dir/f")
        } throws: { error in
            guard case let .agent(agentError) = error as? AgentClientError else { return false }
            return agentError.errno == ENOENT && agentError.message.contains("/no/such/dir")
        }
        #expect {
            try client.copyOut(source: "/no/such/file", to: base + "/out")
        } throws: { error in
            guard case let .agent(agentError) = error as? AgentClientError else { return false }
            return agentError.errno == ENOENT && agentError.message.contains("/no/such/file")
        }
        try client.copyIn(localPath: base + "/f", to: base + "/g")
        #expect(try Self.read(base + "/g").count == 300_000)
    }

    @Test("a sent tree cannot write outside its target: '..' paths and entries under a sent symbolic link are refused")
    func copyConfinement() throws {
        let base = try Self.temporaryDirectory()
        defer { _ = system("rm -rf '\(base)'") }
        let receiver = TreeReceiver(target: base + "/t")
        try receiver.receive(CopyEntry(path: "", kind: .directory, mode: 0o755))
        try receiver.receive(CopyEntry(path: "escape", kind: .symlink, mode: 0o777, linkTarget: base))
        #expect(throws: CopyFailure.self) { try receiver.receive(CopyEntry(path: "escape/x", kind: .file, mode: 0o644)) }
        #expect(throws: CopyFailure.self) { try receiver.receive(CopyEntry(path: "../x", kind: .file, mode: 0o644)) }
        #expect(throws: CopyFailure.self) { try receiver.receive(CopyEntry(path: "a//b", kind: .file, mode: 0o644)) }
        #expect(throws: CopyFailure.self) { try receiver.receive(data: [1]) }
    }

    @Test("the agent answers garbage with an error frame and closes; a wrong version is refused")
    func malformedInput() throws {
        let (agentEnd, hostEnd) = try Descriptor.socketPair()
        Thread.detached { AgentConnection.serve(fd: agentEnd) }
        try Descriptor.writeAll(hostEnd, AgentFrame.encode(.hello(version: 1, client: "t"))[...])
        try Descriptor.writeAll(hostEnd, [0, 0, 0, 3, 0x99, 1, 2][...])
        var decoder = FrameDecoder()
        var messages: [AgentMessage] = []
        while let bytes = try Descriptor.read(hostEnd), !bytes.isEmpty {
            decoder.append(bytes)
            while let message = try decoder.next() { messages.append(message) }
        }
        close(hostEnd)
        #expect(messages.count == 2)
        if case let .error(error)? = messages.last {
            #expect(error.code == .protocolViolation)
            #expect(error.message.contains("unknown message type 153"))
        } else {
            Issue.record("no error frame: \(messages)")
        }

        let (agent2, host2) = try Descriptor.socketPair()
        Thread.detached { AgentConnection.serve(fd: agent2) }
        _ = try AgentClient.connected(fd: host2)   // speaks version 1: fine
        let (agent3, host3) = try Descriptor.socketPair()
        Thread.detached { AgentConnection.serve(fd: agent3) }
        try Descriptor.writeAll(host3, AgentFrame.encode(.hello(version: 99, client: "t"))[...])
        var reply = FrameDecoder()
        while let bytes = try Descriptor.read(host3), !bytes.isEmpty { reply.append(bytes) }
        close(host3)
        if case let .error(error)? = try reply.next() { #expect(error.code == .versionMismatch) } else { Issue.record("no refusal") }
    }
}

/// A detached thread for the agent's side of a test connection.
enum Thread {
    private final class Box: @unchecked Sendable {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    static func detached(_ body: @escaping () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        pthread_create(&thread, nil, { argument in
            Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        }, box)
        pthread_detach(thread)
    }
}
