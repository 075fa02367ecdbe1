import Foundation
import GuestMemory
import Testing

/// GuestMemory's snapshot files without KVM: the sparse write and the copy-on-write mapping back.
struct SnapshotMemoryFileTests {
    static func path() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-memfile-\(UUID().uuidString)").path
    }

    @Test("only non-zero pages are written; mapped back, RAM reads the same, and guest writes never reach the file")
    func sparseWriteAndCopyOnWriteMapping() throws {
        let ranges = [(start: GuestAddress(0), size: UInt64(64 << 20))]
        let memory = try GuestMemory(ranges: ranges)
        try memory.write([1, 2, 3, 4], at: GuestAddress(0x1000))
        try memory.store(UInt64(0xDEAD_BEEF), at: GuestAddress(0x300_0000))
        try memory.store(UInt8(0), at: GuestAddress(0x200_0000))  // touched but zero: still a hole
        let path = Self.path()
        let result = try memory.writeSparse(to: path)
        #expect(result.fileSize == 64 << 20)
        #expect(result.bytesWritten == 2 * 4096)
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(info.st_size == 64 << 20)
        #expect(Int(info.st_blocks) * 512 <= 64 << 10, "holes take no space")
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        let mapped = try GuestMemory(ranges: ranges, mappingFile: path)
        #expect(try mapped.read(at: GuestAddress(0x1000), count: 4) == [1, 2, 3, 4])
        #expect(try mapped.load(UInt64.self, at: GuestAddress(0x300_0000)) == 0xDEAD_BEEF)
        #expect(try mapped.load(UInt64.self, at: GuestAddress(0x200_0000)) == 0)
        try mapped.store(UInt64(42), at: GuestAddress(0x1000))
        try mapped.store(UInt64(7), at: GuestAddress(0x10_0000))
        let other = try GuestMemory(ranges: ranges, mappingFile: path)
        #expect(try other.read(at: GuestAddress(0x1000), count: 4) == [1, 2, 3, 4], "a second mapping sees the file, not the first's writes")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the file is unchanged")

        // Saving a file-backed memory writes its current contents (file pages and private copies alike).
        let second = Self.path()
        let again = try mapped.writeSparse(to: second)
        #expect(again.bytesWritten == 3 * 4096)
        let reread = try GuestMemory(ranges: ranges, mappingFile: second)
        #expect(try reread.load(UInt64.self, at: GuestAddress(0x1000)) == 42)
        #expect(try reread.load(UInt64.self, at: GuestAddress(0x300_0000)) == 0xDEAD_BEEF)
    }

    @Test("a memory file of the wrong size, or missing, is refused with its path")
    func wrongSizeRefused() throws {
        let path = Self.path()
        FileManager.default.createFile(atPath: path, contents: Data(count: 4096))
        #expect(throws: GuestMemoryError.fileSizeMismatch(path: path, expected: 8192, actual: 4096)) {
            _ = try GuestMemory(ranges: [(GuestAddress(0), 8192)], mappingFile: path)
        }
        #expect(throws: GuestMemoryError.file(path: path + ".missing", operation: "open", errno: .noSuchFileOrDirectory)) {
            _ = try GuestMemory(ranges: [(GuestAddress(0), 4096)], mappingFile: path + ".missing")
        }
        #expect(throws: GuestMemoryError.self) { _ = try GuestMemory(ranges: [(GuestAddress(0), 4000)], mappingFile: path) }
    }
}
