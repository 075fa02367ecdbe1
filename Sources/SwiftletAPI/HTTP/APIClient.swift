#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore
import NIOHTTP1
import NIOPosix

/// Why a request to a VMM's API socket got no answer.
public enum APIClientError: Error, Equatable, CustomStringConvertible {
    /// Nobody listens on the socket (the VMM has exited, or the path is wrong).
    case cannotConnect(path: String, reason: String)
    /// The VMM accepted the connection but did not answer in time.
    case timedOut(path: String, seconds: Double)
    /// The connection closed before a whole response arrived.
    case incompleteResponse(path: String)

    public var description: String {
        switch self {
        case let .cannotConnect(path, reason): return "cannot connect to the API socket \(path): \(reason)"
        case let .timedOut(path, seconds): return "the API on \(path) did not answer within \(seconds) s"
        case let .incompleteResponse(path): return "the API on \(path) closed the connection before answering"
        }
    }
}

/// A response from the API: the status code and the body's text.
public struct APIClientResponse: Sendable, Equatable {
    public let status: Int
    public let body: String

    /// Firecracker's error shape: `{"fault_message": "..."}`, or the raw body when it is not that.
    public var faultMessage: String {
        guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(body.utf8)),
              case let .string(text)? = object["fault_message"] else { return body }
        return text
    }
}

/// A small HTTP/1.1 client for a VMM's API socket (Swiftlet's or Firecracker's), used by the sandbox commands
/// (`swiftlet ps`, `pause`, `stop` ...). NIOHTTP1 parses the responses; one request per connection, synchronous,
/// with a deadline, on a one-thread event loop group shared by every request of the process.
public enum APIClient {
    private static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Sends one request and waits for its response.
    public static func request(socket path: String, method: String, path uri: String, json body: String? = nil,
                               timeout seconds: Double = 10) throws -> APIClientResponse {
        let promise = group.next().makePromise(of: APIClientResponse.self)
        let bootstrap = ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector(promise: promise, socketPath: path))
                }
            }
        let channel: any Channel
        do {
            channel = try bootstrap.connect(unixDomainSocketPath: path).wait()
        } catch {
            promise.fail(error)
            throw APIClientError.cannotConnect(path: path, reason: Self.reason(error))
        }
        defer { channel.close(promise: nil) }
        let deadline = channel.eventLoop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            promise.fail(APIClientError.timedOut(path: path, seconds: seconds))
        }
        defer { deadline.cancel() }
        var headers = HTTPHeaders([("Host", "localhost"), ("Accept", "application/json")])
        var buffer: ByteBuffer?
        if let body {
            buffer = channel.allocator.buffer(string: body)
            headers.add(name: "Content-Type", value: "application/json")
        }
        headers.add(name: "Content-Length", value: "\(buffer?.readableBytes ?? 0)")
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: uri, headers: headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let buffer { channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        return try promise.futureResult.wait()
    }

    private static func reason(_ error: any Error) -> String {
        if let io = error as? IOError { return "\(io.description)" }
        return "\(error)"
    }
}

/// Collects one response and completes the promise with it (or fails it if the connection ends first).
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<APIClientResponse>
    private let socketPath: String
    private var status: Int?
    private var body: [UInt8] = []

    init(promise: EventLoopPromise<APIClientResponse>, socketPath: String) {
        self.promise = promise
        self.socketPath = socketPath
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head):
            status = Int(head.status.code)
        case var .body(buffer):
            // The API's bodies are small (Firecracker caps requests at 50 KiB); cap what we keep all the same.
            if body.count < 1 << 20, let bytes = buffer.readBytes(length: buffer.readableBytes) { body += bytes }
        case .end:
            promise.succeed(APIClientResponse(status: status ?? 0, body: String(decoding: body, as: UTF8.self)))
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(APIClientError.incompleteResponse(path: socketPath))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.close(promise: nil)
    }
}
