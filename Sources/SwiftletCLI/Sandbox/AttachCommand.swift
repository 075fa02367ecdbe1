import ArgumentParser
import Swiftlet
import SwiftletSandbox
import SystemPackage
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet attach NAME`: this terminal becomes the VM's console (raw, as in `run`) until Ctrl-P Ctrl-Q detaches
/// (docker's sequence; Ctrl-A X would stop the VM in `run`, and here the VM goes on). Several clients may attach
/// at once; each sees the output from the moment it attached (`swiftlet logs` has what came before).
struct AttachCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "attach",
        abstract: "Attach this terminal to a named VM's console; Ctrl-P Ctrl-Q detaches.",
        discussion: "The exit status is 0 after detaching; when the VM exits while attached, its status.")
    @Argument(help: "The VM's name.") var name: String

    static let detachFirst: UInt8 = 0x10    // Ctrl-P
    static let detachSecond: UInt8 = 0x11   // Ctrl-Q

    func run() throws {
        let vm = try NamedVM(name)
        try vm.requireRunning()
        let socket: FileDescriptor
        do {
            socket = try UnixSocket.connect(path: vm.paths.consoleSocket)
        } catch {
            printError("swiftlet: \(name): \(error)")
            throw ExitCode.failure
        }
        defer { try? socket.close() }
        let terminal = RawTerminal()
        defer { terminal.restore() }
        let interactive = RawTerminal.stdinIsTerminal
        if interactive { printError("swiftlet: attached to \(name); Ctrl-P Ctrl-Q detaches\r") }

        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        var stdinOpen = true
        var pendingDetach = false
        while true {
            var fds = [pollfd(fd: socket.rawValue, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: stdinOpen ? STDIN_FILENO : -1, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            if fds[0].revents != 0 {
                let received: Int?
                do { received = try UnixSocket.receive(socket, into: &buffer) } catch { break }   // the VMM has gone
                guard let count = received else { continue }   // nothing after all
                if count == 0 { break }
                writeAll(STDOUT_FILENO, buffer[0..<count])
            }
            if fds[1].revents != 0 {
                let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
                if count <= 0 { stdinOpen = false; continue }   // end of input: keep showing output
                var out: [UInt8] = []
                for byte in buffer[0..<count] {
                    if interactive, pendingDetach {
                        pendingDetach = false
                        if byte == Self.detachSecond {
                            terminal.restore()
                            printError("\nswiftlet: detached from \(name)")
                            return
                        }
                        out.append(Self.detachFirst)
                    }
                    if interactive, byte == Self.detachFirst { pendingDetach = true; continue }
                    out.append(byte)
                }
                sendAll(socket, out[...])
            }
        }
        terminal.restore()
        // The console closed: the VMM is exiting. Its status, once written, is ours (as docker attach).
        _ = vm.waitUntilExited(seconds: 5)
        let status = vm.paths.recordedExitStatus
        printError("\nswiftlet: \(name) exited\(status.map { " with status \($0)" } ?? "")")
        if let status, status != 0 { throw ExitCode(status) }
    }

    private func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) {
        var rest = bytes
        while !rest.isEmpty {
            let written = rest.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { return }
            rest = rest.dropFirst(written)
        }
    }

    private func sendAll(_ socket: FileDescriptor, _ bytes: ArraySlice<UInt8>) {
        var rest = bytes
        while !rest.isEmpty {
            guard let sent = try? UnixSocket.send(socket, rest) else { return }
            if sent == 0 {
                var entry = pollfd(fd: socket.rawValue, events: Int16(POLLOUT), revents: 0)
                _ = poll(&entry, 1, 100)
                continue
            }
            rest = rest.dropFirst(sent)
        }
    }
}
