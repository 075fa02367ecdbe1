import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Swiftlet
import SwiftletAPI
import SwiftletSandbox
#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet snapshot`: saves a running VM through its API (Firecracker's calls: `PATCH /vm` Paused,
/// `PUT /snapshot/create`, `PATCH /vm` Resumed) into a directory that `swiftlet restore` runs again.
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Save a running VM into a directory (its state and memory files); the VM goes on unless --no-resume.",
        discussion: """
            Give the VM's API socket (--api-sock PATH DIR) or the name of a VM run with `run -d` (NAME DIR). The VM \
            is paused, saved into DIR/state and DIR/memory (created if needed; existing files are replaced) and \
            resumed. `swiftlet restore DIR` runs it again, in another process, from where it was saved. \
            docs/snapshots.md.
            """
    )

    /// `PUT /snapshot/create` can take long for a large guest (its memory file is written then).
    static let createTimeout: Double = 600

    @Option(name: .customLong("api-sock"), help: ArgumentHelp("The VM's API socket (from `swiftlet run --api-sock`, `serve` or Firecracker mode).", valueName: "path"))
    var apiSocket: String?

    @Argument(help: ArgumentHelp("NAME DIR for a named VM, or DIR with --api-sock.", valueName: "name-or-dir"))
    var arguments: [String] = []

    @Flag(name: .customLong("no-resume"), help: "Leave the VM paused after the save.")
    var noResume = false

    func validate() throws {
        if apiSocket != nil {
            guard arguments.count == 1 else { throw ValidationError("with --api-sock give one argument, the snapshot directory") }
        } else {
            guard arguments.count == 2 else { throw ValidationError("give NAME DIR (a VM run with `run -d`), or --api-sock PATH DIR") }
            do { try SandboxDirectory.validate(name: arguments[0]) } catch { throw ValidationError("\(error)") }
        }
        guard !(arguments.last ?? "").isEmpty else { throw ValidationError("the snapshot directory is empty") }
    }

    func run() throws {
        let socket: String
        let label: String
        if let apiSocket {
            socket = apiSocket
            label = apiSocket
        } else {
            let vm = try NamedVM(arguments[0])
            try vm.requireRunning()
            socket = vm.paths.apiSocket
            label = vm.name
        }
        // The VMM resolves paths in its own working directory: send absolute ones.
        let directory = SnapshotPathText.absolute(arguments.last!)
        if mkdir(directory, 0o755) != 0, errno != EEXIST {
            fail("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard stat(directory, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else { fail("\(directory) is not a directory") }
        let statePath = directory + "/" + Machine.snapshotStateFile, memoryPath = directory + "/" + Machine.snapshotMemoryFile

        let client = Client(socket: socket, label: label)
        let state = try client.instanceState()
        guard state == InstanceInfo.State.running.rawValue || state == InstanceInfo.State.paused.rawValue else {
            fail("\(label): the VM is \(state.isEmpty ? "in an unknown state" : "'\(state)'"): only a started VM can be saved")
        }
        let wasRunning = state == InstanceInfo.State.running.rawValue
        let began = BootTimeline.now()
        if wasRunning { try client.send("PATCH", "/vm", #"{"state": "Paused"}"#, doing: "pause the VM") }
        let saveBegan = BootTimeline.now()
        let body = String(decoding: try JSONEncoder().encode(SnapshotCreateParams(snapshotPath: statePath, memFilePath: memoryPath)), as: UTF8.self)
        do {
            try client.send("PUT", "/snapshot/create", body, doing: "save the snapshot", timeout: Self.createTimeout)
        } catch {
            if wasRunning, !noResume { try? client.send("PATCH", "/vm", #"{"state": "Resumed"}"#, doing: "resume the VM") }
            throw error
        }
        let saveEnded = BootTimeline.now()
        if wasRunning, !noResume { try client.send("PATCH", "/vm", #"{"state": "Resumed"}"#, doing: "resume the VM") }
        let ended = BootTimeline.now()

        for path in [statePath, memoryPath] {
            var file = stat()
            guard stat(path, &file) == 0 else { fail("\(path) was not written: \(String(cString: strerror(errno)))") }
            // st_blocks counts 512-byte units actually allocated: the memory file is sparse.
            print("\(path)  \(SnapshotPathText.size(UInt64(max(file.st_size, 0)))) (\(SnapshotPathText.size(UInt64(max(file.st_blocks, 0)) * 512)) on disk)")
        }
        var summary = "saved in \(SnapshotPathText.milliseconds(saveEnded - saveBegan))"
        if wasRunning && !noResume {
            summary += "; the VM was paused for \(SnapshotPathText.milliseconds(ended - began)) and runs again"
        } else {
            summary += "; the VM is paused (swiftlet resume, or PATCH /vm {\"state\": \"Resumed\"})"
        }
        print(summary)
    }

    private func fail(_ message: String) -> Never {
        printError("swiftlet: \(message)")
        Glibc.exit(ExitCode.failure.rawValue)
    }

    /// One VM's API, each request's failure an error that names the VM and what was being done.
    struct Client {
        let socket: String
        let label: String

        func instanceState() throws -> String {
            let response = try request("GET", "/", nil, doing: "read the VM's state", timeout: 10)
            guard case let .object(members)? = try? JSONDecoder().decode(JSONValue.self, from: Data(response.body.utf8)),
                  case let .string(state)? = members["state"] else { return "" }
            return state
        }

        func send(_ method: String, _ path: String, _ body: String, doing what: String, timeout: Double = 10) throws {
            _ = try request(method, path, body, doing: what, timeout: timeout)
        }

        private func request(_ method: String, _ path: String, _ body: String?, doing what: String, timeout: Double) throws -> APIClientResponse {
            let response: APIClientResponse
            do {
                response = try APIClient.request(socket: socket, method: method, path: path, json: body, timeout: timeout)
            } catch {
                printError("swiftlet: \(label): cannot \(what): \(error)")
                throw ExitCode.failure
            }
            guard (200..<300).contains(response.status) else {
                printError("swiftlet: \(label): cannot \(what): \(response.faultMessage)")
                throw ExitCode.failure
            }
            return response
        }
    }
}

/// Small text helpers of the snapshot commands.
enum SnapshotPathText {
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let directory = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var relative = Substring(path)
        while relative.hasPrefix("./") { relative = relative.dropFirst(2) }
        if relative == "." || relative.isEmpty { return directory }
        return (directory == "/" ? "" : directory) + "/" + relative
    }

    /// 15.2 KiB, 32 MiB, 1.5 GiB.
    static func size(_ bytes: UInt64) -> String {
        let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        if unit == 0 { return "\(bytes) bytes" }
        let tenths = Int((value * 10).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10) \(units[unit])" : "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }

    static func milliseconds(_ nanoseconds: UInt64) -> String {
        let hundredths = (nanoseconds + 5_000) / 10_000
        return "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100) ms"
    }
}
