#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A request body Firecracker would refuse, with the reason worded the way serde words it (field names in
/// backticks), so that a client's log reads the same against either VMM.
struct BodyError: Error, Equatable {
    var detail: String
}

/// Any JSON object key, for listing what a body really contains.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// Dotted path of a field for error messages: `rate_limiter.bandwidth.size`, `drives[1].drive_id`.
func fieldPath(_ path: [CodingKey]) -> String {
    var text = ""
    for key in path {
        if let index = key.intValue, key.stringValue == String(index) || key.stringValue.hasPrefix("Index") {
            text += "[\(index)]"
        } else {
            text += text.isEmpty ? key.stringValue : "." + key.stringValue
        }
    }
    return text
}

extension Decoder {
    /// The keyed container, after refusing any key `Keys` does not list: Firecracker's request types carry
    /// serde's `deny_unknown_fields`, so a misspelt field is an error rather than silently ignored.
    func strictContainer<Keys: CodingKey & CaseIterable>(keyedBy keys: Keys.Type) throws -> KeyedDecodingContainer<Keys> {
        let everything = try container(keyedBy: AnyCodingKey.self)
        let known = Keys.allCases.map(\.stringValue)
        if let unknown = everything.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            let name = fieldPath(codingPath + [AnyCodingKey(stringValue: unknown)])
            throw BodyError(detail: "unknown field `\(name)`, expected one of \(known.map { "`\($0)`" }.joined(separator: ", "))")
        }
        return try container(keyedBy: Keys.self)
    }
}

extension KeyedDecodingContainer {
    /// An integer field, range-checked here rather than by JSONDecoder, whose out-of-range error does not say
    /// which field it was.
    func decodeInteger<T: FixedWidthInteger>(_ type: T.Type, forKey key: Key) throws -> T {
        let wide = try decode(Int64.self, forKey: key)
        guard let value = T(exactly: wide) else {
            throw BodyError(detail: "invalid value for `\(fieldPath(codingPath + [key]))`: integer `\(wide)`, expected \(T.min) to \(T.max)")
        }
        return value
    }

    func decodeIntegerIfPresent<T: FixedWidthInteger>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard contains(key), try !decodeNil(forKey: key) else { return nil }
        return try decodeInteger(type, forKey: key)
    }
}

/// A string-valued enum that Firecracker spells as a serde unit variant (`"Unsafe"`, `"InstanceStart"`).
public protocol WireEnum: RawRepresentable<String>, CaseIterable, Codable {}

extension WireEnum {
    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(rawValue: text) else {
            let expected = Self.allCases.map { "`\($0.rawValue)`" }.joined(separator: ", ")
            throw BodyError(detail: "unknown variant `\(text)` for `\(fieldPath(decoder.codingPath))`, expected one of \(expected)")
        }
        self = value
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

enum WireJSON {
    /// Firecracker's prefix for every body it could not deserialize (`RequestError::SerdeJson`).
    static let deserializePrefix = "An error occurred when deserializing the json body of a request: "

    static func decoder() -> JSONDecoder { JSONDecoder() }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        // Sorted keys: the same bytes for the same value (serde_json's Value is a BTreeMap, also sorted), and
        // paths stay readable.
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// Decodes `T` from a request body; any failure becomes the fault Firecracker gives for it.
    static func decode<T: Decodable>(_ type: T.Type, from body: [UInt8]) throws(APIFault) -> T {
        do {
            return try decoder().decode(T.self, from: Data(body))
        } catch {
            throw APIFault(message: deserializePrefix + describe(error) + ".")
        }
    }

    /// Words a decoding failure the way serde does, naming the field.
    static func describe(_ error: any Error) -> String {
        if let error = error as? BodyError { return error.detail }
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case let .keyNotFound(key, context):
            return "missing field `\(fieldPath(context.codingPath + [key]))`"
        case let .typeMismatch(type, context):
            let field = fieldPath(context.codingPath)
            return field.isEmpty ? "invalid type: expected \(expectation(type))" : "invalid type for `\(field)`: expected \(expectation(type))"
        case let .valueNotFound(type, context):
            return "invalid type for `\(fieldPath(context.codingPath))`: null, expected \(expectation(type))"
        case let .dataCorrupted(context):
            let field = fieldPath(context.codingPath)
            // swift-foundation's JSONDecoder also reports a number too large for its type this way.
            if field.isEmpty { return "the body is not valid JSON, or holds a number too large" }
            return "invalid value for `\(field)`: \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    private static func expectation(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is UInt8.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type, is Int.Type, is Int64.Type: return "an integer"
        case is Double.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") || name.contains("KeyedDecodingContainer") { return "an object" }
            return name
        }
    }
}
