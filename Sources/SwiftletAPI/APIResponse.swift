#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A refused request: Firecracker answers every error with a status (400, or 413 for MMDS data that does not
/// fit) and `{"fault_message": "..."}`.
public struct APIFault: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: Int
    public var message: String

    public init(status: Int = 400, message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }

    // The texts below are Firecracker's own (`parsed_request.rs`, `rpc_interface.rs`), so a client that shows
    // or matches them behaves the same against Swiftlet.
    static let notSupportedPostBoot = APIFault(message: "The requested operation is not supported after starting the microVM.")
    static let notSupportedPreBoot = APIFault(message: "The requested operation is not supported before starting the microVM.")
    static let emptyID = APIFault(message: "The ID cannot be empty.")
    static let invalidID = APIFault(message: "API Resource IDs can only contain alphanumeric characters and underscores.")
    static let getWithBody = APIFault(message: "GET request cannot have a body.")
    static let emptyPUT = APIFault(message: "Empty PUT request.")
    static let emptyPATCH = APIFault(message: "Empty PATCH request.")

    static func invalidPathMethod(_ method: String, _ path: String) -> APIFault {
        APIFault(message: "Invalid request method and/or path: \(method) \(path).")
    }

    /// Firecracker resources Swiftlet does not have yet; said plainly rather than a generic "invalid path", so
    /// a user knows the request was understood.
    static func notImplemented(_ method: String, _ path: String) -> APIFault {
        APIFault(message: "\(method) \(path) is not implemented in this version of Swiftlet.")
    }

    /// micro_http's text for a body over the server's limit.
    static func payloadTooLarge(size: Int, limit: Int) -> APIFault {
        APIFault(message: "Request payload with size \(size) is larger than the limit of \(limit) allowed by server.")
    }
}

/// What the API answers: a status and, for 200 and errors, a JSON body.
public struct APIResponse: Equatable, Sendable {
    public var status: Int
    public var body: [UInt8]

    public init(status: Int, body: [UInt8] = []) {
        self.status = status
        self.body = body
    }

    /// 204: a PUT or PATCH that was applied.
    public static let noContent = APIResponse(status: 204)

    public static func json<T: Encodable>(_ value: T) -> APIResponse {
        do {
            return APIResponse(status: 200, body: Array(try WireJSON.encoder().encode(value)))
        } catch {
            return APIResponse(fault: APIFault(message: "cannot encode the response: \(error)"))
        }
    }

    public init(fault: APIFault) {
        let body = (try? WireJSON.encoder().encode(["fault_message": fault.message])).map(Array.init) ?? []
        self.init(status: fault.status, body: body)
    }

    /// The body as text (tests, logs).
    public var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed back, or nil if there is none.
    public var json: JSONValue? { body.isEmpty ? nil : try? JSONDecoder().decode(JSONValue.self, from: Data(body)) }

    /// `fault_message` of an error response.
    public var faultMessage: String? {
        guard case let .object(members)? = json, case let .string(message)? = members["fault_message"] else { return nil }
        return message
    }
}
