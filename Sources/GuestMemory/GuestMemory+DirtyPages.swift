#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemPackage

/// `Diff` snapshots: the pages written since the last snapshot, as a memory file of RAM's full size whose other
/// pages are holes, and the merge of such a file onto the memory file it follows (Firecracker's
/// `snapshot-editor edit-memory rebase`).
///
/// What was written comes from two logs: KVM's (the vCPUs' writes, read by the caller with KVM_GET_DIRTY_LOG) and
/// each region's `DirtyPageLog` (the VMM's own writes).
extension GuestMemory {
    /// Starts logging the VMM's writes in every region, every page clean from now on.
    public func startDirtyPageLog() { for region in regions { region.dirtyLog.start() } }

    public func stopDirtyPageLog() { for region in regions { region.dirtyLog.stop() } }

    public var isLoggingDirtyPages: Bool { regions.first?.dirtyLog.isLogging ?? false }

    /// Forgets what was written so far (a `Full` snapshot was just taken: the next `Diff` is relative to it).
    public func clearDirtyPageLog() { for region in regions { _ = region.dirtyLog.take() } }

    /// Writes a new file at `path` of RAM's full size holding the pages written since the last snapshot: those set
    /// in `kvmDirty` (one bitmap per region, KVM_GET_DIRTY_LOG's layout) or in the regions' own logs. Every other
    /// page is a hole. The logs are cleared; if writing fails, what was taken is put back into the regions' logs,
    /// so the next snapshot still writes those pages.
    public func writeDirtyPages(to path: String, kvmDirty: [[UInt64]]) throws(GuestMemoryError) -> SparseWriteResult {
        var taken: [[UInt64]] = []
        for (index, region) in regions.enumerated() {
            var bits = region.dirtyLog.take()
            let kvm = index < kvmDirty.count ? kvmDirty[index] : []
            if bits.count < kvm.count { bits += [UInt64](repeating: 0, count: kvm.count - bits.count) }
            for word in kvm.indices { bits[word] |= kvm[word] }
            taken.append(bits)
        }
        do throws(GuestMemoryError) {
            let file: FileDescriptor
            do {
                file = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec],
                                               permissions: [.ownerReadWrite])
            } catch {
                throw GuestMemoryError.file(path: path, operation: "create", errno: (error as? Errno) ?? .ioError)
            }
            defer { try? file.close() }
            guard ftruncate(file.rawValue, off_t(totalSize)) == 0 else {
                throw GuestMemoryError.file(path: path, operation: "size", errno: Errno(rawValue: errno))
            }
            var offset: UInt64 = 0
            var written: UInt64 = 0
            for (region, bits) in zip(regions, taken) {
                written += try region.writePages(bits, to: file, fileOffset: offset, path: path)
                offset += region.size
            }
            return SparseWriteResult(fileSize: totalSize, bytesWritten: written)
        } catch {
            for (region, bits) in zip(regions, taken) { region.dirtyLog.putBack(bits) }
            throw error
        }
    }

    /// lseek's SEEK_DATA and SEEK_HOLE (Linux values; Glibc exports them only under _GNU_SOURCE).
    private static let seekData: Int32 = 3, seekHole: Int32 = 4

    /// Copies the data of the `Diff` memory file at `diffPath` (its non-hole extents: the pages it holds) onto the
    /// memory file at `basePath`, in place, so that the base becomes the memory of the later snapshot. Both must
    /// be of the same size. Returns the bytes copied. The base is changed: do not merge into a file that running
    /// restores map (they would see pages change under them); copy it first.
    public static func mergeDiff(from diffPath: String, onto basePath: String) throws(GuestMemoryError) -> UInt64 {
        func open(_ path: String, _ mode: FileDescriptor.AccessMode) throws(GuestMemoryError) -> FileDescriptor {
            do { return try FileDescriptor.open(FilePath(path), mode, options: [.closeOnExec]) } catch {
                throw .file(path: path, operation: "open", errno: (error as? Errno) ?? .ioError)
            }
        }
        let diff = try open(diffPath, .readOnly)
        defer { try? diff.close() }
        let base = try open(basePath, .writeOnly)
        defer { try? base.close() }
        func size(_ file: FileDescriptor, _ path: String) throws(GuestMemoryError) -> UInt64 {
            var info = stat()
            guard fstat(file.rawValue, &info) == 0 else { throw .file(path: path, operation: "stat", errno: Errno(rawValue: errno)) }
            return UInt64(max(info.st_size, 0))
        }
        let total = try size(diff, diffPath)
        let baseSize = try size(base, basePath)
        guard total == baseSize else { throw .fileSizeMismatch(path: diffPath, expected: baseSize, actual: total) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var copied: UInt64 = 0
        var position: off_t = 0
        while UInt64(position) < total {
            let dataStart = lseek(diff.rawValue, position, Self.seekData)
            if dataStart < 0 {
                if errno == ENXIO { break }  // no data after `position`: the rest is a hole
                throw .file(path: diffPath, operation: "seek", errno: Errno(rawValue: errno))
            }
            let dataEnd = lseek(diff.rawValue, dataStart, Self.seekHole)
            guard dataEnd >= dataStart else { throw .file(path: diffPath, operation: "seek", errno: Errno(rawValue: errno)) }
            var cursor = dataStart
            while cursor < dataEnd {
                let want = min(buffer.count, Int(dataEnd - cursor))
                let got = buffer.withUnsafeMutableBytes { pread(diff.rawValue, $0.baseAddress, want, cursor) }
                if got < 0, errno == EINTR { continue }
                guard got > 0 else { throw .file(path: diffPath, operation: "read", errno: got < 0 ? Errno(rawValue: errno) : .ioError) }
                var done = 0
                while done < got {
                    let put = buffer.withUnsafeBytes { pwrite(base.rawValue, $0.baseAddress! + done, got - done, cursor + off_t(done)) }
                    if put < 0, errno == EINTR { continue }
                    guard put > 0 else { throw .file(path: basePath, operation: "write", errno: put < 0 ? Errno(rawValue: errno) : .ioError) }
                    done += put
                }
                cursor += off_t(got)
                copied += UInt64(got)
            }
            position = dataEnd
        }
        guard fsync(base.rawValue) == 0 else { throw .file(path: basePath, operation: "fsync", errno: Errno(rawValue: errno)) }
        return copied
    }
}
