/// The primitive encodings of the protocol: big-endian integers, length-prefixed bytes and UTF-8 strings.
/// The reader never traps: every read checks what is left and throws a `FrameError` instead.
struct WireWriter {
    var bytes: [UInt8] = []

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { bytes.append(UInt8(value >> 8)); bytes.append(UInt8(truncatingIfNeeded: value)) }
    mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }
    mutating func u64(_ value: UInt64) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
    mutating func i32(_ value: Int32) { u32(UInt32(bitPattern: value)) }
    mutating func i64(_ value: Int64) { u64(UInt64(bitPattern: value)) }
    mutating func blob(_ value: [UInt8]) { u32(UInt32(value.count)); bytes.append(contentsOf: value) }
    mutating func string(_ value: String) { blob(Array(value.utf8)) }
    mutating func strings(_ values: [String]) { u32(UInt32(values.count)); for value in values { string(value) } }
}

struct WireReader {
    private let bytes: ArraySlice<UInt8>
    private var position: Int

    init(_ bytes: ArraySlice<UInt8>) { (self.bytes, position) = (bytes, bytes.startIndex) }

    var isAtEnd: Bool { position == bytes.endIndex }

    private mutating func take(_ count: Int, _ field: String) throws(FrameError) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.endIndex - position >= count else { throw .truncated(field: field) }
        defer { position += count }
        return bytes[position..<position + count]
    }

    private mutating func integer(_ width: Int, _ field: String) throws(FrameError) -> UInt64 {
        var value: UInt64 = 0
        for byte in try take(width, field) { value = value << 8 | UInt64(byte) }
        return value
    }

    mutating func u8(_ field: String) throws(FrameError) -> UInt8 { UInt8(try integer(1, field)) }
    mutating func u16(_ field: String) throws(FrameError) -> UInt16 { UInt16(try integer(2, field)) }
    mutating func u32(_ field: String) throws(FrameError) -> UInt32 { UInt32(try integer(4, field)) }
    mutating func u64(_ field: String) throws(FrameError) -> UInt64 { try integer(8, field) }
    mutating func i32(_ field: String) throws(FrameError) -> Int32 { Int32(bitPattern: try u32(field)) }
    mutating func i64(_ field: String) throws(FrameError) -> Int64 { Int64(bitPattern: try u64(field)) }

    mutating func blob(_ field: String, maximum: Int = AgentProtocol.maximumFrameBody) throws(FrameError) -> [UInt8] {
        let count = try u32(field)
        guard count <= maximum else { throw .tooLong(field: field, length: UInt64(count), maximum: maximum) }
        return Array(try take(Int(count), field))
    }

    /// UTF-8 without NUL bytes: every string becomes a C string in the guest (a path, an argument).
    mutating func string(_ field: String) throws(FrameError) -> String {
        let raw = try blob(field, maximum: AgentProtocol.maximumString)
        guard !raw.contains(0) else { throw .invalidString(field: field) }
        guard let value = String(validating: raw, as: UTF8.self) else { throw .invalidString(field: field) }
        return value
    }

    mutating func strings(_ field: String) throws(FrameError) -> [String] {
        let count = try u32(field)
        guard count <= AgentProtocol.maximumStrings else {
            throw .tooLong(field: field, length: UInt64(count), maximum: AgentProtocol.maximumStrings)
        }
        var values: [String] = []
        for _ in 0..<count { values.append(try string(field)) }
        return values
    }
}

/// Why bytes from the other side are not a valid frame. Every case ends the connection.
public enum FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    case frameTooLong(length: UInt32)
    case emptyFrame
    case unknownType(UInt8)
    case truncated(field: String)
    case trailingBytes(type: UInt8, count: Int)
    case tooLong(field: String, length: UInt64, maximum: Int)
    case invalidString(field: String)
    case invalidValue(field: String, value: UInt64)
    /// The stream ended inside a frame.
    case endOfStreamInFrame(have: Int)

    public var description: String {
        switch self {
        case let .frameTooLong(length): "frame of \(length) bytes is longer than the limit \(AgentProtocol.maximumFrameBody)"
        case .emptyFrame: "empty frame (no message type)"
        case let .unknownType(type): "unknown message type \(type)"
        case let .truncated(field): "frame ends inside \(field)"
        case let .trailingBytes(type, count): "\(count) bytes after the end of message type \(type)"
        case let .tooLong(field, length, maximum): "\(field) of \(length) is over the limit \(maximum)"
        case let .invalidString(field): "\(field) is not UTF-8 without NUL bytes"
        case let .invalidValue(field, value): "\(field) has the invalid value \(value)"
        case let .endOfStreamInFrame(have): "the connection ended inside a frame (\(have) bytes of it received)"
        }
    }
}
