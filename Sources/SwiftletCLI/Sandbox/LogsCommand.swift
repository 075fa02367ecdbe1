import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftletSandbox
#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet logs NAME [-f]`: the VM's console output kept in its directory (the last 1-2 MiB); `-f` follows it
/// until the VM exits.
struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "logs", abstract: "Print a named VM's console output (-f: follow).")
    @Argument(help: "The VM's name.") var name: String
    @Flag(name: [.customShort("f"), .customLong("follow")], help: "Keep printing new output until the VM exits.")
    var follow = false

    func run() throws {
        let vm = try NamedVM(name)
        let log = vm.paths.consoleLog
        copy(path: log + ".1", from: 0)
        var position = copy(path: log, from: 0)
        var inode = Self.inode(of: log)
        guard follow else { return }
        while true {
            let running = vm.paths.isRunning
            let current = Self.inode(of: log)
            if current != inode {
                // Rotated: the rest of the old file is now console.log.1; then the new file from its start.
                copy(path: log + ".1", from: position)
                position = 0
                inode = current
            }
            position = copy(path: log, from: position)
            if !running { return }   // read once more after the VMM exited, then stop
            usleep(100_000)
        }
    }

    /// Copies `path` from `offset` to stdout; returns the offset reached.
    @discardableResult
    private func copy(path: String, from offset: Int) -> Int {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return offset }
        defer { close(fd) }
        var position = offset
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(position)) }
            guard count > 0 else { break }
            var rest = buffer[0..<count]
            while !rest.isEmpty {
                let written = rest.withUnsafeBytes { write(STDOUT_FILENO, $0.baseAddress, $0.count) }
                guard written > 0 else { return position }
                rest = rest.dropFirst(written)
            }
            position += count
        }
        return position
    }

    private static func inode(of path: String) -> UInt64 {
        var info = stat()
        return stat(path, &info) == 0 ? UInt64(info.st_ino) : 0
    }
}
