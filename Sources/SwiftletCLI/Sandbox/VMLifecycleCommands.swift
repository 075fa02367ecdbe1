import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftletAPI
import SwiftletSandbox
#if canImport(Glibc)
import Glibc
#endif

/// What the by-name commands share: finding the VM, and its API.
struct NamedVM {
    let paths: SandboxPaths

    init(_ name: String) throws {
        do {
            paths = try SandboxDirectory.standard().existing(name: name)
        } catch {
            printError("swiftlet: \(error)")
            throw ExitCode.failure
        }
    }

    var name: String { paths.name }

    func requireRunning() throws {
        guard paths.isRunning else {
            printError("swiftlet: \(SandboxError.notRunning(name: name))")
            throw ExitCode.failure
        }
    }

    /// One API request; a non-2xx answer or no answer is an error that names the VM.
    @discardableResult
    func api(_ method: String, _ path: String, json: String? = nil) throws -> APIClientResponse {
        do {
            let response = try APIClient.request(socket: paths.apiSocket, method: method, path: path, json: json)
            guard (200..<300).contains(response.status) else {
                printError("swiftlet: \(name): \(response.faultMessage)")
                throw ExitCode.failure
            }
            return response
        } catch let error as APIClientError {
            printError("swiftlet: \(name): \(error)")
            throw ExitCode.failure
        }
    }

    var pid: pid_t? { paths.readRecord()?.pid }

    /// `PATCH /vm` with Firecracker's `Paused` or `Resumed`.
    func setState(_ state: String) throws {
        try requireRunning()
        try api("PATCH", "/vm", json: "{\"state\": \"\(state)\"}")
    }

    /// Waits until the VMM has released its lock (exited); false if `seconds` passed first.
    func waitUntilExited(seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while paths.isRunning {
            if Date() > deadline { return false }
            usleep(50_000)
        }
        return true
    }

    /// Sends `signal` to the VMM, if it is still the one holding the VM's lock.
    func signal(_ signal: Int32) {
        guard paths.isRunning, let pid else { return }
        kill(pid, signal)
    }
}

struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause a named VM (its vCPUs stop; it keeps its memory).")
    @Argument(help: "The VM's name.") var name: String

    func run() throws { try NamedVM(name).setState("Paused") }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused named VM.")
    @Argument(help: "The VM's name.") var name: String

    func run() throws { try NamedVM(name).setState("Resumed") }
}

/// `swiftlet stop NAME`: asks the guest first (Ctrl-Alt-Del, as `docker stop` sends SIGTERM), then stops the VM
/// from outside if the guest has not finished within --time seconds.
struct StopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop a named VM: Ctrl-Alt-Del to the guest, then, after --time seconds, stop the VMM.")
    @Argument(help: "The VM's name.") var name: String
    @Option(name: [.customShort("t"), .customLong("time")], help: "Seconds the guest has to shut down before the VMM stops it.")
    var time: Double = 10

    func run() throws {
        let vm = try NamedVM(name)
        guard vm.paths.isRunning else { return }   // already stopped: nothing to do, as docker stop
        // A paused guest cannot hear the keys: resume it first.
        if SandboxStatus.of(vm.paths).state == .paused { try? vm.setState("Resumed") }
        _ = try? APIClient.request(socket: vm.paths.apiSocket, method: "PUT", path: "/actions", json: #"{"action_type": "SendCtrlAltDel"}"#)
        if vm.waitUntilExited(seconds: time) { return }
        // The guest did not stop itself: SIGTERM makes the VMM stop the VM (it still exits cleanly), then SIGKILL.
        vm.signal(SIGTERM)
        if vm.waitUntilExited(seconds: 5) { return }
        vm.signal(SIGKILL)
        if !vm.waitUntilExited(seconds: 5) {
            printError("swiftlet: \(name): the VMM did not exit")
            throw ExitCode.failure
        }
    }
}

/// `swiftlet kill NAME`: ends the VMM at once (SIGKILL by default), as `docker kill`.
struct KillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kill", abstract: "Kill a named VM's VMM (SIGKILL, or --signal).")
    @Argument(help: "The VM's name.") var name: String
    @Option(name: [.customShort("s"), .customLong("signal")], help: "Signal number or name (KILL, TERM, INT).")
    var signalName: String = "KILL"

    func run() throws {
        let vm = try NamedVM(name)
        try vm.requireRunning()
        let names: [String: Int32] = ["KILL": SIGKILL, "TERM": SIGTERM, "INT": SIGINT, "HUP": SIGHUP]
        let upper = signalName.uppercased()
        guard let number = names[upper.hasPrefix("SIG") ? String(upper.dropFirst(3)) : upper] ?? Int32(signalName) else {
            printError("swiftlet: unknown signal \(signalName): use KILL, TERM, INT, HUP or a number")
            throw ExitCode(64)
        }
        vm.signal(number)
        if number == SIGKILL, !vm.waitUntilExited(seconds: 5) {
            printError("swiftlet: \(name): the VMM did not exit")
            throw ExitCode.failure
        }
    }
}

/// `swiftlet rm NAME`: forgets an exited VM (its directory, logs and sockets); `--force` kills a running one first.
struct RmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove exited named VMs (--force: kill running ones first).")
    @Argument(help: "The VMs' names.") var names: [String]
    @Flag(name: [.customShort("f"), .customLong("force")], help: "Kill the VM first if it runs.")
    var force = false

    func run() throws {
        var failed = false
        for name in names {
            do {
                let vm = try NamedVM(name)
                if vm.paths.isRunning {
                    guard force else { throw SandboxError.stillRunning(name: name) }
                    vm.signal(SIGKILL)
                    _ = vm.waitUntilExited(seconds: 5)
                }
                try SandboxDirectory.standard().remove(name: name)
                print(name)
            } catch let error as SandboxError {
                printError("swiftlet: \(error)")
                failed = true
            } catch {
                failed = true
            }
        }
        if failed { throw ExitCode.failure }
    }
}
