import AgentCore
import Foundation
import Swiftlet
import SwiftletKit
import Testing

/// A stand-in for a VM's vsock Unix socket (Firecracker's CONNECT convention) on this host: it answers
/// `CONNECT <port>` with `OK` and serves the agent's core (what swiftlet-agent runs per connection) on the stream
/// — or, with `agent: false`, closes every connection as a guest without a listener does.
final class FakeVsockBridge: @unchecked Sendable {
    let path: String
    private let listener: Int32
    private var thread: HostThread?

    init(agent: Bool) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("skb-\(UUID().uuidString.prefix(8)).sock").path
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard listener >= 0, bound == 0, listen(listener, 16) == 0 else { throw SystemCallError("bind \(path)") }
        let listenFD = listener
        thread = try HostThread(name: "fake-bridge") {
            while true {
                let connection = accept(listenFD, nil, nil)
                if connection < 0 { return }
                // The CONNECT line, a byte at a time.
                var line: [UInt8] = []
                var byte: UInt8 = 0
                while read(connection, &byte, 1) == 1, byte != UInt8(ascii: "\n") { line.append(byte) }
                guard agent, String(decoding: line, as: UTF8.self).hasPrefix("CONNECT ") else { close(connection); continue }
                let ok = Array("OK 1073741824\n".utf8)
                _ = write(connection, ok, ok.count)
                _ = try? HostThread(name: "fake-agent") { AgentConnection.serve(fd: connection) }.detach()
            }
        }
    }

    deinit {
        shutdown(listener, Int32(SHUT_RDWR))
        thread?.join()
        close(listener)
        unlink(path)
    }
}

/// `GuestAgent` (and so `VirtualMachine.exec` and `copy`) against the agent's real core through a fake vsock
/// bridge: output, status, stdin as data and as a stream, a missing command, copies both ways, cancellation, and
/// each error a caller can meet.
@Suite struct GuestAgentTests {
    @Test("exec: stdin as data in, stdout and stderr captured, the exit status back")
    func execWithData() async throws {
        let bridge = try FakeVsockBridge(agent: true)
        let agent = GuestAgent(socketPath: bridge.path)
        let result = try await agent.exec("sh", ["-c", "tr a-z A-Z; echo err >&2; exit 3"], standardInput: .data(Array("hello kit\n".utf8)))
        #expect(result.standardOutputText == "HELLO KIT\n")
        #expect(result.standardErrorText == "err\n")
        #expect(result.exitCode == 3)
        #expect(result.signal == 0)
        #expect(result.failureReason == nil)
    }

    @Test("exec: stdin as an async stream, larger than every queue on the way, arrives whole and in order")
    func execWithStream() async throws {
        let bridge = try FakeVsockBridge(agent: true)
        let agent = GuestAgent(socketPath: bridge.path)
        let chunk = [UInt8](repeating: UInt8(ascii: "x"), count: 100_000)
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        let producer = Task {
            for _ in 0..<20 { continuation.yield(chunk) }
            continuation.yield(Array("end\n".utf8))
            continuation.finish()
        }
        let result = try await agent.exec("sh", ["-c", "wc -c; exit 0"], standardInput: .stream(stream))
        await producer.value
        #expect(result.standardOutputText.trimmingCharacters(in: .whitespacesAndNewlines) == "\(20 * 100_000 + 4)")
        #expect(result.exitCode == 0)
    }

    @Test("exec: environment (with the default PATH added) and working directory; a missing command is 127 with the reason")
    func execEnvironmentAndFailure() async throws {
        let bridge = try FakeVsockBridge(agent: true)
        let agent = GuestAgent(socketPath: bridge.path)
        let result = try await agent.exec(ProcessConfiguration(executable: "sh", arguments: ["-c", "echo $GREETING; pwd; echo $PATH"],
                                                               environment: ["GREETING": "hi"], workingDirectory: "/tmp"))
        #expect(result.standardOutputText == "hi\n/tmp\n\(ProcessConfiguration.defaultPath)\n")
        let missing = try await agent.exec("no-such-command-here")
        #expect(missing.exitCode == 127)
        #expect(missing.failureReason == "exec: no-such-command-here: No such file or directory")
    }

