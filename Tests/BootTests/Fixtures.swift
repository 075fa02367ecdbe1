#if canImport(Glibc)
import Glibc
#endif
import Boot
import Testing
import GuestMemory

/// The files scripts/make-boot-fixtures writes into Tests/BootTests/Fixtures, found next to this source
/// file (no test resources needed in Package.swift).
enum Fixture {
    static let directory: String = {
        let thisFile = #filePath
        let folder = thisFile[..<thisFile.lastIndex(of: "/")!]
        return folder + "/Fixtures"
    }()

    static func bytes(_ name: String) -> [UInt8] {
        guard let contents = readFile(directory + "/" + name) else {
            fatalError("fixture \(name) missing: run scripts/make-boot-fixtures")
        }
        return contents
    }
}

/// Reads a whole file, or nil if it cannot be opened.
func readFile(_ path: String) -> [UInt8]? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    fseek(file, 0, SEEK_END)
    let size = ftell(file)
    fseek(file, 0, SEEK_SET)
    var bytes = [UInt8](repeating: 0, count: size)
    let read = bytes.withUnsafeMutableBytes { fread($0.baseAddress, 1, size, file) }
    return read == size ? bytes : nil
}

/// A guest of `mebibytes` MiB laid out as the VMM does it.
func makeGuestMemory(mebibytes: UInt64 = 64) throws -> GuestMemory {
    try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: mebibytes << 20))
}

extension Array where Element == UInt8 {
    /// Little-endian reads for checking structures in tests.
    func u16(_ offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }
    func u32(_ offset: Int) -> UInt32 { UInt32(u16(offset)) | UInt32(u16(offset + 2)) << 16 }
    func u64(_ offset: Int) -> UInt64 { UInt64(u32(offset)) | UInt64(u32(offset + 4)) << 32 }

    mutating func set32(_ value: UInt32, at offset: Int) {
        for index in 0..<4 { self[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }
    mutating func set16(_ value: UInt16, at offset: Int) {
        for index in 0..<2 { self[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }
    mutating func set64(_ value: UInt64, at offset: Int) {
        for index in 0..<8 { self[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }
}

/// The BootError `body` throws, or nil when it succeeds. Lets tests match error cases with `if case`.
/// (Closures are not inferred as `throws(BootError)` yet, so the type is checked here.)
func thrownError<T>(_ body: () throws -> T) -> BootError? {
    do {
        _ = try body()
        return nil
    } catch let error as BootError {
        return error
    } catch {
        Issue.record("threw \(error), which is not a BootError")
        return nil
    }
}
