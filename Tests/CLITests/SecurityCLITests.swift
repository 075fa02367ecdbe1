import Foundation
import Testing

/// The seccomp filters and the jailer, as a user meets them: the `swiftlet` binary as a subprocess, since a
/// filter covers a whole process and would end a test runner (docs/security.md).
@Suite(.serialized)
struct SecurityCLITests {
    static let hasKVM = FileManager.default.isReadableFile(atPath: "/dev/kvm")
    static let isRoot = getuid() == 0
    // mov $0x3f8,%dx; mov $'!',%al; out %al,(%dx); hlt
    static let bangImage: [UInt8] = [0xBA, 0xF8, 0x03, 0xB0, 0x21, 0xEE, 0xF4]
    static let spinImage: [UInt8] = [0xEB, 0xFE]

    /// The seccomp mode of every thread of `pid`, by thread name.
    static func threadModes(_ pid: Int32) -> [String: String] {
        let tasks = "/proc/\(pid)/task"
        var modes: [String: String] = [:]
        for tid in (try? FileManager.default.contentsOfDirectory(atPath: tasks)) ?? [] {
            guard let status = try? String(contentsOfFile: "\(tasks)/\(tid)/status", encoding: .utf8) else { continue }
            let fields = status.split(separator: "\n")
            let name = fields.first { $0.hasPrefix("Name:") }?.dropFirst(5).trimmingCharacters(in: .whitespaces) ?? "?"
            modes[name] = fields.first { $0.hasPrefix("Seccomp:") }?.dropFirst(8).trimmingCharacters(in: .whitespaces)
        }
        return modes
    }

    @Test("a tiny guest runs to its end with the filters on", .enabled(if: hasKVM, "needs /dev/kvm"),
          arguments: ["trap", "kill"])
    func tinyGuestUnderFilters(level: String) throws {
        let image = try Swiftlet.rawImage(Self.bangImage)
        let result = try Swiftlet.run(["run", "--raw", image, "--seccomp-level", level])
        #expect(result.status == 3, "stderr: \(result.stderr)")
        #expect(result.stdout == "!")
        #expect(!result.stderr.contains("seccomp"), "stderr: \(result.stderr)")
    }

    @Test("every thread of a running VMM has a seccomp filter (Seccomp: 2), with and without the API",
          .enabled(if: hasKVM, "needs /dev/kvm"), arguments: [false, true])
    func everyThreadIsFiltered(withAPI: Bool) throws {
        let image = try Swiftlet.rawImage(Self.spinImage)
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-sec-\(UUID().uuidString).sock").path
        let process = try Swiftlet.start(["run", "--raw", image, "--seccomp-level", "trap"] + (withAPI ? ["--api-sock", socket] : []))
        defer { process.process.terminate(); process.process.waitUntilExit() }
        Thread.sleep(forTimeInterval: 1.5)
        if withAPI {
            // A pause and a resume through the API, under the API thread's and the lifecycle's filters.
            for state in ["Paused", "Resumed"] {
                let curl = Process()
                curl.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
                curl.arguments = ["-s", "-f", "--max-time", "10", "--unix-socket", socket, "-X", "PATCH", "http://localhost/vm",
                                  "-d", "{\"state\": \"\(state)\"}"]
                try curl.run()
                curl.waitUntilExit()
                #expect(curl.terminationStatus == 0, "PATCH /vm \(state)")
            }
        }
        let modes = Self.threadModes(process.process.processIdentifier)
        #expect(modes["vcpu0"] == "2" && modes["vmm"] == "2" && modes["console-out"] == "2", "threads: \(modes)")
        if withAPI { #expect(modes["NIO-ELT-1-#1"] == "2", "threads: \(modes)") }
        #expect(modes.values.allSatisfy { $0 == "2" }, "threads: \(modes)")
        #expect(process.process.isRunning)
    }

    @Test("a forbidden system call in a filtered thread ends the VMM, naming the call and the thread",
          .enabled(if: hasKVM, "needs /dev/kvm"), arguments: ["vcpu", "vmm", "console", "main"])
    func forbiddenCallIsReported(kind: String) throws {
        let image = try Swiftlet.rawImage(Self.spinImage)
        let result = try Swiftlet.run(["run", "--raw", image, "--seccomp-level", "trap", "--seccomp-probe", kind, "--timeout", "20"])
        #expect(result.status == 159, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("seccomp: the \(kind) thread made system call ptrace (101), which its filter does not allow"),
                "stderr: \(result.stderr)")
    }

    @Test("with --seccomp-level kill the kernel ends the process with SIGSYS", .enabled(if: hasKVM, "needs /dev/kvm"))
    func forbiddenCallKills() throws {
        let image = try Swiftlet.rawImage(Self.spinImage)
        let started = try Swiftlet.start(["run", "--raw", image, "--seccomp-level", "kill", "--seccomp-probe", "vcpu", "--timeout", "20"])
        started.process.waitUntilExit()
        #expect(started.process.terminationReason == .uncaughtSignal)
        #expect(started.process.terminationStatus == SIGSYS)
    }

