// A raw disk image: the guest's sectors are the file's bytes, sector N at offset N * 512.
//
// AUDITED UNSAFE FILE: data moves between the image and guest RAM with preadv/pwritev on iovecs that point
// straight into guest memory. The pointers come only from GuestMemory.withBytes/withMutableBytes, which bounds-
// check every segment, and never leave those closures: the vector for one syscall is built by nesting one closure
// per segment and the syscall runs in the innermost one.
//
// Durability: writes go to the host page cache (pwritev); VIRTIO_BLK_T_FLUSH runs fdatasync, which returns only
// once the data (and the metadata needed to read it back, e.g. a grown file's size or newly allocated blocks) is
// on stable storage. That is the contract VIRTIO_BLK_F_FLUSH promises the guest: what it flushed survives a kill -9
// of the VMM and a host crash.
//
// Threads: every call is positional I/O on one fd, with no shared mutable state, so any number of queue threads
// may call at once.

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CHost
import GuestMemory
import Logging
import SystemPackage

public final class RawDiskImage: BlockBackend {
    public let path: String
    public let capacity: UInt64
    public let isReadOnly: Bool
    private let fd: Int32

    /// Opens `path` for the guest: read-write unless `readOnly`. Fails at once (so the VMM does not start) when
    /// the image is missing, not writable, not a file or block device, or locked by another process.
    ///
    /// The size is taken from the image; a tail that is not a whole 512-byte sector is invisible to the guest
    /// (logged); an image smaller than one sector is refused. A writable image is locked exclusively and a read-only
    /// one shared (OFD fcntl locks, which QEMU uses too), so two VMMs cannot write one image at once.
    public init(path: String, readOnly: Bool, logger: Logger = Logger(label: "swiftlet.virtio-blk")) throws(BlockError) {
        var descriptor: Int32
        repeat {
            descriptor = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        } while descriptor < 0 && errno == EINTR
        guard descriptor >= 0 else { throw .openFailed(path: path, readOnly: readOnly, errno: Errno(rawValue: errno)) }

        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let error = Errno(rawValue: errno)
            close(descriptor)
            throw .io(operation: "fstat", offset: 0, length: 0, errno: error)
        }
        let kind = info.st_mode & S_IFMT
        guard kind == S_IFREG || kind == S_IFBLK else {
            close(descriptor)
            throw .notADiskImage(path: path)
        }
        // An open file description lock on the whole file, as QEMU takes its image locks (it locks single bytes
        // of the same kind, which conflict with ours): so QEMU and Swiftlet each refuse an image the other has
        // open for writing, whichever came first. flock(2) locks are invisible to fcntl locks and vice versa.
        // OFD locks belong to the open file, not the process, so a second open in this process conflicts too.
        guard chost_ofd_lock_whole_file(descriptor, readOnly ? 0 : 1) == 0 else {
            let error = errno
            close(descriptor)
            if error == EAGAIN || error == EACCES { throw .locked(path: path) }
            throw .io(operation: "fcntl(F_OFD_SETLK)", offset: 0, length: 0, errno: Errno(rawValue: error))
        }
        // lseek(SEEK_END) gives the size of block devices too, where st_size is 0.
        let end = lseek(descriptor, 0, SEEK_END)
        guard end >= 0 else {
            let error = Errno(rawValue: errno)
            close(descriptor)
            throw .io(operation: "lseek(SEEK_END)", offset: 0, length: 0, errno: error)
        }
        let size = UInt64(end)
        let capacity = size & ~(VirtioBlock.sectorSize - 1)
        // A guest given a disk of 0 sectors has nothing to use, and Linux shows it as an empty vdX: refuse it.
        guard capacity > 0 else {
            close(descriptor)
            throw .tooSmall(path: path, size: size)
        }
        if capacity != size {
            logger.warning(
                "disk image size is not a multiple of 512; the guest sees only the whole sectors",
                metadata: ["path": "\(path)", "size": "\(size)", "visible": "\(capacity)"])
        }
        self.path = path
        self.fd = descriptor
        self.capacity = capacity
        self.isReadOnly = readOnly
    }

    deinit {
        close(fd)
    }

    // MARK: Data transfer

    public func read(at offset: UInt64, into segments: [BlockSegment], memory: GuestMemory) throws(BlockError) {
        try transfer(toGuest: true, at: offset, segments: segments, memory: memory)
    }

    public func write(at offset: UInt64, from segments: [BlockSegment], memory: GuestMemory) throws(BlockError) {
        guard !isReadOnly else { throw .readOnly }
        try transfer(toGuest: false, at: offset, segments: segments, memory: memory)
    }

    /// Segments per preadv/pwritev. Below IOV_MAX (1024), and small enough that the one-closure-per-segment
    /// nesting stays shallow on a device thread's stack; Linux's virtio_blk sends at most seg_max (≤ 254 here).
    static let segmentsPerCall = 256

    private func transfer(toGuest: Bool, at offset: UInt64, segments: [BlockSegment], memory: GuestMemory) throws(BlockError) {
        var position = offset
        var start = 0
        while start < segments.count {
            let chunk = segments[start..<min(start + Self.segmentsPerCall, segments.count)]
            do {
                var vectors: [iovec] = []
                vectors.reserveCapacity(chunk.count)
                try Self.withIOVecs(chunk, memory: memory, writable: toGuest, vectors: &vectors) { vectors in
                    try self.transferAll(toGuest: toGuest, vectors: &vectors, position: &position)
                }
            } catch let error as BlockError {
                throw error
            } catch let error as GuestMemoryError {
                throw .guestMemory(error)
            } catch {
                preconditionFailure("unexpected error \(error)")
            }
            start += chunk.count
        }
    }

    /// Builds one iovec per non-empty segment, each pointing into guest memory, and runs `body` with all of them
    /// while every pointer is still inside its access closure.
    private static func withIOVecs(
        _ segments: ArraySlice<BlockSegment>, memory: GuestMemory, writable: Bool, vectors: inout [iovec],
        _ body: (inout [iovec]) throws -> Void
    ) throws {
        guard let first = segments.first else { return try body(&vectors) }
        let rest = segments.dropFirst()
        if first.length == 0 { return try withIOVecs(rest, memory: memory, writable: writable, vectors: &vectors, body) }
        if writable {
            try memory.withMutableBytes(at: first.address, count: Int(first.length)) { buffer in
                vectors.append(iovec(iov_base: buffer.baseAddress, iov_len: buffer.count))
                try withIOVecs(rest, memory: memory, writable: writable, vectors: &vectors, body)
            }
        } else {
            try memory.withBytes(at: first.address, count: Int(first.length)) { buffer in
                // SAFETY: pwritev only reads through iov_base; the mutable type is the iovec struct's, not ours.
                vectors.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: buffer.baseAddress), iov_len: buffer.count))
                try withIOVecs(rest, memory: memory, writable: writable, vectors: &vectors, body)
            }
        }
    }

    /// preadv/pwritev until every vector is done: short transfers resume where they stopped, EINTR retries.
    private func transferAll(toGuest: Bool, vectors: inout [iovec], position: inout UInt64) throws(BlockError) {
        var index = 0
        while index < vectors.count {
            let remaining = Int32(vectors.count - index)
            let done = vectors.withUnsafeBufferPointer { buffer in
                // SAFETY: index < count, so base + index and the `remaining` entries after it are in the array.
                let first = buffer.baseAddress! + index
                return toGuest
                    ? preadv(fd, first, remaining, off_t(position)) : pwritev(fd, first, remaining, off_t(position))
            }
            if done < 0 {
                if errno == EINTR { continue }
                let length = vectors[index...].reduce(0) { $0 + UInt64($1.iov_len) }
                throw .io(operation: toGuest ? "preadv" : "pwritev", offset: position, length: length, errno: Errno(rawValue: errno))
            }
            if done == 0 {
                // preadv at end of file; pwritev never returns 0 for a non-empty vector, but do not spin if it does.
                if toGuest { throw .unexpectedEndOfFile(offset: position) }
                throw .io(operation: "pwritev", offset: position, length: 0, errno: .noSpace)
            }
            position += UInt64(done)
            var consumed = done
            while index < vectors.count, consumed >= vectors[index].iov_len {
                consumed -= vectors[index].iov_len
                index += 1
            }
            if consumed > 0 {
                // SAFETY: consumed < iov_len, so the advanced pointer stays inside the same guest buffer.
                vectors[index].iov_base = vectors[index].iov_base! + consumed
                vectors[index].iov_len -= consumed
            }
        }
    }

    // MARK: Flush, discard, write zeroes

    public func flush() throws(BlockError) {
        while fdatasync(fd) != 0 {
            if errno == EINTR { continue }
            throw .io(operation: "fdatasync", offset: 0, length: capacity, errno: Errno(rawValue: errno))
        }
    }

    public func discard(at offset: UInt64, length: UInt64) throws(BlockError) {
        guard !isReadOnly else { throw .readOnly }
        guard length > 0 else { return }
        // A discard is a hint: if the file system cannot punch holes, keeping the data is a valid outcome.
        switch Fallocate.call(fd, mode: Fallocate.punchHole | Fallocate.keepSize, offset: offset, length: length) {
        case .success, .unsupported: return
        case let .failed(error): throw .io(operation: "fallocate(PUNCH_HOLE)", offset: offset, length: length, errno: error)
        }
    }

    public func writeZeroes(at offset: UInt64, length: UInt64, mayUnmap: Bool) throws(BlockError) {
        guard !isReadOnly else { throw .readOnly }
        guard length > 0 else { return }
        // With unmap the guest asked for the space to be freed too: a punched hole reads back as zeros. Otherwise
        // ZERO_RANGE keeps the blocks allocated (as a later overwrite expects). Either may be unsupported by the
        // file system (or a block device), so fall back down the list to plain writes of zeros.
        var modes: [(Int32, String)] = [(Fallocate.zeroRange | Fallocate.keepSize, "fallocate(ZERO_RANGE)")]
        if mayUnmap { modes.insert((Fallocate.punchHole | Fallocate.keepSize, "fallocate(PUNCH_HOLE)"), at: 0) }
        for (mode, name) in modes {
            switch Fallocate.call(fd, mode: mode, offset: offset, length: length) {
            case .success: return
            case .unsupported: continue
            case let .failed(error): throw .io(operation: name, offset: offset, length: length, errno: error)
            }
        }
        try writeZeroBytes(at: offset, length: length)
    }

    private static let zeroChunk = [UInt8](repeating: 0, count: 64 << 10)

    private func writeZeroBytes(at offset: UInt64, length: UInt64) throws(BlockError) {
        var position = offset
        let end = offset + length
        while position < end {
            let count = Int(min(UInt64(Self.zeroChunk.count), end - position))
            let done = Self.zeroChunk.withUnsafeBytes { pwrite(fd, $0.baseAddress, count, off_t(position)) }
            if done < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "pwrite(zeros)", offset: position, length: UInt64(count), errno: Errno(rawValue: errno))
            }
            if done == 0 { throw .io(operation: "pwrite(zeros)", offset: position, length: UInt64(count), errno: .noSpace) }
            position += UInt64(done)
        }
    }
}

/// fallocate(2), through CHost (Swift's Glibc module does not export it: glibc declares it only under
/// _GNU_SOURCE).
enum Fallocate {
    static let keepSize = Int32(FALLOC_FL_KEEP_SIZE)    // never change the file size
    static let punchHole = Int32(FALLOC_FL_PUNCH_HOLE)  // deallocate; reads return zeros (needs KEEP_SIZE)
    static let zeroRange = Int32(FALLOC_FL_ZERO_RANGE)  // make the range read as zeros, keep it allocated

    enum Outcome {
        case success
        /// The file system or device cannot do this mode (EOPNOTSUPP), or the call is missing.
        case unsupported
        case failed(Errno)
    }

    static func call(_ fd: Int32, mode: Int32, offset: UInt64, length: UInt64) -> Outcome {
        while true {
            if chost_fallocate(fd, mode, Int64(offset), Int64(length)) == 0 { return .success }
            switch errno {
            case EINTR: continue
            case EOPNOTSUPP, ENOSYS, ENOTTY, ENODEV: return .unsupported
            case let error: return .failed(Errno(rawValue: error))
            }
        }
    }
}
