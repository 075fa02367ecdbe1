import CHost
import Foundation
import SystemPackage
import Testing
@testable import Swiftlet
import SwiftletCommandLine

/// The host side of vsock without a guest: `--vsock` values, the device socket (a stale socket replaced, anything
/// else refused, ours removed at teardown), and the Unix streams the device reads and writes.
struct VsockHostTests {
    @Test func parsesCIDAndSocket() throws {
        let vsock = try VsockConfiguration(parsing: "cid=3,socket=/tmp/v.sock")
        #expect(vsock == VsockConfiguration(guestCID: 3, socketPath: "/tmp/v.sock"))
        #expect(try VsockConfiguration(parsing: "socket=/run/a,cid=4294967294").guestCID == 4_294_967_294)
    }

    @Test("bad values are refused with the reason", arguments: [
        ("cid=2,socket=/tmp/v.sock", "at least 3"),
        ("cid=0,socket=/tmp/v.sock", "at least 3"),
        ("cid=4294967295,socket=/tmp/v.sock", "below 4294967295"),
        ("cid=4294967296,socket=/tmp/v.sock", "not a number below 2^32"),
        ("cid=three,socket=/tmp/v.sock", "not a number"),
        ("cid=3", "no host socket"),
        ("socket=/tmp/v.sock", "no guest CID"),
        ("cid=3,socket=", "the socket path is empty"),
        ("cid=3,socket=/tmp/" + String(repeating: "x", count: 100), "longer than 96 bytes"),
        ("cid=3,socket=/tmp/v.sock,port=5", "unknown option 'port'"),
        ("cid", "not key=value"),
    ])
    func refusesBadValues(text: String, reason: String) {
        do {
            _ = try VsockConfiguration(parsing: text)
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
        }
    }

    @Test("validation: a file that is not a socket, or a missing directory, is refused; a stale socket is fine")
    func validatesTheSocketPath() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/not-a-socket"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        #expect(throws: ConfigurationError.self) { try VsockConfiguration(guestCID: 3, socketPath: file).validate() }
        #expect(throws: ConfigurationError.self) { try VsockConfiguration(guestCID: 3, socketPath: directory + "/no/such/v.sock").validate() }
        try VsockConfiguration(guestCID: 3, socketPath: directory + "/v.sock").validate()

        let stale = directory + "/stale.sock"
        let fd = stale.withCString { chost_unix_listen($0, 1) }
        #expect(fd >= 0)
        close(fd)  // the socket file stays behind, as after a crash
        try VsockConfiguration(guestCID: 3, socketPath: stale).validate()
    }

    @Test("the bridge replaces a stale socket, refuses a regular file, and removes its own socket at teardown")
    func bridgeOwnsItsSocket() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/v.sock"
        let fd = path.withCString { chost_unix_listen($0, 1) }
        close(fd)
        do {
            let bridge = try VsockHostBridge(configuration: VsockConfiguration(guestCID: 3, socketPath: path), logger: .init(label: "test"))
            #expect(bridge.device.guestCID == 3)
            // A host program can connect (it waits in the backlog until the guest's driver is up).
            let client = try UnixSocketStream.connect(to: path)
            client.close()
        }
        #expect(!FileManager.default.fileExists(atPath: path), "removed with the bridge")

        let file = directory + "/file"
        _ = FileManager.default.createFile(atPath: file, contents: Data())
        #expect(throws: MachineError.self) {
            _ = try VsockHostBridge(configuration: VsockConfiguration(guestCID: 3, socketPath: file), logger: .init(label: "test"))
        }
        #expect(FileManager.default.fileExists(atPath: file), "somebody's file is left alone")
    }

    @Test("Unix streams: nothing yet is nil, end of file is empty, a vanished peer is an error (not SIGPIPE), no listener throws")
    func unixStreams() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/l.sock"
        #expect(throws: Errno.noSuchFileOrDirectory) { _ = try UnixSocketStream.connect(to: path) }
        let listener = path.withCString { chost_unix_listen($0, 4) }
        defer { close(listener) }
        let client = try UnixSocketStream.connect(to: path)
        let accepted = chost_accept_nonblocking(listener)
        #expect(accepted >= 0)
        let server = UnixSocketStream(descriptor: accepted)

        #expect(try server.read(maximumCount: 16) == nil)
        #expect(try client.write(Array("hello".utf8)[...]) == 5)
        #expect(try server.read(maximumCount: 3) == Array("hel".utf8))
        #expect(try server.read(maximumCount: 16) == Array("lo".utf8))

        // A full socket takes what fits and then reports 0 instead of blocking.
        let big = [UInt8](repeating: 1, count: 1 << 20)
        var total = 0
        while true {
            let written = try client.write(big[...])
            if written == 0 { break }
            total += written
        }
        #expect(total > 0 && total < 64 << 20)

        client.shutdownWrite()
        var drained = 0
        while let bytes = try server.read(maximumCount: 65536), !bytes.isEmpty { drained += bytes.count }
        #expect(drained == total, "then end of file")

        server.close()
        #expect(server.pollDescriptor == nil)
        #expect(throws: Errno.brokenPipe) {
            for _ in 0..<4 { _ = try client.write(Array("x".utf8)[...]) }
        }
    }

    private func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-vsock-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