    @Test("--no-seccomp runs without filters; it contradicts --seccomp-level trap", .enabled(if: hasKVM, "needs /dev/kvm"))
    func noSeccomp() throws {
        let image = try Swiftlet.rawImage(Self.spinImage)
        let process = try Swiftlet.start(["run", "--raw", image, "--no-seccomp"])
        Thread.sleep(forTimeInterval: 1.0)
        let modes = Self.threadModes(process.process.processIdentifier)
        process.process.terminate(); process.process.waitUntilExit()
        #expect(modes["vcpu0"] == "0", "threads: \(modes)")
        let refused = try Swiftlet.run(["run", "--raw", image, "--no-seccomp", "--seccomp-level", "trap"])
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("contradict"))
    }

    // MARK: - The jailer

    static let jailBase = "/srv/swiftlet-jail-test"

    @Test("swiftlet jail runs a tiny guest in its chroot as the given uid, and removes the jail afterwards",
          .enabled(if: hasKVM && isRoot, "needs /dev/kvm and root"))
    func jailedGuestRuns() throws {
        let image = try Swiftlet.rawImage(Self.bangImage)
        let id = "t-\(getpid())"
        let result = try Swiftlet.run(["jail", "--id", id, "--exec-file", Swiftlet.binary, "--uid", "65534", "--gid", "65534",
                                       "--chroot-base-dir", Self.jailBase, "--new-pid-ns", "--file", image,
                                       "--", "run", "--raw", "/" + URL(fileURLWithPath: image).lastPathComponent])
        #expect(result.status == 3, "stderr: \(result.stderr)")
        #expect(result.stdout == "!")
        #expect(!FileManager.default.fileExists(atPath: "\(Self.jailBase)/swiftlet/\(id)"), "the jail was left behind")
    }

    @Test("inside the jail: uid/gid dropped, the host's files out of sight, cgroup limits applied",
          .enabled(if: hasKVM && isRoot, "needs /dev/kvm and root"))
    func jailIsolation() throws {
        let image = try Swiftlet.rawImage(Self.spinImage)
        let id = "i-\(getpid())"
        let hasCgroup2 = FileManager.default.fileExists(atPath: "/sys/fs/cgroup/cgroup.controllers")
        let jail = try Swiftlet.start(["jail", "--id", id, "--exec-file", Swiftlet.binary, "--uid", "4242", "--gid", "4343",
                                       "--chroot-base-dir", Self.jailBase, "--file", image]
                                      + (hasCgroup2 ? ["--cgroup", "pids.max=64"] : [])
                                      + ["--", "run", "--raw", "/" + URL(fileURLWithPath: image).lastPathComponent])
        Thread.sleep(forTimeInterval: 1.5)
        let children = (try? String(contentsOfFile: "/proc/\(jail.process.processIdentifier)/task/\(jail.process.processIdentifier)/children",
                                    encoding: .utf8)) ?? ""
        let vmm = Int32(children.split(separator: " ").first ?? "") ?? -1
        let status = (try? String(contentsOfFile: "/proc/\(vmm)/status", encoding: .utf8)) ?? ""
        // What the VMM sees as / (through its /proc/PID/root): only the jail's entries.
        let root = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(vmm)/root")) ?? []).sorted()
        let namespaces = ["self", "\(vmm)"].map { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/ns/mnt") }
        let limit = hasCgroup2 ? (try? String(contentsOfFile: "/sys/fs/cgroup/swiftlet/\(id)/pids.max", encoding: .utf8)) : nil
        let procs = hasCgroup2 ? (try? String(contentsOfFile: "/sys/fs/cgroup/swiftlet/\(id)/cgroup.procs", encoding: .utf8)) : nil
        jail.process.terminate()   // SIGTERM to the jailer: passed on, the VM stops cleanly
        jail.process.waitUntilExit()
        #expect(status.contains("Uid:\t4242\t4242\t4242"), "status: \(status)")
        #expect(status.contains("Gid:\t4343\t4343\t4343"), "status: \(status)")
        #expect(root == ["dev", "proc", "run", "swiftlet", URL(fileURLWithPath: image).lastPathComponent].sorted(), "root: \(root)")
        #expect(namespaces[0] != nil && namespaces[0] != namespaces[1], "mount namespaces: \(namespaces)")
        if hasCgroup2 {
            #expect(limit?.trimmingCharacters(in: .whitespacesAndNewlines) == "64")
            #expect(procs?.contains("\(vmm)") == true, "cgroup.procs: \(procs ?? "")")
        }
        #expect(jail.process.terminationStatus == 143)
        #expect(!FileManager.default.fileExists(atPath: "\(Self.jailBase)/swiftlet/\(id)"), "the jail was left behind")
        #expect(!FileManager.default.fileExists(atPath: "/sys/fs/cgroup/swiftlet/\(id)"), "the cgroup was left behind")
    }

    @Test("a host file outside the jail cannot be read from inside", .enabled(if: hasKVM && isRoot, "needs /dev/kvm and root"))
    func hostFilesAreOutOfSight() throws {
        let image = try Swiftlet.rawImage(Self.bangImage)   // exists on the host, not given with --file
        let result = try Swiftlet.run(["jail", "--id", "h-\(getpid())", "--exec-file", Swiftlet.binary, "--uid", "65534", "--gid", "65534",
                                       "--chroot-base-dir", Self.jailBase, "--", "run", "--raw", image])
        #expect(result.status == 64, "stderr: \(result.stderr)")
        #expect(result.stderr.contains("No such file"), "stderr: \(result.stderr)")
    }

    @Test("jail flags are checked before anything is created", arguments: [
        (["--id", "bad/id"], "--id bad/id"),
        (["--id", "ok", "--cgroup", "../x=1"], "--cgroup"),
        (["--id", "ok", "--cgroup-version", "1"], "only cgroup v2"),
        (["--id", "ok", "--resource-limit", "stack=1"], "fsize=BYTES or no-file=COUNT"),
    ])
    func jailFlagsAreValidated(flags: [String], message: String) throws {
        let result = try Swiftlet.run(["jail"] + flags + ["--uid", "1", "--gid", "1", "--", "run"])
        #expect(result.status == 64, "stderr: \(result.stderr)")
        #expect(result.stderr.contains(message), "stderr: \(result.stderr)")
    }
}
