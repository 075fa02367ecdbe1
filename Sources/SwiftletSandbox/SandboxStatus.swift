#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftletAPI
#if canImport(Glibc)
import Glibc
#endif

/// One named VM as `ps` and `inspect` show it: what its directory records, its lock says and its API answers.
public struct SandboxStatus: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable {
        case running, paused
        /// The VMM holds its lock but its API does not answer (starting, or stuck).
        case unresponsive
        /// No VMM holds the lock: it exited, or was killed.
        case exited
    }

    public var name: String
    public var state: State
    public var pid: Int32?
    public var vcpus: Int
    public var memoryMiB: Int
    /// Seconds since the epoch.
    public var created: Double
    /// The VMM's exit status, when it exited on its own (not when killed).
    public var exitStatus: Int32?
    public var apiSocket: String
    public var consoleSocket: String
    public var vsockSocket: String?
    public var directory: String

    /// Looks at one VM (one API request when its VMM is alive, with a short deadline: `ps` must not hang on a
    /// stuck VMM).
    public static func of(_ paths: SandboxPaths, apiTimeout: Double = 2) -> SandboxStatus {
        let record = paths.readRecord()
        var status = SandboxStatus(name: paths.name, state: .exited, pid: record?.pid, vcpus: record?.vcpus ?? 0,
                                   memoryMiB: record?.memoryMiB ?? 0, created: record?.created ?? 0, exitStatus: nil,
                                   apiSocket: paths.apiSocket, consoleSocket: paths.consoleSocket,
                                   vsockSocket: record?.vsockSocket, directory: paths.directory)
        guard paths.isRunning else {
            status.exitStatus = paths.recordedExitStatus
            return status
        }
        status.state = .unresponsive
        if let response = try? APIClient.request(socket: paths.apiSocket, method: "GET", path: "/", timeout: apiTimeout),
           response.status == 200,
           let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(response.body.utf8)),
           case let .string(state)? = object["state"] {
            status.state = state == "Paused" ? .paused : .running
        }
        return status
    }

    /// "exited (0)", "running" ...: the STATE column.
    public var stateText: String {
        guard state == .exited else { return state.rawValue }
        return exitStatus.map { "exited (\($0))" } ?? "exited (killed)"
    }

    /// Seconds the VM has been up, for a live one.
    public func uptime(now: Double = Date().timeIntervalSince1970) -> Double? {
        guard state != .exited, created > 0 else { return nil }
        return max(0, now - created)
    }
}

extension SandboxStatus {
    /// 45s, 12m, 3h, 2d: the UPTIME column.
    public static func shortDuration(_ seconds: Double) -> String {
        let whole = Int(seconds)
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return "\(whole / 60)m\(whole % 60 == 0 ? "" : "\(whole % 60)s")" }
        if whole < 86400 { return "\(whole / 3600)h\((whole % 3600) / 60)m" }
        return "\(whole / 86400)d\((whole % 86400) / 3600)h"
    }

    /// 512M, 2G: the MEMORY column.
    public static func memoryText(_ mib: Int) -> String {
        mib >= 1024 && mib % 1024 == 0 ? "\(mib / 1024)G" : "\(mib)M"
    }
}
