import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The container of a snapshot's `state` file (docs/snapshots.md): a header, named sections, a CRC-32 trailer.
///
///     offset  size  field
///     0       8     magic "SWLTSNAP"
///     8       4     format version (little-endian), 2 today (1: every section JSON)
///     12      4     section count
///     16      8     file length, trailer included
///     24      8     reserved, 0
///     32      ...   sections, each: name length (u16), name (ASCII), payload length (u64), payload
///     end-4   4     CRC-32 (IEEE) of every byte before it
///
/// Reading treats every field as untrusted: lengths and counts are checked against what is left of the file
/// before anything is sliced, and the file's size is bounded before it is read at all.
struct SnapshotFile: Equatable {
    static let magic: [UInt8] = Array("SWLTSNAP".utf8)
    /// The version this Swiftlet writes and the newest it reads. Version 2 (2026-12-04) encodes the sections
    /// a restore always reads in binary (SectionCoding.swift); version 1 files, all JSON, are still read.
    static let formatVersion: UInt32 = 2
    static let headerSize = 32
    static let trailerSize = 4
    /// A state file holds registers and device state, never guest RAM: 64 MiB is far beyond any real one.
    static let maximumSize = 64 << 20
    static let maximumSections = 4096
    static let maximumNameLength = 64

    struct Section: Equatable {
        var name: String
        var payload: [UInt8]
    }

    var version: UInt32 = formatVersion
    var sections: [Section] = []

    init() {}

    func section(named name: String) -> Section? { sections.first { $0.name == name } }

    // MARK: Encoding

