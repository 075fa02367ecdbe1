import Logging
import NIOCore
import NIOHTTP1

/// One connection's HTTP/1.1 requests: collects a request's body (up to `APIRouter.maximumBodySize`), hands
/// the request to the controller, writes the answer. Runs on the API's event loop thread only.
///
/// NIO's `HTTPServerPipelineHandler` in front of it holds back a pipelined second request until the first is
/// answered, and `HTTPServerProtocolErrorHandler` answers malformed HTTP with 400 and closes.
final class APIHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let controller: APIController
    private let logger: Logger
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// Bytes of the current body seen so far, kept or not.
    private var bodyLength = 0
    /// The body is over the limit: its bytes are read and dropped, so the connection stays usable and the
    /// client reads its 400 instead of a reset.
    private var discarding = false

    init(controller: APIController, logger: Logger) {
        self.controller = controller
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(requestHead):
            head = requestHead
            body = []
            bodyLength = 0
            let declared = requestHead.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
            discarding = declared > APIRouter.maximumBodySize
            if discarding { bodyLength = declared }
            // curl sends `Expect: 100-continue` before a body over 1 KiB and waits a second for the go-ahead;
            // micro_http gives it, so answer at once rather than make every such request a second slower.
            if requestHead.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                let proceed = HTTPResponseHead(version: requestHead.version, status: .continue)
                context.writeAndFlush(wrapOutboundOut(.head(proceed)), promise: nil)
            }
        case let .body(buffer):
            if discarding {
                if head?.headers.first(name: "content-length") == nil { bodyLength += buffer.readableBytes }
                return
            }
            bodyLength += buffer.readableBytes
            if bodyLength > APIRouter.maximumBodySize {
                discarding = true
                body = []
            } else {
                body.append(contentsOf: buffer.readableBytesView)
            }
        case .end:
            guard let requestHead = head else { return }
            head = nil
            let keepAlive = requestHead.isKeepAlive
            if discarding {
                let fault = APIFault.payloadTooLarge(size: bodyLength, limit: APIRouter.maximumBodySize)
                respond(context: context, response: APIResponse(fault: fault), keepAlive: keepAlive)
                return
            }
            let requestBody = body
            body = []
            // This thread is the controller's executor (APIServer binds on `controller.eventLoop`), so the
            // request goes to the actor directly and the answer comes back here.
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
            controller.assumeIsolated { controller in
                controller.submit(method: requestHead.method.rawValue, path: requestHead.uri, body: requestBody) { response in
                    bound.value.handler.respond(context: bound.value.context, response: response, keepAlive: keepAlive)
                }
            }
        }
    }

    private func respond(context: ChannelHandlerContext, response: APIResponse, keepAlive: Bool) {
        guard context.channel.isActive else { return }   // the client left before its answer was ready
        var headers = HTTPHeaders()
        headers.add(name: "Server", value: "Firecracker API")   // what micro_http sends
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        if !response.body.isEmpty { headers.add(name: "Content-Type", value: "application/json") }
        if response.status != 204 { headers.add(name: "Content-Length", value: String(response.body.count)) }
        let status = HTTPResponseStatus(statusCode: response.status)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Malformed HTTP was already answered by HTTPServerProtocolErrorHandler; anything else (a reset
        // connection) only ends this connection.
        logger.debug("API connection closed after an error: \(error)")
        context.close(promise: nil)
    }
}
