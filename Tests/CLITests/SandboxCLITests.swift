import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Named VMs in the background, as a `docker` user drives them: `run -d --name`, `ps`, `logs`, `attach`, `pause`,
/// `resume`, `inspect`, `stop`, `kill`, `rm`. The guests are tiny raw images on this machine's /dev/kvm; each test
/// has a state directory of its own (SWIFTLET_STATE_DIR), so nothing here touches the user's VMs.
@Suite(.serialized, .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct SandboxCLITests {
    /// In user mode (CPL 3, native here): prints "ready\n" on COM1, then echoes every byte it receives.
    static let echoGuest: [UInt8] = {
        var code: [UInt8] = []
        for byte in Array("ready\n".utf8) { code += [0x66, 0xBA, 0xF8, 0x03, 0xB0, byte, 0xEE] }   // mov dx,0x3f8; mov al,c; out dx,al
        code += [0x66, 0xBA, 0xFD, 0x03, 0xEC, 0xA8, 0x01, 0x74, 0xF7]   // L: mov dx,0x3fd; in al,dx; test al,1; jz L
        code += [0x66, 0xBA, 0xF8, 0x03, 0xEC, 0xEE, 0xEB, 0xEF]         // mov dx,0x3f8; in al,dx; out dx,al; jmp L
        return code
    }()

    let state: String
    let environment: [String: String]

    init() {
        state = "/tmp/swl-\(UUID().uuidString.prefix(8))"
        environment = ["SWIFTLET_STATE_DIR": state]
    }

    func swiftlet(_ arguments: [String]) throws -> Swiftlet.Result {
        try Swiftlet.run(arguments, environment: environment)
    }

    func cleanUp() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: state)) ?? [] {
            _ = try? swiftlet(["rm", "--force", name])
        }
        try? FileManager.default.removeItem(atPath: state)
    }

    /// Waits until `condition` holds, up to `seconds`.
    func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return try condition()
    }

    @Test("run -d prints the name once the VM runs; ps, logs, pause/resume, inspect, stop and rm by name")
    func lifecycleByName() throws {
        defer { cleanUp() }
        let image = try Swiftlet.rawImage(Self.echoGuest)
        let started = try swiftlet(["run", "-d", "--name", "echo", "--raw", image, "--raw-mode", "user"])
        #expect(started.status == 0, "stderr: \(started.stderr)")
        #expect(started.stdout == "echo\n")

        var ps = try swiftlet(["ps"])
        let row = ps.stdout.split(separator: "\n").first { $0.hasPrefix("echo ") }.map(String.init) ?? ""
        #expect(ps.stdout.hasPrefix("NAME"), "ps: \(ps.stdout)")
        #expect(row.contains("running") && row.contains("512M"), "ps: \(ps.stdout)")
        // A raw guest has no vsock device: no agent to ask.
        #expect(row.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first == "-", "ps: \(ps.stdout)")
        let running = try JSONSerialization.jsonObject(with: Data(try swiftlet(["ps", "--json"]).stdout.utf8)) as? [[String: Any]]
        #expect(running?.first?["agentReady"] is NSNull, "ps --json: \(String(describing: running))")
        #expect(running?.first?["state"] as? String == "running")

        #expect(try eventually { try swiftlet(["logs", "echo"]).stdout == "ready\n" })

        // The same name again is refused while the first exists.
        let again = try swiftlet(["run", "-d", "--name", "echo", "--raw", image, "--raw-mode", "user"])
        #expect(again.status == 1)
        #expect(again.stderr.contains("a VM named 'echo' is already running"), "stderr: \(again.stderr)")

        #expect(try swiftlet(["pause", "echo"]).status == 0)
        ps = try swiftlet(["ps", "--json"])
        let paused = try JSONSerialization.jsonObject(with: Data(ps.stdout.utf8)) as? [[String: Any]]
        #expect(paused?.first?["state"] as? String == "paused", "ps --json: \(ps.stdout)")
        #expect(try swiftlet(["resume", "echo"]).status == 0)

        let inspect = try swiftlet(["inspect", "echo"])
        let object = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
        #expect(object?["state"] as? String == "running", "inspect: \(inspect.stdout)")
        #expect((object?["instance"] as? [String: Any])?["state"] as? String == "Running", "inspect: \(inspect.stdout)")
        #expect((object?["arguments"] as? [String])?.contains(image) == true, "inspect: \(inspect.stdout)")

        // A raw guest does not hear Ctrl-Alt-Del: after --time the VMM is stopped from outside (SIGTERM: 143).
        let stop = try swiftlet(["stop", "--time", "1", "echo"])
        #expect(stop.status == 0, "stderr: \(stop.stderr)")
        ps = try swiftlet(["ps"])
        #expect(ps.stdout.contains("exited (143)"), "ps: \(ps.stdout)")

        #expect(try swiftlet(["rm", "echo"]).stdout == "echo\n")
        #expect(try swiftlet(["ps"]).stdout == "NAME  STATE  AGENT  CPUS  MEMORY  UPTIME  PID\n")
        let gone = try swiftlet(["logs", "echo"])
        #expect(gone.status == 1 && gone.stderr.contains("no VM named 'echo'"), "stderr: \(gone.stderr)")
    }

    @Test("restore -d --name: a named VM's snapshot comes back as a second named VM beside it that counts on; ps and logs show both; the name is taken once")
    func restoreInTheBackground() throws {
        defer { cleanUp() }
        let image = try Swiftlet.rawImage(SnapshotCLITests.counter)
        let started = try swiftlet(["run", "-d", "--name", "original", "--raw", image, "--raw-mode", "user", "--memory", "64M"])
        #expect(started.status == 0, "stderr: \(started.stderr)")
        #expect(try eventually { SnapshotCLITests.counts(try swiftlet(["logs", "original"]).stdout).count >= 5 })
        let snapshot = state + "-snap"
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        let saved = try swiftlet(["snapshot", "original", snapshot])
        #expect(saved.status == 0, "stderr: \(saved.stderr)")

        // The clone runs beside the original (resumed after the save): two named VMs at once.
        let restored = try swiftlet(["restore", "-d", "--name", "clone", snapshot])
        #expect(restored.status == 0, "stderr: \(restored.stderr)")
        #expect(restored.stdout == "clone\n")
        let ps = try swiftlet(["ps"]).stdout
        for name in ["original", "clone"] {
            let row = ps.split(separator: "\n").first { $0.hasPrefix(name + " ") }.map(String.init) ?? ""
            #expect(row.contains("running") && row.contains("64M"), "ps: \(ps)")
        }
        // The clone's console starts where the original's stopped: its counts are not from 1. (Its first line may
        // be the end of a count the original had half printed, so it is left out.)
        #expect(try eventually { SnapshotCLITests.counts(try swiftlet(["logs", "clone"]).stdout).count >= 6 })
        let counts = Array(SnapshotCLITests.counts(try swiftlet(["logs", "clone"]).stdout).dropFirst())
        #expect((counts.first ?? 0) > 1 && counts == Array(counts[0]...counts[0] + UInt64(counts.count - 1)), "clone counts: \(counts.prefix(5))")

        let again = try swiftlet(["restore", "-d", "--name", "clone", snapshot])
        #expect(again.status == 1 && again.stderr.contains("a VM named 'clone' is already running"), "stderr: \(again.stderr)")
        #expect(try swiftlet(["restore", "--name", "x", snapshot]).status == 64, "--name without -d")
        #expect(try swiftlet(["stop", "--time", "1", "clone"]).status == 0)
        #expect(try swiftlet(["rm", "clone"]).status == 0)
        #expect(try swiftlet(["rm", "--force", "original"]).status == 0)
    }

    @Test("attach: keystrokes reach the guest and its output comes back; logs keeps it")
    func attach() throws {
        defer { cleanUp() }
        let image = try Swiftlet.rawImage(Self.echoGuest)
        #expect(try swiftlet(["run", "-d", "--name", "tty", "--raw", image, "--raw-mode", "user"]).status == 0)
        #expect(try eventually { try swiftlet(["logs", "tty"]).stdout == "ready\n" })

        let attach = Process()
        attach.executableURL = URL(fileURLWithPath: Swiftlet.binary)
        attach.arguments = ["attach", "tty"]
        attach.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let input = Pipe(), output = Pipe()
        attach.standardInput = input
        attach.standardOutput = output
        attach.standardError = FileHandle.nullDevice
        try attach.run()
        Thread.sleep(forTimeInterval: 0.5)
        input.fileHandleForWriting.write(Data("hello\n".utf8))
        #expect(try eventually { try swiftlet(["logs", "tty"]).stdout == "ready\nhello\n" })
        // The VM ending closes the console: attach ends with it.
        #expect(try swiftlet(["kill", "tty"]).status == 0)
        attach.waitUntilExit()
        let seen = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(seen == "hello\n")
    }

    @Test("a killed VMM shows as exited, never running; rm cleans it; --force removes a running one")
    func killedVMM() throws {
        defer { cleanUp() }
        let image = try Swiftlet.rawImage(Self.echoGuest)
        #expect(try swiftlet(["run", "-d", "--name", "a", "--raw", image, "--raw-mode", "user"]).status == 0)
        #expect(try swiftlet(["run", "-d", "--name", "b", "--raw", image, "--raw-mode", "user"]).status == 0)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(state)/a/vm.json"))) as? [String: Any]
        let pid = try #require(record?["pid"] as? Int32)
        kill(pid, SIGKILL)
        #expect(try eventually { try swiftlet(["ps"]).stdout.contains("exited (killed)") })
        let ps = try swiftlet(["ps"]).stdout
        #expect(ps.split(separator: "\n").contains { $0.hasPrefix("b ") && $0.contains("running") }, "ps: \(ps)")

        let refused = try swiftlet(["rm", "b"])
        #expect(refused.status == 1 && refused.stderr.contains("is running"), "stderr: \(refused.stderr)")
        #expect(try swiftlet(["rm", "a"]).status == 0)
        #expect(try swiftlet(["rm", "--force", "b"]).status == 0)
        let empty = try JSONSerialization.jsonObject(with: Data(try swiftlet(["ps", "--json"]).stdout.utf8)) as? [Any]
        #expect(empty?.isEmpty == true)
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: state)) ?? []).isEmpty)
    }

    @Test("a VM that cannot start: run -d fails with the VMM's status and its message, and leaves no name behind")
    func failedStart() throws {
        defer { cleanUp() }
        let started = try swiftlet(["run", "-d", "--name", "bad", "--raw", "/nonexistent/image.bin"])
        #expect(started.status != 0)
        #expect(started.stderr.contains("did not start") && started.stderr.contains("/nonexistent/image.bin"), "stderr: \(started.stderr)")
        #expect(try swiftlet(["ps"]).stdout == "NAME  STATE  AGENT  CPUS  MEMORY  UPTIME  PID\n")
    }

    @Test("bad names and misuse are usage errors")
    func usage() throws {
        defer { cleanUp() }
        #expect(try swiftlet(["run", "-d", "--name", "-x", "--raw", "/x"]).status == 64)
        #expect(try swiftlet(["run", "--name", "web", "--raw", "/x"]).status == 64)
        #expect(try swiftlet(["run", "-d", "--api-sock", "/tmp/x.sock", "--raw", "/x"]).status == 64)
        let missing = try swiftlet(["pause", "nobody"])
        #expect(missing.status == 1 && missing.stderr.contains("no VM named 'nobody'"), "stderr: \(missing.stderr)")
    }

    @Test("ps asks each running VM's agent through its vsock socket: ready when it answers hello, no when nothing listens, - without vsock")
    func agentReadiness() throws {
        defer { cleanUp() }
        let image = try Swiftlet.rawImage(Self.echoGuest)
        for name in ["up", "down", "plain"] {
            #expect(try swiftlet(["run", "-d", "--name", name, "--raw", image, "--raw-mode", "user"]).status == 0)
        }
        // A raw guest has no vsock device; the record is where ps looks for one, so point two VMs' records at
        // stand-ins for a VM's vsock socket: one with an agent answering hello, one whose guest refuses.
        let answering = try FakeAgentSocket(path: "/tmp/swl-up-\(UUID().uuidString.prefix(8)).vsock", answers: true)
        let refusing = try FakeAgentSocket(path: "/tmp/swl-down-\(UUID().uuidString.prefix(8)).vsock", answers: false)
        defer { answering.close(); refusing.close() }
        for (name, socket) in [("up", answering.path), ("down", refusing.path)] {
            let url = URL(fileURLWithPath: "\(state)/\(name)/vm.json")
            var record = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
            record["vsockSocket"] = socket
            try JSONSerialization.data(withJSONObject: record).write(to: url)
        }
        let ps = try swiftlet(["ps"])
        let rows = Dictionary(uniqueKeysWithValues: ps.stdout.split(separator: "\n").dropFirst().map { line in
            let cells = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            return (cells[0], cells[2])
        })
        #expect(ps.stdout.hasPrefix("NAME   STATE    AGENT  CPUS"), "ps: \(ps.stdout)")
        #expect(rows == ["up": "ready", "down": "no", "plain": "-"], "ps: \(ps.stdout)")
        let objects = try JSONSerialization.jsonObject(with: Data(try swiftlet(["ps", "--json"]).stdout.utf8)) as? [[String: Any]] ?? []
        let ready = Dictionary(uniqueKeysWithValues: objects.map { ($0["name"] as? String ?? "?", $0["agentReady"] as Any) })
        #expect(ready["up"] as? Bool == true && ready["down"] as? Bool == false && ready["plain"] is NSNull, "ps --json: \(objects)")
        #expect(answering.hellos > 0)

        #expect(try swiftlet(["pause", "up"]).status == 0)
        let paused = try swiftlet(["ps"]).stdout.split(separator: "\n").first { $0.hasPrefix("up ") } ?? ""
        #expect(paused.split(separator: " ", omittingEmptySubsequences: true).dropFirst(2).first == "-", "a paused guest is not asked: \(paused)")
        #expect(try swiftlet(["ps", "--agent-timeout", "0"]).status == 64)
    }
}

