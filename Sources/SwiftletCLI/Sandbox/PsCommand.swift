import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftletSandbox

/// `swiftlet ps`: the named VMs, running and exited.
struct PsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List the VMs started with run -d (running, paused and exited).")

    @Flag(help: "Print a JSON array (one object per VM) instead of a table.")
    var json = false

    func run() throws {
        let directory = SandboxDirectory.standard()
        let statuses = directory.names().map { SandboxStatus.of(directory.paths(for: $0)) }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(statuses), as: UTF8.self))
            return
        }
        var rows = [["NAME", "STATE", "CPUS", "MEMORY", "UPTIME", "PID"]]
        for status in statuses {
            rows.append([status.name, status.stateText, "\(status.vcpus)", SandboxStatus.memoryText(status.memoryMiB),
                         status.uptime().map(SandboxStatus.shortDuration) ?? "-",
                         status.state == .exited ? "-" : status.pid.map { "\($0)" } ?? "-"])
        }
        print(Table.render(rows), terminator: "")
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