    @Test("copy: a directory in and back out, contents and modes kept; a missing guest directory is the agent's failure")
    func copyBothWays() async throws {
        let bridge = try FakeVsockBridge(agent: true)
        let agent = GuestAgent(socketPath: bridge.path)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("swiftletkit-copy-\(UUID().uuidString)")
        let source = root.appendingPathComponent("source")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        let payload = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        try payload.write(to: source.appendingPathComponent("data.bin"))
        try "#!/bin/sh\n".write(to: source.appendingPathComponent("run.sh"), atomically: true, encoding: .utf8)
        chmod(source.appendingPathComponent("run.sh").path, 0o755)
        // "The guest" is this host here: in to root/guest/, out to root/back/.
        let guest = root.appendingPathComponent("guest")
        try FileManager.default.createDirectory(at: guest, withIntermediateDirectories: true)
        let sent = try await agent.copy(.host(source.path), to: .guest(guest.path))
        #expect(sent == UInt64(payload.count + 10))
        #expect(try Data(contentsOf: guest.appendingPathComponent("source/data.bin")) == payload)
        let back = root.appendingPathComponent("back")
        try await agent.copy(.guest(guest.appendingPathComponent("source").path), to: .host(back.path))
        #expect(try Data(contentsOf: back.appendingPathComponent("data.bin")) == payload)
        let mode = try FileManager.default.attributesOfItem(atPath: back.appendingPathComponent("run.sh").path)[.posixPermissions] as? Int
        #expect(mode == 0o755)

        do {
            try await agent.copy(.host(source.path), to: .guest("/no/such/dir/x"))
            Issue.record("a copy into a missing directory succeeded")
        } catch {
            guard case let .agentFailure(message, errno) = error else { Issue.record("got \(error)"); return }
            #expect(message.contains("/no/such/dir"))
            #expect(errno == ENOENT)
        }
        await #expect(throws: GuestAgentError.localFailure(message: "a copy goes between this host and the guest: one side .host, the other .guest", errno: EINVAL)) {
            try await agent.copy(.host("/a"), to: .host("/b"))
        }
    }

    @Test("cancelling the calling task kills the command and throws cancelled")
    func cancellation() async throws {
        let bridge = try FakeVsockBridge(agent: true)
        let agent = GuestAgent(socketPath: bridge.path)
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("swiftletkit-started-\(UUID().uuidString)").path
        let task = Task { () async throws(GuestAgentError) -> ExecResult in
            try await agent.exec("sh", ["-c", "touch '\(marker)'; exec sleep 600"])
        }
        // Cancel once the command runs, so the kill is what ends it.
        while !FileManager.default.fileExists(atPath: marker) { try await Task.sleep(for: .milliseconds(10)) }
        task.cancel()
        let outcome = await task.result
        #expect(throws: GuestAgentError.cancelled) { try outcome.get() }
    }

    @Test("no listener on the port: noAgent after the bounded wait, with the sentence the CLI prints; no socket: socketUnavailable at once")
    func agentErrors() async throws {
        let bridge = try FakeVsockBridge(agent: false)
        let agent = GuestAgent(socketPath: bridge.path, timeout: .milliseconds(300))
        do {
            _ = try await agent.exec("true")
            Issue.record("an exec without an agent succeeded")
        } catch {
            guard case let .noAgent(port, waited, _) = error else { Issue.record("got \(error)"); return }
            #expect(port == 1024)
            #expect(waited == .milliseconds(300))
            #expect(error.description.hasPrefix("no agent answering on vsock port 1024: is swiftlet-agent in the guest?"))
        }
        #expect(await agent.isReady(timeout: .milliseconds(200)) == false)
        let answering = try FakeVsockBridge(agent: true)
        // A generous limit: isReady returns as soon as the agent answers, and in a loaded test run (CI's parallel
        // unit phase) the default half second was once not enough for the fake agent's thread to answer.
        #expect(await GuestAgent(socketPath: answering.path).isReady(timeout: .seconds(10)))

        let gone = GuestAgent(socketPath: "/no/such/vsock.sock")
        await #expect(throws: GuestAgentError.socketUnavailable(path: "/no/such/vsock.sock", reason: "No such file or directory")) {
            try await gone.waitUntilReady()
        }
    }

    @Test("a VirtualMachine without a socket device has no agent; one that is not running refuses exec and copy")
    func virtualMachineAgentPreconditions() async throws {
        var configuration = try ConfigurationTests.linux()
        let plain = try VirtualMachine(configuration: configuration)
        #expect(plain.agent == nil)
        await #expect(throws: GuestAgentError.noSocketDevice) { try await plain.exec("true") }
        configuration.socketDevices = [SocketDeviceConfiguration(socketPath: "/tmp/swiftletkit-never.sock")]
        let withSocket = try VirtualMachine(configuration: configuration)
        #expect(withSocket.agent?.socketPath == "/tmp/swiftletkit-never.sock")
        #expect(withSocket.agent?.port == 1024)
        await #expect(throws: GuestAgentError.notRunning(.stopped)) { try await withSocket.exec("true") }
        await #expect(throws: GuestAgentError.notRunning(.stopped)) { try await withSocket.copy(.host("/etc/hostname"), to: .guest("/tmp/")) }
    }
}
