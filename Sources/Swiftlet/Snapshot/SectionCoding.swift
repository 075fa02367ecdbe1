/// The binary encoding of a state file's sections (format version 2, docs/snapshots.md "Section payloads").
///
/// Version 1 wrote every section as JSON; reading that back cold (Foundation's JSONDecoder, base64 of the kernel
/// structs, the Codable machinery's first use of each type) was the largest part of a restore. The sections a
/// restore always reads — machine, memory, vm, each vCPU and the legacy devices — are now written field by field in
/// a fixed order, each type's `write(to:)` and `init(from:)` side by side so the two cannot drift apart. Sections
/// whose shape is large and still changing (the virtio devices, a Linux guest's configuration) stay JSON.
///
/// Encoding: integers little-endian at their own width; Bool one byte, 0 or 1; byte runs and strings a u32 length
/// then the bytes (strings UTF-8); optionals one byte, 0 absent or 1 present, then the value; arrays a u32 count
/// then the elements. A reader takes every length and count as untrusted: each is checked against the bytes left
/// before anything is allocated, and a section must be used up exactly.
protocol BinarySnapshotSection: Codable {
    func write(to writer: inout SectionWriter)
    init(from reader: inout SectionReader) throws(SectionDecodingError)
}

/// Why a binary section could not be read (it becomes `SnapshotError.invalidSection`, which names file and section).
struct SectionDecodingError: Error, Equatable, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

struct SectionWriter {
    private(set) var bytes: [UInt8] = []

    mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }

    mutating func write(bytes run: some Collection<UInt8>) {
        write(UInt32(run.count))
        bytes += run
    }

    mutating func write(_ string: String) { write(bytes: Array(string.utf8)) }

    mutating func write(_ strings: [String]) {
        write(UInt32(strings.count))
        for string in strings { write(string) }
    }

    mutating func write<T>(optional value: T?, _ body: (inout SectionWriter, T) -> Void) {
        write(value != nil)
        if let value { body(&self, value) }
    }

    mutating func write<T: FixedWidthInteger>(optional value: T?) { write(optional: value) { $0.write($1) } }

    mutating func write(optional value: String?) { write(optional: value) { $0.write($1) } }
}

struct SectionReader {
    private var reader: ByteReader

    init(_ bytes: [UInt8]) { reader = ByteReader(bytes: bytes, offset: 0) }

    mutating func integer<T: FixedWidthInteger>(_ what: String) throws(SectionDecodingError) -> T {
        guard let value: T = reader.integer() else { throw SectionDecodingError(reason: "it ends in the middle of \(what)") }
        return value
    }

    mutating func bool(_ what: String) throws(SectionDecodingError) -> Bool {
        switch try integer(what) as UInt8 {
        case 0: return false
        case 1: return true
        case let other: throw SectionDecodingError(reason: "\(what) is \(other), not 0 or 1")
        }
    }

    mutating func bytes(_ what: String) throws(SectionDecodingError) -> [UInt8] {
        let count: UInt32 = try integer(what)
        guard let run = reader.bytes(Int(count)) else {
            throw SectionDecodingError(reason: "\(what) says \(count) bytes, more than the \(reader.remaining) left")
        }
        return run
    }

    mutating func string(_ what: String) throws(SectionDecodingError) -> String {
        let run = try bytes(what)
        guard let string = String(validating: run, as: UTF8.self) else {
            throw SectionDecodingError(reason: "\(what) is not UTF-8")
        }
        return string
    }

    mutating func strings(_ what: String) throws(SectionDecodingError) -> [String] {
        let count = try count(what, minimumElementSize: 4)
        var strings: [String] = []
        strings.reserveCapacity(count)
        for _ in 0..<count { strings.append(try string(what)) }
        return strings
    }

    mutating func optional<T>(_ what: String, _ body: (inout SectionReader) throws(SectionDecodingError) -> T) throws(SectionDecodingError) -> T? {
        try bool("whether \(what) is present") ? try body(&self) : nil
    }

    mutating func optionalInteger<T: FixedWidthInteger>(_ what: String) throws(SectionDecodingError) -> T? {
        try optional(what) { reader throws(SectionDecodingError) in try reader.integer(what) }
    }

    mutating func optionalString(_ what: String) throws(SectionDecodingError) -> String? {
        try optional(what) { reader throws(SectionDecodingError) in try reader.string(what) }
    }

    /// An array's element count, refused when that many elements of at least `minimumElementSize` bytes cannot
    /// fit in what is left (so a forged count cannot make the reader reserve memory).
    mutating func count(_ what: String, minimumElementSize: Int) throws(SectionDecodingError) -> Int {
        let count: UInt32 = try integer("the count of \(what)")
        guard UInt64(count) * UInt64(max(minimumElementSize, 1)) <= UInt64(reader.remaining) else {
            throw SectionDecodingError(reason: "\(count) \(what) cannot fit in the \(reader.remaining) bytes left")
        }
        return Int(count)
    }

    /// Every byte must have been read: a longer section is not one this version wrote.
    func finish() throws(SectionDecodingError) {
        guard reader.remaining == 0 else { throw SectionDecodingError(reason: "\(reader.remaining) bytes follow its last field") }
    }
}
