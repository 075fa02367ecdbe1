import Foundation
import SystemPackage
import Testing
@testable import Virtio

/// The socket files our listeners create are removed when the machine stops, and only while they are still ours.
@Suite("owned socket file")
struct OwnedSocketFileTests {
    @Test("a listening link's socket file is removed by remove(); a second remove() does nothing")
    func removesItsOwnSocket() throws {
        let path = try SocketNetworkLinkTests.temporaryPath("own.sock")
        let link = try SocketNetworkLink(listeningOn: path)
        let file = try #require(link.socketFile)
        #expect(FileManager.default.fileExists(atPath: path))
        file.remove()
        #expect(!FileManager.default.fileExists(atPath: path))
        file.remove()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a file put at the path since (another listener's socket, a regular file) is left alone")
    func leavesSomebodyElsesFileAlone() throws {
        let path = try SocketNetworkLinkTests.temporaryPath("other.sock")
        let first = try UnixSocket.listen(path: path)
        // Kept open to the end, so that its inode stays taken and the new files cannot reuse its number.
        defer { try? first.close() }
        let file = try #require(OwnedSocketFile(path: path))
        // Another process replaced our socket with its own listener.
        unlink(path)
        let second = try UnixSocket.listen(path: path)
        defer { try? second.close() }
        file.remove()
        #expect(FileManager.default.fileExists(atPath: path), "the new listener's socket stays")

        unlink(path)
        FileManager.default.createFile(atPath: path, contents: Data("data".utf8))
        file.remove()
        #expect(FileManager.default.fileExists(atPath: path), "a regular file stays")
        #expect(OwnedSocketFile(path: path) == nil, "a regular file is not a socket file")
    }
}
