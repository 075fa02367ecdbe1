#if canImport(Glibc)
import Glibc
#endif
import Logging
import Testing

@testable import SwiftletAPI

/// A minimal HTTP/1.1 client on a Unix socket, written with raw calls so the server is tested the way curl
/// and the Firecracker SDKs reach it (and so malformed requests can be sent at all).
private final class RawClient {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path.utf8) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else { throw ClientError.connectFailed(errno) }
        // A server that never answers fails the test instead of hanging it.
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    enum ClientError: Error { case connectFailed(Int32), closed }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return }
            offset += written
        }
    }

    private var buffered: [UInt8] = []

    /// Reads one response: status code, headers (lowercased names) and body (by Content-Length).
    func readResponse() throws -> (status: Int, headers: [String: String], body: String) {
        func fill() throws {
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw ClientError.closed }
            buffered += chunk[..<count]
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headerEnd: Int?
        while headerEnd == nil {
            if buffered.count >= 4 {
                headerEnd = (0...(buffered.count - 4)).first { Array(buffered[$0..<($0 + 4)]) == separator }
            }
            if headerEnd == nil { try fill() }
        }
        let headText = String(decoding: buffered[..<headerEnd!], as: UTF8.self)
        buffered.removeFirst(headerEnd! + 4)
        var lines = headText.split(separator: "\r\n").map(String.init)
        let statusLine = lines.removeFirst().split(separator: " ")
        let status = Int(statusLine[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines {
            let parts = line.split(separator: ":", maxSplits: 1).map { String($0.drop { $0 == " " }) }
            if parts.count == 2 { headers[parts[0].lowercased()] = parts[1] }
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        while buffered.count < length { try fill() }
        let body = String(decoding: buffered[..<length], as: UTF8.self)
        buffered.removeFirst(length)
        return (status, headers, body)
    }

    /// True when the server has closed the connection (read returns 0).
    func isClosedByServer() -> Bool {
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, 0) == 0
    }
}

private func request(_ method: String, _ path: String, _ body: String = "", keepAlive: Bool = true) -> String {
    var text = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n"
    if !keepAlive { text += "Connection: close\r\n" }
    if !body.isEmpty { text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
    return text + "\r\n" + body
}

/// A server on a fresh socket path, stopped when the test ends.
private struct RunningServer: ~Copyable {
    let api = APIHarness()
    let server: APIServer
    let path: String

    init() throws {
        path = api.directory + "/api.sock"
        var quiet = Logger(label: "api-test")
        quiet.logLevel = .critical
        server = APIServer(socketPath: path, controller: api.controller, logger: quiet)
        try server.start()
    }

    deinit { server.stop() }
}

/// The tests that talk to a real socket block their thread in recv() or on curl; they run one at a time so
/// that they never hold every thread of the (two-core) test machine's concurrency pool at once.
@Suite(.serialized) enum SocketTests {}

extension SocketTests {
@Suite struct ServerTests {
    @Test func answersOverTheSocketWithKeepAlive() throws {
        let running = try RunningServer()
        let client = try RawClient(path: running.path)
        client.send(request("GET", "/"))
        let info = try client.readResponse()
        #expect(info.status == 200)
        #expect(info.headers["content-type"] == "application/json")
        #expect(info.body.contains(#""state":"Not started""#))
        // Same connection, next request: a PUT answered 204 with no body, then an error with a fault message.
        client.send(request("PUT", "/mmds", #"{"k": "v"}"#))
        #expect(try client.readResponse().status == 204)
        client.send(request("GET", "/nothing"))
        let missing = try client.readResponse()
        #expect(missing.status == 400)
        #expect(missing.body == #"{"fault_message":"Invalid request method and/or path: GET nothing."}"#)
    }

    @Test func malformedHTTPGets400AndClose() throws {
        let running = try RunningServer()
        let client = try RawClient(path: running.path)
        client.send("THIS IS NOT HTTP\r\n\r\n")
        #expect(try client.readResponse().status == 400)
        #expect(client.isClosedByServer())
        // The server itself is fine.
        let next = try RawClient(path: running.path)
        next.send(request("GET", "/version"))
        #expect(try next.readResponse().status == 200)
    }

    @Test func oversizeBodyIsRefusedAndTheConnectionStaysUsable() throws {
        let running = try RunningServer()
        let client = try RawClient(path: running.path)
        let body = #"{"big": "\#(String(repeating: "x", count: 60 * 1024))"}"#
        client.send(request("PUT", "/mmds", body))
        let refused = try client.readResponse()
        #expect(refused.status == 400)
        #expect(refused.body.contains("is larger than the limit of 51200 allowed by server."))
        client.send(request("GET", "/mmds"))
        let after = try client.readResponse()
        #expect(after.status == 200)
        #expect(after.body == "{}")
    }

    @Test func twoClientsAtOnce() throws {
        let running = try RunningServer()
        let first = try RawClient(path: running.path), second = try RawClient(path: running.path)
        // The first sends half a request and waits; the second is answered meanwhile.
        let body = #"{"from": "first"}"#
        let whole = Array(request("PUT", "/mmds", body).utf8)
        first.send(Array(whole[..<(whole.count - 5)]))
        second.send(request("GET", "/"))
        #expect(try second.readResponse().status == 200)
        first.send(Array(whole[(whole.count - 5)...]))
        #expect(try first.readResponse().status == 204)
        second.send(request("GET", "/mmds"))
        #expect(try second.readResponse().body == #"{"from":"first"}"#)
    }

    @Test func aClientLeavingMidBodyHarmsNothing() throws {
        let running = try RunningServer()
        do {
            let leaving = try RawClient(path: running.path)
            leaving.send("PUT /mmds HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"partial\": ")
        }   // closed here
        let client = try RawClient(path: running.path)
        client.send(request("PUT", "/mmds", #"{"ok": true}"#))
        #expect(try client.readResponse().status == 204)
        client.send(request("GET", "/mmds"))
        #expect(try client.readResponse().body == #"{"ok":true}"#)
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let running = try RunningServer()
        let client = try RawClient(path: running.path)
        // Three requests in one write: the PUT must be applied before the GET that follows it is answered.
        client.send(request("PUT", "/mmds", #"{"n": 1}"#) + request("GET", "/mmds") + request("GET", "/version"))
        #expect(try client.readResponse().status == 204)
        #expect(try client.readResponse().body == #"{"n":1}"#)
        #expect(try client.readResponse().body.contains("firecracker_version"))
    }

    @Test func connectionCloseIsHonoured() throws {
        let running = try RunningServer()
        let client = try RawClient(path: running.path)
        client.send(request("GET", "/version", keepAlive: false))
        #expect(try client.readResponse().status == 200)
        #expect(client.isClosedByServer())
    }

    @Test func aLiveSocketIsRefusedAndAStaleOneReplaced() throws {
        let running = try RunningServer()
        let second = APIServer(socketPath: running.path, controller: running.api.controller)
        #expect(throws: APIServerError.socketInUse(path: running.path)) { try second.start() }

        // A socket file nobody listens on (a crashed VMM's) is replaced.
        let stalePath = running.api.directory + "/stale.sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: stalePath.utf8) }
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(fd)
        let replacing = APIServer(socketPath: stalePath, controller: running.api.controller)
        try replacing.start()
        defer { replacing.stop() }
        let client = try RawClient(path: stalePath)
        client.send(request("GET", "/"))
        #expect(try client.readResponse().status == 200)

        // A regular file is somebody's data: left alone.
        let regular = running.api.file("not-a-socket")
        #expect(throws: APIServerError.notASocket(path: regular)) { try APIServer(socketPath: regular, controller: running.api.controller).start() }
    }
}
}
