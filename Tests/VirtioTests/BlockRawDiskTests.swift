// virtio-blk end to end below the virtqueue: requests laid out in guest memory, run by BlockRequestHandler
// against a RawDiskImage on a temporary file, checked against the file with the host's own calls.

#if canImport(Glibc)
    import Glibc
#endif
import GuestMemory
import SystemPackage
import Testing

@testable import Virtio

private typealias T = VirtioBlockRequestType

/// A handler over `image`, with the default configuration for its size.
private func handler(_ image: TemporaryImage, readOnly: Bool = false, id: String? = nil) throws -> BlockRequestHandler {
    let disk = try RawDiskImage(path: image.path, readOnly: readOnly)
    return try BlockRequestHandler(
        backend: disk, config: VirtioBlockConfig(capacityBytes: disk.capacity, readOnly: readOnly), id: id)
}

private func sectorPattern(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: 512) }

@Suite struct BlockRawDiskTests {
    // MARK: Read and write

    @Test func readsScatterIntoOddSizedSegments() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try handler(image)
        var b = try RequestBuilder()
        let chain = try b.chain(type: T.in, sector: 3, inLengths: [100, 412, 1024])
        #expect(device.handle(chain, memory: b.memory) == BlockCompletion(status: .ok, bytesWritten: 1537))
        #expect(try b.status(of: chain) == VirtioBlockStatus.ok.rawValue)
        #expect(try b.bytes(of: Array(chain[1...3])) == image.contents(at: 3 * 512, count: 1536))
    }

    @Test func writesGatherFromSegmentsAndReadBack() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try handler(image)
        var b = try RequestBuilder()
        let data = (0..<1536).map { UInt8(truncatingIfNeeded: $0 * 13 + 1) }
        let write = try b.chain(type: T.out, sector: 100, out: [Array(data[0..<7]), Array(data[7..<1000]), Array(data[1000...])])
        #expect(device.handle(write, memory: b.memory) == BlockCompletion(status: .ok, bytesWritten: 1))
        #expect(image.contents(at: 100 * 512, count: 1536) == data)
        // Neighbours untouched.
        #expect(image.contents(at: 99 * 512, count: 512) != sectorPattern(0))
        let read = try b.chain(type: T.in, sector: 100, inLengths: [1536])
        #expect(device.handle(read, memory: b.memory).status == .ok)
        #expect(try b.bytes(of: [read[1]]) == data)
    }

    @Test func moreSegmentsThanOneSyscallTakes() throws {
        // 300 one-sector buffers: RawDiskImage splits them over several preadv/pwritev calls.
        let image = TemporaryImage(size: 1 << 20)
        let device = try handler(image)
        var b = try RequestBuilder()
        let out = (0..<300).map { sectorPattern(UInt8($0 % 251)) }
        #expect(device.handle(try b.chain(type: T.out, sector: 1, out: out), memory: b.memory).status == .ok)
        #expect(image.contents(at: 512, count: 300 * 512) == out.flatMap { $0 })
        let read = try b.chain(type: T.in, sector: 1, inLengths: [Int](repeating: 512, count: 300))
        #expect(device.handle(read, memory: b.memory) == BlockCompletion(status: .ok, bytesWritten: 300 * 512 + 1))
        #expect(try b.bytes(of: Array(read[1...300])) == out.flatMap { $0 })
    }

    @Test func lastSectorIsReachableAndOneBeyondIsIOERR() throws {
        let image = TemporaryImage(size: 64 << 10)  // 128 sectors
        let device = try handler(image)
        var b = try RequestBuilder()
        let last = try b.chain(type: T.in, sector: 127, inLengths: [512])
        #expect(device.handle(last, memory: b.memory).status == .ok)
        #expect(try b.bytes(of: [last[1]]) == image.contents(at: 127 * 512, count: 512))
        for chain in [
            try b.chain(type: T.in, sector: 128, inLengths: [512]),
            try b.chain(type: T.in, sector: 127, inLengths: [1024]),
            try b.chain(type: T.out, sector: 128, out: [sectorPattern(1)]),
            try b.chain(type: T.in, sector: .max, inLengths: [512]),
        ] {
            #expect(device.handle(chain, memory: b.memory) == BlockCompletion(status: .ioError, bytesWritten: 1))
            #expect(try b.status(of: chain) == VirtioBlockStatus.ioError.rawValue)
        }
        #expect(image.contents(at: 127 * 512, count: 512) != sectorPattern(1))
    }

    // MARK: Flush, discard, write zeroes

    @Test func flushSucceeds() throws {
        let image = TemporaryImage(size: 64 << 10)
        let device = try handler(image)
        var b = try RequestBuilder()
        #expect(device.handle(try b.chain(type: T.out, out: [sectorPattern(7)]), memory: b.memory).status == .ok)
        #expect(device.handle(try b.chain(type: T.flush), memory: b.memory) == BlockCompletion(status: .ok, bytesWritten: 1))
        #expect(image.contents(at: 0, count: 512) == sectorPattern(7))
    }

    @Test func discardPunchesAHole() throws {
        let image = TemporaryImage(size: 1 << 20)  // fully written, so fully allocated
        let device = try handler(image)
        #expect(image.nextHole(from: 0) == 1 << 20)  // no hole before the end
        let before = image.allocatedBlocks
        var b = try RequestBuilder()
        // Two ranges: 256 KiB at 128 KiB, 64 KiB at 512 KiB (4 KiB aligned, as discard_sector_alignment asks).
        let chain = try b.chain(type: T.discard, out: [RequestBuilder.range(sector: 256, count: 512) + RequestBuilder.range(sector: 1024, count: 128)])
        #expect(device.handle(chain, memory: b.memory) == BlockCompletion(status: .ok, bytesWritten: 1))
        #expect(image.nextHole(from: 0) == 128 << 10)
        #expect(image.nextHole(from: 512 << 10) == 512 << 10)
        #expect(image.allocatedBlocks <= before - (320 << 10) / 512)
        #expect(image.contents(at: 128 << 10, count: 256 << 10) == [UInt8](repeating: 0, count: 256 << 10))
        #expect(image.contents(at: (128 << 10) - 512, count: 512) != sectorPattern(0))  // the sector before is kept
    }

    @Test func writeZeroesWithoutUnmapKeepsBlocksAllocated() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try handler(image)
        var b = try RequestBuilder()
        let chain = try b.chain(type: T.writeZeroes, out: [RequestBuilder.range(sector: 8, count: 24)])
        #expect(device.handle(chain, memory: b.memory).status == .ok)
        #expect(image.contents(at: 8 * 512, count: 24 * 512) == [UInt8](repeating: 0, count: 24 * 512))
        #expect(image.contents(at: 7 * 512, count: 512) != sectorPattern(0))
        #expect(image.contents(at: 32 * 512, count: 512) != sectorPattern(0))
        #expect(image.nextHole(from: 0) == 1 << 20)  // ZERO_RANGE keeps the blocks: no hole
    }

    @Test func writeZeroesWithUnmapFreesTheRange() throws {
        let image = TemporaryImage(size: 1 << 20)
        let device = try handler(image)
        var b = try RequestBuilder()
        let chain = try b.chain(type: T.writeZeroes, out: [RequestBuilder.range(sector: 64, count: 64, flags: VirtioBlock.unmapFlag)])
        #expect(device.handle(chain, memory: b.memory).status == .ok)
        #expect(image.contents(at: 64 * 512, count: 64 * 512) == [UInt8](repeating: 0, count: 64 * 512))
        #expect(image.nextHole(from: 0) == 64 * 512)
    }

    @Test func writeZeroesFallsBackToWritingZerosWithoutZeroRange() throws {
        // tmpfs (/dev/shm on Linux) has no FALLOC_FL_ZERO_RANGE (EOPNOTSUPP): the backend writes zeros itself.
        guard access("/dev/shm", W_OK) == 0 else { return }
        let image = TemporaryImage(size: 256 << 10, directory: "/dev/shm")
        let device = try handler(image)
        var b = try RequestBuilder()
        let chain = try b.chain(type: T.writeZeroes, out: [RequestBuilder.range(sector: 1, count: 300)])
        #expect(device.handle(chain, memory: b.memory).status == .ok)
        #expect(image.contents(at: 512, count: 300 * 512) == [UInt8](repeating: 0, count: 300 * 512))
        #expect(image.contents(at: 0, count: 512) != sectorPattern(0))
        #expect(image.contents(at: 301 * 512, count: 512) != sectorPattern(0))
        #expect(image.nextHole(from: 0) == 256 << 10)
    }

    // MARK: Read-only images

    @Test func readOnlyImageRefusesWritesAndOffersRO() throws {
        let image = TemporaryImage(size: 64 << 10)
        let original = image.contents(at: 0, count: 64 << 10)
        let device = try handler(image, readOnly: true)
        #expect(device.config.offeredFeatures & VirtioBlockFeature.readOnly != 0)
        #expect(device.config.offeredFeatures & (VirtioBlockFeature.discard | VirtioBlockFeature.writeZeroes) == 0)
        var b = try RequestBuilder()
        for chain in [
            try b.chain(type: T.out, sector: 0, out: [sectorPattern(0xFF)]),
            try b.chain(type: T.discard, out: [RequestBuilder.range(sector: 0, count: 8)]),
            try b.chain(type: T.writeZeroes, out: [RequestBuilder.range(sector: 0, count: 8)]),
        ] {
            let status = device.handle(chain, memory: b.memory).status
            #expect(status == .ioError || status == .unsupported)  // OUT: IOERR; not-offered DISCARD/WRITE_ZEROES: UNSUPP
        }
        #expect(device.handle(try b.chain(type: T.out, sector: 0, out: [sectorPattern(0xFF)]), memory: b.memory).status == .ioError)
        #expect(image.contents(at: 0, count: 64 << 10) == original)
        #expect(device.handle(try b.chain(type: T.in, inLengths: [512]), memory: b.memory).status == .ok)
        #expect(device.handle(try b.chain(type: T.flush), memory: b.memory).status == .ok)
        // The backend itself refuses too, whatever a caller does.
        let disk = try RawDiskImage(path: image.path, readOnly: true)
        #expect(throws: BlockError.readOnly) { try disk.write(at: 0, from: [], memory: b.memory) }
    }

    // MARK: GET_ID

    @Test func getIDReturnsTheNulPaddedSerial() throws {
        let image = TemporaryImage(size: 4096)
        var b = try RequestBuilder()
        let named = try handler(image, id: "disk0")
        let chain = try b.chain(type: T.getID, inLengths: [20])
        #expect(named.handle(chain, memory: b.memory) == BlockCompletion(status: .ok, bytesWritten: 21))
        #expect(try b.bytes(of: [chain[1]]) == Array("disk0".utf8) + [UInt8](repeating: 0, count: 15))
        // A full 20-byte id is not NUL-terminated; a bigger buffer gets only 20 bytes.
        let other = TemporaryImage(size: 4096)  // `image` is locked by `named`
        let full = try BlockRequestHandler(backend: RawDiskImage(path: other.path, readOnly: true),
                                           config: VirtioBlockConfig(capacityBytes: 4096, readOnly: true), id: "ABCDEFGHIJKLMNOPQRST")
        let wide = try b.chain(type: T.getID, inLengths: [8, 24])
        #expect(full.handle(wide, memory: b.memory) == BlockCompletion(status: .ok, bytesWritten: 21))
        #expect(try b.bytes(of: [wide[1], wide[2]]) == Array("ABCDEFGHIJKLMNOPQRST".utf8) + [UInt8](repeating: 0xA5, count: 12))
        #expect(try b.status(of: wide) == 0)
        // Short buffer: IOERR.
        let short = try b.chain(type: T.getID, inLengths: [19])
        #expect(named.handle(short, memory: b.memory).status == .ioError)
        #expect(throws: BlockError.idTooLong("ABCDEFGHIJKLMNOPQRSTU")) {
            try BlockRequestHandler(backend: FakeBackend(capacity: 4096), config: VirtioBlockConfig(capacityBytes: 4096, readOnly: false),
                                    id: "ABCDEFGHIJKLMNOPQRSTU")
        }
    }

    // MARK: Malformed chains do not hurt

    @Test func malformedChainsGetAnAnswerOrAreDropped() throws {
        let image = TemporaryImage(size: 64 << 10)
        let original = image.contents(at: 0, count: 64 << 10)
        let device = try handler(image)
        var b = try RequestBuilder()
        // No status byte: dropped, used length 0.
        let header = try b.readable(RequestBuilder.header(type: T.out, sector: 0))
        #expect(device.handle([header], memory: b.memory) == .dropped)
        #expect(device.handle([], memory: b.memory) == .dropped)
        #expect(device.handle([header, BlockSegment(address: GuestAddress(0xFFFF_FFFF_FFFF), length: 1, writable: true)], memory: b.memory) == .dropped)
        // Short header, bad data segment, unknown type: answered.
        let short = [try b.readable([1, 0, 0, 0]), try b.writable(1)]
        #expect(device.handle(short, memory: b.memory) == BlockCompletion(status: .ioError, bytesWritten: 1))
        #expect(try b.status(of: short) == VirtioBlockStatus.ioError.rawValue)
        var outside = try b.chain(type: T.out, out: [sectorPattern(3)])
        outside[1].address = X86MemoryLayout.mmioHoleStart
        #expect(device.handle(outside, memory: b.memory).status == .ioError)
        let scsi = try b.chain(type: 2)
        #expect(device.handle(scsi, memory: b.memory).status == .unsupported)
        #expect(try b.status(of: scsi) == VirtioBlockStatus.unsupported.rawValue)
        #expect(image.contents(at: 0, count: 64 << 10) == original)
    }

    // MARK: Host errors

    @Test func hostIOErrorsBecomeIOERR() throws {
        let backend = FakeBackend(capacity: 1 << 20)
        let device = try BlockRequestHandler(backend: backend, config: VirtioBlockConfig(capacityBytes: 1 << 20, readOnly: false), id: nil)
        var b = try RequestBuilder()
        backend.state.withLock { $0.failNext = .io(operation: "fdatasync", offset: 0, length: 0, errno: .ioError) }
        #expect(device.handle(try b.chain(type: T.flush), memory: b.memory) == BlockCompletion(status: .ioError, bytesWritten: 1))
        #expect(backend.state.withLock { $0.flushes } == 0)
        #expect(device.handle(try b.chain(type: T.flush), memory: b.memory).status == .ok)
        #expect(backend.state.withLock { $0.flushes } == 1)
        backend.state.withLock { $0.failNext = .io(operation: "preadv", offset: 0, length: 512, errno: .ioError) }
        let read = try b.chain(type: T.in, inLengths: [512])
        #expect(device.handle(read, memory: b.memory) == BlockCompletion(status: .ioError, bytesWritten: 1))
    }

    @Test func imageThatShrankUnderUsGivesIOERR() throws {
        let image = TemporaryImage(size: 64 << 10)
        let device = try handler(image)
        #expect(truncate(image.path, 4096) == 0)
        var b = try RequestBuilder()
        #expect(device.handle(try b.chain(type: T.in, sector: 100, inLengths: [512]), memory: b.memory).status == .ioError)
        #expect(device.handle(try b.chain(type: T.in, sector: 0, inLengths: [512]), memory: b.memory).status == .ok)
    }

    // MARK: Opening images

    @Test func openErrorsAreClear() throws {
        #expect(throws: BlockError.openFailed(path: "/nonexistent/disk.img", readOnly: false, errno: .noSuchFileOrDirectory)) {
            try RawDiskImage(path: "/nonexistent/disk.img", readOnly: false)
        }
        #expect(throws: BlockError.notADiskImage(path: "/tmp")) { try RawDiskImage(path: "/tmp", readOnly: true) }
        #expect(throws: BlockError.openFailed(path: "/tmp", readOnly: false, errno: .isDirectory)) {
            try RawDiskImage(path: "/tmp", readOnly: false)
        }
        #expect(throws: BlockError.notADiskImage(path: "/dev/null")) { try RawDiskImage(path: "/dev/null", readOnly: true) }
        let message = BlockError.openFailed(path: "a.img", readOnly: false, errno: .permissionDenied).description
        #expect(message.contains("a.img") && message.contains("readonly"))
    }

    @Test func unwritableImageIsRejectedUnlessReadOnly() throws {
        // Root ignores file permissions, so this needs an unprivileged user.
        guard geteuid() != 0 else { return }
        let image = TemporaryImage(size: 4096)
        #expect(chmod(image.path, 0o444) == 0)
        #expect(throws: BlockError.openFailed(path: image.path, readOnly: false, errno: .permissionDenied)) {
            try RawDiskImage(path: image.path, readOnly: false)
        }
        #expect(try RawDiskImage(path: image.path, readOnly: true).capacity == 4096)
    }

    @Test func aWritableImageIsLockedAgainstASecondOpener() throws {
        let image = TemporaryImage(size: 4096)
        let first = try RawDiskImage(path: image.path, readOnly: false)
        #expect(throws: BlockError.locked(path: image.path)) { try RawDiskImage(path: image.path, readOnly: false) }
        #expect(throws: BlockError.locked(path: image.path)) { try RawDiskImage(path: image.path, readOnly: true) }
        _ = first
        // Read-only openers share.
        let image2 = TemporaryImage(size: 4096)
        let a = try RawDiskImage(path: image2.path, readOnly: true)
        let b = try RawDiskImage(path: image2.path, readOnly: true)
        #expect(a.capacity == b.capacity)
    }

    @Test func partialTrailingSectorIsInvisible() throws {
        let image = TemporaryImage(size: 1000)
        let disk = try RawDiskImage(path: image.path, readOnly: true)
        #expect(disk.capacity == 512)
        #expect(VirtioBlockConfig(capacityBytes: disk.capacity, readOnly: true).capacity == 1)
    }
}