/// A Unix socket in the place of a VM's vsock socket (Firecracker's `CONNECT <port>` convention): with `answers`
/// it accepts the connection (`OK`), reads the agent protocol's hello frame and answers ready (docs/agent.md);
/// otherwise it closes every connection, as the VMM does when nothing in the guest listens on the port.
final class FakeAgentSocket: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var helloCount = 0

    var hellos: Int { lock.lock(); defer { lock.unlock() }; return helloCount }

    init(path: String, answers: Bool) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 16) == 0 else { throw CocoaError(.fileWriteUnknown) }
        let listener = fd
        let thread = Thread { [self] in
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 { return }
                defer { Glibc.close(connection) }
                guard answers, Self.readLine(connection).hasPrefix("CONNECT ") else { continue }
                let ok = Array("OK 1073741824\n".utf8)
                _ = write(connection, ok, ok.count)
                // hello: u32 length, type 0x01, u16 version, string client.
                var header = [UInt8](repeating: 0, count: 4)
                guard read(connection, &header, 4) == 4 else { continue }
                let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
                var body = [UInt8](repeating: 0, count: length)
                var got = 0
                while got < length { let count = body.withUnsafeMutableBytes { read(connection, $0.baseAddress! + got, length - got) }; if count <= 0 { break }; got += count }
                guard got == length, body.first == 0x01 else { continue }
                self.lock.lock(); self.helloCount += 1; self.lock.unlock()
                let agent = Array("fake-agent".utf8)
                let ready: [UInt8] = [0x02, 0x00, 0x01] + [0, 0, 0, UInt8(agent.count)] + agent
                let frame = [0, 0, 0, UInt8(ready.count)] + ready
                _ = write(connection, frame, frame.count)
                // Wait for the client to close.
                var byte: UInt8 = 0
                while read(connection, &byte, 1) > 0 {}
            }
        }
        thread.start()
    }

    static func readLine(_ fd: Int32) -> String {
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while read(fd, &byte, 1) == 1, byte != UInt8(ascii: "\n") { line.append(byte) }
        return String(decoding: line, as: UTF8.self)
    }

    func close() {
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
        unlink(path)
    }
}
