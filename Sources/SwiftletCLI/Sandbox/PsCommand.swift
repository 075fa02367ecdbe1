import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Swiftlet
import SwiftletAgentClient
import SwiftletSandbox
import Synchronization

/// `swiftlet ps`: the named VMs, running and exited.
struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List the VMs started with run -d (running, paused and exited).")

    @Flag(help: "Print a JSON array (one object per VM) instead of a table.")
    var json = false

    @Option(name: .customLong("agent-timeout"), help: ArgumentHelp(
        "Seconds to wait for each running VM's guest agent to answer (the AGENT column; all VMs are asked at once).",
        valueName: "seconds"))
    var agentTimeout: Double = 0.5

    func validate() throws {
        guard agentTimeout > 0, agentTimeout <= 60 else { throw ValidationError("--agent-timeout must be more than 0 and at most 60 seconds") }
    }

    func run() throws {
        let directory = SandboxDirectory.standard()
        let statuses = directory.names().map { SandboxStatus.of(directory.paths(for: $0)) }
        let agents = AgentProbe.readiness(of: statuses, timeout: .milliseconds(Int64(agentTimeout * 1000)))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let entries = zip(statuses, agents).map { PsEntry(status: $0, agentReady: $1) }
            print(String(decoding: try encoder.encode(entries), as: UTF8.self))
            return
        }
        var rows = [["NAME", "STATE", "AGENT", "CPUS", "MEMORY", "UPTIME", "PID"]]
        for (status, agent) in zip(statuses, agents) {
            rows.append([status.name, status.stateText, agent.map { $0 ? "ready" : "no" } ?? "-", "\(status.vcpus)",
                         SandboxStatus.memoryText(status.memoryMiB), status.uptime().map(SandboxStatus.shortDuration) ?? "-",
                         status.state == .exited ? "-" : status.pid.map { "\($0)" } ?? "-"])
        }
        print(Table.render(rows), terminator: "")
    }
}

/// One `ps --json` object: the VM's status fields and `agentReady` (true, false, or null when not asked: the VM
/// is not running, or has no vsock device).
struct PsEntry: Encodable {
    var status: SandboxStatus
    var agentReady: Bool?

    private enum Key: String, CodingKey { case agentReady }

    func encode(to encoder: any Encoder) throws {
        try status.encode(to: encoder)
        var container = encoder.container(keyedBy: Key.self)
        try container.encode(agentReady, forKey: .agentReady)
    }
}

/// Whether each running VM's guest agent answers: one short connection through its vsock socket (`CONNECT 1024`,
/// hello, ready), all VMs at once on threads of their own, so `ps` takes about one timeout however many VMs run.
/// nil for a VM that is not running (a paused guest cannot answer) or has no vsock device.
enum AgentProbe {
    static func readiness(of statuses: [SandboxStatus], timeout: Duration) -> [Bool?] {
        let results = Mutex([Bool?](repeating: nil, count: statuses.count))
        var threads: [HostThread] = []
        for (index, status) in statuses.enumerated() {
            guard status.state == .running, let socket = status.vsockSocket else { continue }
            do {
                threads.append(try HostThread(name: "ps-agent") {
                    let ready = AgentClient.isReady(socketPath: socket, timeout: timeout)
                    results.withLock { $0[index] = ready }
                })
            } catch {
                // No thread to be had: ask in this one.
                let ready = AgentClient.isReady(socketPath: socket, timeout: timeout)
                results.withLock { $0[index] = ready }
            }
        }
        for thread in threads { thread.join() }
        return results.withLock { $0 }
    }
}

/// Columns padded to their widest cell, two spaces apart (as `docker ps`).
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let columns = rows.map(\.count).max() else { return "" }
        var widths = [Int](repeating: 0, count: columns)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        var text = ""
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }
            text += cells.joined(separator: "  ") + "\n"
        }
        return text
    }
}
