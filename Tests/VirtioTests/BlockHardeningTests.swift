// virtio-blk at the host's edges (issue 13): images too small to be a disk, locks QEMU can see, write-through for
// a driver without FLUSH, and a write past the host's file-size limit.

#if canImport(Glibc)
    import Glibc
#endif
import CHost
import Foundation
import GuestMemory
import SystemPackage
import Testing

@testable import Virtio

private typealias T = VirtioBlockRequestType

@Suite struct BlockHardeningTests {
    // MARK: Images smaller than a sector (defect 10)

    @Test("an image of 0 or 511 bytes is refused: the guest would get a disk of 0 sectors", arguments: [0, 1, 511])
    func imageBelowOneSectorIsRefused(size: Int) {
        let image = TemporaryImage(size: size)
        #expect(throws: BlockError.tooSmall(path: image.path, size: UInt64(size))) {
            try RawDiskImage(path: image.path, readOnly: false)
        }
        #expect(BlockError.tooSmall(path: image.path, size: UInt64(size)).description.contains("less than one 512-byte sector"))
    }

    @Test func oneSectorIsEnough() throws {
        let image = TemporaryImage(size: 512 + 100)
        #expect(try RawDiskImage(path: image.path, readOnly: true).capacity == 512)
    }

    // MARK: Locks QEMU sees (defect 7)

    /// Another open file description of the image, with an OFD lock on the whole file: what QEMU holds
    /// (byte-range F_OFD_SETLK locks; ours conflict with its because they cover every byte).
    private func openWithOFDLock(_ path: String, exclusive: Bool) throws -> Int32 {
        let fd = open(path, exclusive ? O_RDWR : O_RDONLY)
        try #require(fd >= 0)
        try #require(chost_ofd_lock_whole_file(fd, exclusive ? 1 : 0) == 0, "errno \(errno)")
        return fd
    }

    @Test("an image another program holds with an OFD write lock (QEMU's kind) is refused, read-write or read-only")
    func otherOFDWriteLockRefuses() throws {
        let image = TemporaryImage(size: 4096)
        let holder = try openWithOFDLock(image.path, exclusive: true)
        defer { close(holder) }
        #expect(throws: BlockError.locked(path: image.path)) { try RawDiskImage(path: image.path, readOnly: false) }
        #expect(throws: BlockError.locked(path: image.path)) { try RawDiskImage(path: image.path, readOnly: true) }
    }

    @Test("a reader's OFD read lock refuses a writer, not another reader")
    func otherOFDReadLock() throws {
        let image = TemporaryImage(size: 4096)
        let holder = try openWithOFDLock(image.path, exclusive: false)
        defer { close(holder) }
        #expect(throws: BlockError.locked(path: image.path)) { try RawDiskImage(path: image.path, readOnly: false) }
        _ = try RawDiskImage(path: image.path, readOnly: true)
    }

    @Test("what we hold is an OFD lock others can see: write lock for read-write, read lock for read-only; gone when closed")
    func ourLockIsVisibleToOFDLocks() throws {
        let image = TemporaryImage(size: 4096)
        let probe = open(image.path, O_RDWR)
        defer { close(probe) }
        do {
            let disk = try RawDiskImage(path: image.path, readOnly: false)
            #expect(chost_ofd_lock_conflicts(probe, 0) == 1, "a read lock conflicts with our write lock")
            _ = disk
        }
        #expect(chost_ofd_lock_conflicts(probe, 1) == 0, "released with the image")
        do {
            let disk = try RawDiskImage(path: image.path, readOnly: true)
            #expect(chost_ofd_lock_conflicts(probe, 1) == 1, "a write lock conflicts with our read lock")
            #expect(chost_ofd_lock_conflicts(probe, 0) == 0, "another reader is welcome")
            _ = disk
        }
    }

    @Test("the same image opened twice read-write in one process is refused too (OFD locks are per open file)")
    func secondOpenInThisProcess() throws {
        let image = TemporaryImage(size: 4096)
        let first = try RawDiskImage(path: image.path, readOnly: false)
        #expect(throws: BlockError.locked(path: image.path)) { try RawDiskImage(path: image.path, readOnly: false) }
        _ = first
    }

    // MARK: Write-through without FLUSH (defect 11)

    private func handler(_ backend: FakeBackend, features: UInt64?) throws -> BlockRequestHandler {
        try BlockRequestHandler(backend: backend, config: VirtioBlockConfig(capacityBytes: backend.capacity, readOnly: false), id: nil,
                                negotiatedFeatures: features)
    }

    @Test("a driver that did not negotiate FLUSH gets write-through: every write is flushed before it is acknowledged")
    func writeThroughWithoutFlush() throws {
        let backend = FakeBackend(capacity: 1 << 20)
        let config = VirtioBlockConfig(capacityBytes: backend.capacity, readOnly: false)
        let device = try handler(backend, features: config.offeredFeatures & ~VirtioBlockFeature.flush)
        #expect(device.writeThrough)
        var b = try RequestBuilder()
        let write = try b.chain(type: T.out, sector: 2, out: [[UInt8](repeating: 7, count: 1024)])
        #expect(device.handle(write, memory: b.memory).status == .ok)
        #expect(backend.state.withLock { $0.flushes } == 1)
        _ = device.handle(try b.chain(type: T.in, sector: 2, inLengths: [512]), memory: b.memory)
        #expect(backend.state.withLock { $0.flushes } == 1, "reads need no flush")
    }

    @Test("a write whose flush fails is answered IOERR, not OK")
    func writeThroughFlushFailure() throws {
        final class FailingFlush: BlockBackend, @unchecked Sendable {
            let capacity: UInt64 = 1 << 20
            let isReadOnly = false
            func read(at offset: UInt64, into segments: [BlockSegment], memory: GuestMemory) throws(BlockError) {}
            func write(at offset: UInt64, from segments: [BlockSegment], memory: GuestMemory) throws(BlockError) {}
            func flush() throws(BlockError) { throw .io(operation: "fdatasync", offset: 0, length: 0, errno: .ioError) }
            func discard(at offset: UInt64, length: UInt64) throws(BlockError) {}
            func writeZeroes(at offset: UInt64, length: UInt64, mayUnmap: Bool) throws(BlockError) {}
        }
        let backend = FailingFlush()
        let config = VirtioBlockConfig(capacityBytes: backend.capacity, readOnly: false)
        let device = try BlockRequestHandler(backend: backend, config: config, id: nil,
                                             negotiatedFeatures: config.offeredFeatures & ~VirtioBlockFeature.flush)
        var b = try RequestBuilder()
        #expect(device.handle(try b.chain(type: T.out, sector: 0, out: [[UInt8](repeating: 1, count: 512)]), memory: b.memory).status == .ioError)
    }

    @Test("with FLUSH negotiated the cache is write-back: writes are not flushed until the driver asks")
    func writeBackWithFlush() throws {
        let backend = FakeBackend(capacity: 1 << 20)
        let config = VirtioBlockConfig(capacityBytes: backend.capacity, readOnly: false)
        let device = try handler(backend, features: config.offeredFeatures)
        #expect(!device.writeThrough)
        var b = try RequestBuilder()
        #expect(device.handle(try b.chain(type: T.out, sector: 2, out: [[UInt8](repeating: 7, count: 512)]), memory: b.memory).status == .ok)
        #expect(backend.state.withLock { $0.flushes } == 0)
        #expect(device.handle(try b.chain(type: T.flush), memory: b.memory).status == .ok)
        #expect(backend.state.withLock { $0.flushes } == 1)
    }

    // MARK: A write past RLIMIT_FSIZE (defect 19: the VMM ignores SIGXFSZ, see KVMTests' PlatformHardeningTests)

    @Test("with SIGXFSZ ignored, a write past the file-size limit fails that request with IOERR (EFBIG)")
    func writePastFileSizeLimit() throws {
        // The limit is process-wide: 1 TiB, so that no other test's file comes near it. The image is sparse.
        let limit: UInt64 = 1 << 40
        let image = TemporaryImage(size: 0)
        try #require(truncate(image.path, off_t(limit + (1 << 20))) == 0)
        let previousHandler = signal(SIGXFSZ, SIG_IGN)
        let fileSize = __rlimit_resource_t(RLIMIT_FSIZE.rawValue)
        var saved = rlimit()
        getrlimit(fileSize, &saved)
        var lowered = saved
        lowered.rlim_cur = rlim_t(limit)
        try #require(setrlimit(fileSize, &lowered) == 0)
        defer {
            setrlimit(fileSize, &saved)
            signal(SIGXFSZ, previousHandler)
        }
        let disk = try RawDiskImage(path: image.path, readOnly: false)
        let device = try BlockRequestHandler(backend: disk, config: VirtioBlockConfig(capacityBytes: disk.capacity, readOnly: false), id: nil)
        var b = try RequestBuilder()
        let past = try b.chain(type: T.out, sector: limit / 512, out: [[UInt8](repeating: 3, count: 512)])
        #expect(device.handle(past, memory: b.memory).status == .ioError)
        let below = try b.chain(type: T.out, sector: limit / 512 - 1, out: [[UInt8](repeating: 3, count: 512)])
        #expect(device.handle(below, memory: b.memory).status == .ok)
    }
}
