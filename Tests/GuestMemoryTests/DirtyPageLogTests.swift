import Foundation
import Testing
@testable import GuestMemory

/// The VMM's side of dirty-page tracking: every write through guest memory marks its pages while logging is on,
/// and nothing otherwise; a Diff memory file holds exactly the marked pages; merging it onto a base copies them.
@Suite struct DirtyPageLogTests {
    static let page = Int(MemoryRegion.pageSize)

    static func marked(_ words: [UInt64]) -> [Int] {
        var pages: [Int] = []
        for (index, word) in words.enumerated() {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { pages.append(index * 64 + bit) }
        }
        return pages
    }

    @Test("store, write, zero and the mutable fast path mark the pages they touch, only while logging; take clears")
    func writesMarkPages() throws {
        let memory = try GuestMemory(ranges: [(GuestAddress(0), 1 << 20)])
        let log = memory.regions[0].dirtyLog
        try memory.store(UInt32(1), at: GuestAddress(0x1000))
        #expect(log.take().isEmpty, "not logging: no bitmap at all")
        memory.startDirtyPageLog()
        #expect(memory.isLoggingDirtyPages)
        try memory.store(UInt32(1), at: GuestAddress(0x1000))
        try memory.write([1, 2, 3], at: GuestAddress(0x3FFF))          // straddles pages 3 and 4
        try memory.zero(at: GuestAddress(0x8000), count: 0x2000)         // pages 8 and 9
        try memory.withMutableBytes(at: GuestAddress(0xF_F000), count: 16) { $0[0] = 1 }
        _ = try memory.read(at: GuestAddress(0x20000), count: 4096)      // a read marks nothing
        #expect(Self.marked(log.take()) == [1, 3, 4, 8, 9, 255])
        #expect(Self.marked(log.take()) == [], "taken means cleared")
        memory.stopDirtyPageLog()
        try memory.store(UInt8(1), at: GuestAddress(0x5000))
        #expect(log.take().isEmpty)
    }

    @Test("a Diff file holds the KVM-marked and VMM-marked pages (zero pages too) and holes elsewhere; merged onto a base it replaces just those pages")
    func diffFileAndMerge() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-dirty-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let memory = try GuestMemory(ranges: [(GuestAddress(0), 64 * UInt64(Self.page))])
        try memory.write([UInt8](repeating: 0xAA, count: 64 * Self.page), at: GuestAddress(0))
        memory.startDirtyPageLog()
        try memory.write([UInt8](repeating: 0xBB, count: Self.page), at: GuestAddress(UInt64(5 * Self.page)))
        try memory.zero(at: GuestAddress(UInt64(7 * Self.page)), count: UInt64(Self.page))
        // Page 40 as if a vCPU wrote it: only KVM's bitmap says so.
        try memory.regions[0].withBytes(offset: 40 * Self.page, count: 1) { _ in }
        var kvm = [UInt64](repeating: 0, count: 1)
        kvm[0] |= 1 << 40
        let diffPath = directory + "/diff"
        let result = try memory.writeDirtyPages(to: diffPath, kvmDirty: [kvm])
        #expect(result.fileSize == UInt64(64 * Self.page))
        #expect(result.bytesWritten == UInt64(3 * Self.page))
        #expect(memory.regions[0].dirtyLog.take().allSatisfy { $0 == 0 }, "the VMM's log was taken")

        // A base of all 0x11: after the merge, pages 5, 7 and 40 are the guest's, the rest still the base's.
        let basePath = directory + "/base"
        try Data(repeating: 0x11, count: 64 * Self.page).write(to: URL(fileURLWithPath: basePath))
        #expect(try GuestMemory.mergeDiff(from: diffPath, onto: basePath) == UInt64(3 * Self.page))
        let merged = [UInt8](try Data(contentsOf: URL(fileURLWithPath: basePath)))
        for pageIndex in 0..<64 {
            let bytes = merged[(pageIndex * Self.page)..<((pageIndex + 1) * Self.page)]
            let expected: UInt8 = switch pageIndex { case 5: 0xBB; case 7: 0; case 40: 0xAA; default: 0x11 }
            #expect(bytes.allSatisfy { $0 == expected }, "page \(pageIndex)")
        }
        // Files of different sizes are refused.
        try Data(repeating: 0, count: Self.page).write(to: URL(fileURLWithPath: directory + "/small"))
        #expect(throws: GuestMemoryError.self) { try GuestMemory.mergeDiff(from: diffPath, onto: directory + "/small") }
    }
}
