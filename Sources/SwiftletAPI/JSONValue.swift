#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Any JSON value. MMDS stores whatever a client PUTs, so it cannot be a fixed Codable struct; the unknown-field
/// check also reads request bodies through it.
public enum JSONValue: Sendable, Equatable, Codable {
    case null
    case bool(Bool)
    /// Integers are kept apart from doubles so that a stored 12345678901234 comes back exactly as sent.
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(value): try container.encode(value)
        case let .int(value): try container.encode(value)
        case let .double(value): try container.encode(value)
        case let .string(value): try container.encode(value)
        case let .array(value): try container.encode(value)
        case let .object(value): try container.encode(value)
        }
    }

    /// RFC 7396 JSON Merge Patch, as Firecracker applies `PATCH /mmds`: an object patch merges key by key, a
    /// `null` member removes that key, and any other patch value replaces the target outright.
    public func merging(patch: JSONValue) -> JSONValue {
        guard case let .object(members) = patch else { return patch }
        var result: [String: JSONValue]
        if case let .object(existing) = self { result = existing } else { result = [:] }
        for (key, value) in members {
            if value == .null {
                result[key] = nil
            } else {
                result[key] = (result[key] ?? .null).merging(patch: value)
            }
        }
        return .object(result)
    }
}