    func encoded() -> [UInt8] {
        var body: [UInt8] = []
        for section in sections {
            let name = Array(section.name.utf8)
            precondition(!name.isEmpty && name.count <= Self.maximumNameLength, "section name \(section.name)")
            Self.append(UInt16(name.count), to: &body)
            body += name
            Self.append(UInt64(section.payload.count), to: &body)
            body += section.payload
        }
        var bytes = Self.magic
        Self.append(version, to: &bytes)
        Self.append(UInt32(sections.count), to: &bytes)
        Self.append(UInt64(Self.headerSize + body.count + Self.trailerSize), to: &bytes)
        Self.append(UInt64(0), to: &bytes)
        bytes += body
        Self.append(CRC32.checksum(bytes), to: &bytes)
        return bytes
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes += $0 }
    }

    // MARK: Decoding

    /// Parses `bytes` read from `path` (named in every error). The checks, in order: the magic (a foreign
    /// file), the version (a newer Swiftlet's file), the declared length (a truncated file), the checksum (a
    /// corrupted one), then each section's bounds.
    init(decoding bytes: [UInt8], path: String) throws(SnapshotError) {
        guard bytes.count >= Self.magic.count, Array(bytes[0..<Self.magic.count]) == Self.magic else {
            throw .notASnapshot(path: path, reason: bytes.count < Self.magic.count
                ? "it is \(bytes.count) bytes, shorter than the magic" : "it does not start with the magic \"SWLTSNAP\"")
        }
        guard bytes.count >= Self.headerSize + Self.trailerSize else {
            throw .truncated(path: path, actual: UInt64(bytes.count), expected: UInt64(Self.headerSize + Self.trailerSize))
        }
        var reader = ByteReader(bytes: bytes, offset: Self.magic.count)
        let version: UInt32 = reader.integer()!
        guard version <= Self.formatVersion else {
            throw .newerVersion(path: path, version: version, supported: Self.formatVersion)
        }
        guard version >= 1 else { throw .malformed(path: path, reason: "format version 0 does not exist") }
        let sectionCount: UInt32 = reader.integer()!
        let declaredLength: UInt64 = reader.integer()!
        _ = reader.integer() as UInt64?
        guard UInt64(bytes.count) >= declaredLength else {
            throw .truncated(path: path, actual: UInt64(bytes.count), expected: declaredLength)
        }
        guard UInt64(bytes.count) == declaredLength else {
            throw .malformed(path: path, reason: "\(UInt64(bytes.count) - declaredLength) bytes follow the declared end of the file")
        }
        var trailer = ByteReader(bytes: bytes, offset: bytes.count - Self.trailerSize)
        let stored: UInt32? = trailer.integer()
        let computed = CRC32.checksum(bytes[0..<(bytes.count - Self.trailerSize)])
        guard stored == computed else {
            throw .checksumMismatch(path: path, stored: stored ?? 0, computed: computed)
        }
        guard sectionCount <= Self.maximumSections else {
            throw .malformed(path: path, reason: "\(sectionCount) sections exceed the limit of \(Self.maximumSections)")
        }
        reader.end = bytes.count - Self.trailerSize
        var sections: [Section] = []
        for index in 0..<Int(sectionCount) {
            guard let nameLength: UInt16 = reader.integer(), nameLength > 0, Int(nameLength) <= Self.maximumNameLength,
                  let name = reader.bytes(Int(nameLength)),
                  let payloadLength: UInt64 = reader.integer(), payloadLength <= UInt64(reader.remaining),
                  let payload = reader.bytes(Int(payloadLength)) else {
                throw .malformed(path: path, reason: "section \(index) runs past the end of the file or has a bad name length")
            }
            guard name.allSatisfy({ $0 >= 0x21 && $0 < 0x7F }) else {
                throw .malformed(path: path, reason: "section \(index) has a name that is not printable ASCII")
            }
            let text = String(decoding: name, as: UTF8.self)
            guard !sections.contains(where: { $0.name == text }) else {
                throw .malformed(path: path, reason: "section \"\(text)\" appears twice")
            }
            sections.append(Section(name: text, payload: payload))
        }
        guard reader.remaining == 0 else {
            throw .malformed(path: path, reason: "\(reader.remaining) bytes after the last section")
        }
        self.version = version
        self.sections = sections
    }

    /// Reads and parses the file at `path`, refusing one larger than `maximumSize` before reading it.
    static func read(path: String) throws(SnapshotError) -> SnapshotFile {
        let fd: FileDescriptor
        do { fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) } catch {
            throw .unreadable(path: path, reason: "\((error as? Errno) ?? .ioError)")
        }
        defer { try? fd.close() }
        var info = stat()
        guard fstat(fd.rawValue, &info) == 0 else { throw .unreadable(path: path, reason: "\(Errno(rawValue: errno))") }
        guard info.st_size <= maximumSize else {
            throw .malformed(path: path, reason: "it is \(info.st_size) bytes; a state file is at most \(maximumSize)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(max(info.st_size, 0)))
        var done = 0
        while done < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.read(fd.rawValue, $0.baseAddress! + done, $0.count - done) }
            if count < 0, errno == EINTR { continue }
            if count < 0 { throw .unreadable(path: path, reason: "\(Errno(rawValue: errno))") }
            if count == 0 { break }
            done += count
        }
        return try SnapshotFile(decoding: Array(bytes.prefix(done)), path: path)
    }

    /// Writes the file to `path` through a temporary name in the same directory and a rename, so a reader
    /// (or a crash) never sees half a file, and an existing file is replaced, never written into.
    func write(path: String) throws(SnapshotError) {
        try Self.writeAtomically(encoded(), to: path)
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(SnapshotError) {
        let temporary = path + ".partial"
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(temporary), .writeOnly, options: [.create, .truncate, .closeOnExec],
                                         permissions: [.ownerReadWrite])
        } catch {
            throw .writeFailed(path: temporary, reason: "\((error as? Errno) ?? .ioError)")
        }
        do {
            _ = try fd.writeAll(bytes)
            try fd.close()
        } catch {
            try? fd.close()
            unlink(temporary)
            throw .writeFailed(path: temporary, reason: "\(error)")
        }
        guard rename(temporary, path) == 0 else {
            let error = Errno(rawValue: errno)
            unlink(temporary)
            throw .writeFailed(path: path, reason: "rename: \(error)")
        }
    }
}

/// Little-endian integers and byte runs out of an untrusted buffer; every read is bounds-checked and returns nil
/// past `end`.
struct ByteReader {
    let bytes: [UInt8]
    var offset: Int
    var end: Int

    init(bytes: [UInt8], offset: Int) {
        self.bytes = bytes
        self.offset = offset
        end = bytes.count
    }

    var remaining: Int { max(end - offset, 0) }

    mutating func integer<T: FixedWidthInteger>() -> T? {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { return nil }
        var value: T = 0
        for index in 0..<size { value |= T(bytes[offset + index]) << (8 * index) }
        offset += size
        return value
    }

    mutating func bytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }
}
