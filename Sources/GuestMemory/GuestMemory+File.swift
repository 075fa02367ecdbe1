#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// Guest RAM and files: the sparse memory file a snapshot writes, and RAM mapped back from it.
///
/// The file holds the regions one after another in guest-address order (region 0 at offset 0, region 1 right
/// after it, ...), each exactly its size: a flat image of RAM without the MMIO hole.
extension GuestMemory {
    /// What `writeSparse` wrote.
    public struct SparseWriteResult: Sendable, Equatable {
        /// The file's size: all of guest RAM.
        public var fileSize: UInt64
        /// Bytes of non-zero pages actually written; the rest are holes.
        public var bytesWritten: UInt64
    }

    /// Writes all of RAM to a new file at `path` (replacing one that is there), skipping all-zero pages: the file
    /// is sized first (ftruncate), so skipped pages are holes that read back as zeros and take no disk space.
    /// A guest of 1 GiB that touched 10 MiB writes about 10 MiB. The caller keeps the guest from running meanwhile.
    public func writeSparse(to path: String) throws(GuestMemoryError) -> SparseWriteResult {
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec],
                                           permissions: [.ownerReadWrite])
        } catch {
            throw .file(path: path, operation: "create", errno: (error as? Errno) ?? .ioError)
        }
        defer { try? file.close() }
        let total = totalSize
        guard ftruncate(file.rawValue, off_t(total)) == 0 else {
            throw .file(path: path, operation: "size", errno: Errno(rawValue: errno))
        }
        var offset: UInt64 = 0
        var written: UInt64 = 0
        for region in regions {
            written += try region.writeNonZeroPages(to: file, fileOffset: offset, path: path)
            offset += region.size
        }
        return SparseWriteResult(fileSize: total, bytesWritten: written)
    }

    /// Maps RAM for `ranges` from the memory file at `path`, copy-on-write (`MemoryRegion.init(mappingFile:)`):
    /// nothing is read now, pages load on first touch, and the file is never written. The file's size must be
    /// exactly the ranges' total (a shorter file would fault the guest with SIGBUS on the missing pages, a
    /// longer one is not the file the layout was saved with); every range must start at a page-aligned file offset.
    public convenience init(ranges: [(start: GuestAddress, size: UInt64)], mappingFile path: String) throws(GuestMemoryError) {
        let sorted = ranges.sorted { $0.start < $1.start }
        var expected: UInt64 = 0
        for (index, range) in sorted.enumerated() {
            if index > 0 {
                let previous = sorted[index - 1]
                guard let previousEnd = previous.start.checkedAdding(previous.size), previousEnd <= range.start else {
                    throw .invalidLayout("regions at \(previous.start) and \(range.start) overlap")
                }
            }
            guard range.size % MemoryRegion.pageSize == 0 else {
                throw .invalidLayout("region at \(range.start) of size \(range.size) is not a whole number of pages")
            }
            let (sum, overflow) = expected.addingReportingOverflow(range.size)
            guard !overflow else { throw .invalidLayout("regions' total size overflows") }
            expected = sum
        }
        let file: FileDescriptor
        do {
            file = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
        } catch {
            throw .file(path: path, operation: "open", errno: (error as? Errno) ?? .ioError)
        }
        // The mappings keep the file referenced; the descriptor is not needed after mmap.
        defer { try? file.close() }
        var info = stat()
        guard fstat(file.rawValue, &info) == 0 else { throw .file(path: path, operation: "stat", errno: Errno(rawValue: errno)) }
        let actual = UInt64(max(info.st_size, 0))
        guard actual == expected else { throw .fileSizeMismatch(path: path, expected: expected, actual: actual) }
        var regions: [MemoryRegion] = []
        var offset: UInt64 = 0
        for range in sorted {
            regions.append(try MemoryRegion(guestBase: range.start, size: range.size, mappingFile: file, fileOffset: offset))
            offset += range.size
        }
        self.init(checkedRegions: regions)
    }
}
