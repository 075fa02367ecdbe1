// virtio-blk request parsing (virtio 1.2 §5.2.6): which chains are accepted, and the exact rule each malformed
// chain breaks. Chains are built in guest memory the way Linux's virtio_blk builds them, then bent out of shape.

import GuestMemory
import Testing

@testable import Virtio

private typealias T = VirtioBlockRequestType

/// A 1 MiB disk (2048 sectors) offering discard and write zeroes, 4 ranges of at most 64 sectors each.
private let limits = BlockRequestLimits(
    capacitySectors: 2048, readOnly: false,
    discard: .init(maxSegments: 4, maxSectors: 64), writeZeroes: .init(maxSegments: 4, maxSectors: 64))

private func parse(_ segments: [BlockSegment], _ builder: RequestBuilder, limits: BlockRequestLimits = limits) -> Result<BlockRequest, BlockRequestFailure> {
    Result { () throws(BlockRequestFailure) in try BlockRequest.parse(segments, memory: builder.memory, limits: limits) }
}

/// The error a chain is refused with (nil when accepted).
private func refusal(_ segments: [BlockSegment], _ builder: RequestBuilder, limits: BlockRequestLimits = limits) -> BlockRequestError? {
    if case let .failure(failure) = parse(segments, builder, limits: limits) { return failure.reason }
    return nil
}

@Suite struct BlockRequestParsingTests {
    // MARK: Well-formed requests

    @Test func readInLinuxLayout() throws {
        var b = try RequestBuilder()
        let chain = try b.chain(type: T.in, sector: 10, inLengths: [512, 1024])
        let request = try parse(chain, b).get()
        #expect(request.operation == .read(sector: 10, into: [chain[1], chain[2]]))
        #expect(request.statusAddress == chain[3].address)
    }

    @Test func writeCarriesTheReadableDataSegments() throws {
        var b = try RequestBuilder()
        let chain = try b.chain(type: T.out, sector: 2047, out: [[UInt8](repeating: 1, count: 512)])
        #expect(try parse(chain, b).get().operation == .write(sector: 2047, from: [chain[1]]))
    }

    @Test func headerMaySpanSegmentsAndShareOneWithData() throws {
        // VIRTIO_F_ANY_LAYOUT framing: 10 header bytes, then 6 header bytes + 512 data bytes in one buffer.
        var b = try RequestBuilder()
        let header = RequestBuilder.header(type: T.out, sector: 3)
        let first = try b.readable(Array(header[0..<10]))
        let second = try b.readable(Array(header[10...]) + [UInt8](repeating: 9, count: 512))
        let status = try b.writable(1)
        let request = try parse([first, second, status], b).get()
        #expect(request.operation == .write(sector: 3, from: [BlockSegment(address: second.address.adding(6), length: 512, writable: false)]))
    }

    @Test func statusMayShareTheLastSegmentWithReadData() throws {
        var b = try RequestBuilder()
        let header = try b.readable(RequestBuilder.header(type: T.in, sector: 0))
        let dataAndStatus = try b.writable(513)
        let request = try parse([header, dataAndStatus], b).get()
        #expect(request.operation == .read(sector: 0, into: [BlockSegment(address: dataAndStatus.address, length: 512, writable: true)]))
        #expect(request.statusAddress == dataAndStatus.address.adding(512))
    }

    @Test func flushGetIDDiscardWriteZeroes() throws {
        var b = try RequestBuilder()
        #expect(try parse(b.chain(type: T.flush), b).get().operation == .flush)
        let getID = try b.chain(type: T.getID, inLengths: [20])
        #expect(try parse(getID, b).get().operation == .getID(into: [getID[1]]))
        let discard = try b.chain(type: T.discard, out: [RequestBuilder.range(sector: 8, count: 8) + RequestBuilder.range(sector: 100, count: 64)])
        #expect(try parse(discard, b).get().operation == .discard([
            BlockRange(sector: 8, sectorCount: 8, unmap: false), BlockRange(sector: 100, sectorCount: 64, unmap: false),
        ]))
        let zeroes = try b.chain(type: T.writeZeroes, out: [RequestBuilder.range(sector: 1984, count: 64, flags: 1)])
        #expect(try parse(zeroes, b).get().operation == .writeZeroes([BlockRange(sector: 1984, sectorCount: 64, unmap: true)]))
    }

    @Test func reservedHeaderFieldIsIgnored() throws {
        var b = try RequestBuilder()
        let chain = [try b.readable(RequestBuilder.header(type: T.flush, sector: 0, reserved: 0xFFFF_FFFF)), try b.writable(1)]
        #expect(try parse(chain, b).get().operation == .flush)
    }

    // MARK: Chains without a status byte: dropped, nothing written

    @Test func chainsWithoutStatusByteAreDropped() throws {
        var b = try RequestBuilder()
        let header = try b.readable(RequestBuilder.header(type: T.flush, sector: 0))
        #expect(parse([], b) == .failure(BlockRequestFailure(.emptyChain, statusAddress: nil)))
        #expect(parse([header], b) == .failure(BlockRequestFailure(.missingStatusByte, statusAddress: nil)))
        let empty = BlockSegment(address: try b.allocate(1), length: 0, writable: true)
        #expect(parse([header, empty], b) == .failure(BlockRequestFailure(.missingStatusByte, statusAddress: nil)))
        let inHole = BlockSegment(address: X86MemoryLayout.mmioHoleStart, length: 1, writable: true)
        #expect(parse([header, inHole], b) == .failure(BlockRequestFailure(.statusOutsideGuestMemory(inHole.address), statusAddress: nil)))
        let wraps = BlockSegment(address: GuestAddress(UInt64.max), length: 2, writable: true)
        #expect(refusal([header, wraps], b) == .statusOutsideGuestMemory(wraps.address))
        #expect(BlockRequestError.missingStatusByte.isUnanswerable)
    }

    // MARK: Layout errors, answered with IOERR

    @Test func headerShorterThan16Bytes() throws {
        var b = try RequestBuilder()
        let short = try b.readable(Array(RequestBuilder.header(type: T.flush, sector: 0)[0..<15]))
        let chain = [short, try b.writable(1)]
        #expect(parse(chain, b) == .failure(BlockRequestFailure(.headerTooShort(readableBytes: 15), statusAddress: chain[1].address)))
        #expect(refusal([try b.writable(16), try b.writable(1)], b) == .headerTooShort(readableBytes: 0))
        #expect(BlockRequestError.headerTooShort(readableBytes: 0).status == .ioError)
    }

    @Test func readableSegmentAfterWritableOne() throws {
        var b = try RequestBuilder()
        var chain = try b.chain(type: T.in, inLengths: [512])
        chain.insert(try b.readable([0]), at: 2)
        #expect(refusal(chain, b) == .readableAfterWritable(index: 2))
    }

    @Test func segmentOutsideGuestMemory() throws {
        var b = try RequestBuilder()
        var chain = try b.chain(type: T.in, inLengths: [512])
        chain[1].address = GuestAddress(0xBFFF_FF00)  // runs from the end of low RAM into the MMIO hole
        #expect(refusal(chain, b) == .segmentOutsideGuestMemory(index: 1, address: chain[1].address, length: 512))
        chain[1].address = GuestAddress(UInt64.max - 10)
        #expect(refusal(chain, b) == .segmentOutsideGuestMemory(index: 1, address: chain[1].address, length: 512))
        // Zero-length segments are harmless wherever they point.
        chain[1] = BlockSegment(address: GuestAddress(UInt64.max), length: 0, writable: true)
        #expect(try parse(chain, b).get().operation == .read(sector: 0, into: []))
    }

    @Test func dataInTheWrongDirection() throws {
        var b = try RequestBuilder()
        #expect(refusal(try b.chain(type: T.in, out: [[0, 0]], inLengths: [512]), b) == .unexpectedReadableData(type: T.in, bytes: 2))
        #expect(refusal(try b.chain(type: T.out, out: [[UInt8](repeating: 0, count: 512)], inLengths: [512]), b)
            == .unexpectedWritableData(type: T.out, bytes: 512))
        #expect(refusal(try b.chain(type: T.flush, out: [[1]]), b) == .unexpectedReadableData(type: T.flush, bytes: 1))
        #expect(refusal(try b.chain(type: T.flush, inLengths: [8]), b) == .unexpectedWritableData(type: T.flush, bytes: 8))
        #expect(refusal(try b.chain(type: T.getID, out: [[1]], inLengths: [20]), b) == .unexpectedReadableData(type: T.getID, bytes: 1))
        #expect(refusal(try b.chain(type: T.discard, out: [RequestBuilder.range(sector: 0, count: 1)], inLengths: [4]), b)
            == .unexpectedWritableData(type: T.discard, bytes: 4))
    }

    // MARK: Request errors, answered with IOERR

    @Test func dataMustBeWholeSectors() throws {
        var b = try RequestBuilder()
        #expect(refusal(try b.chain(type: T.in, inLengths: [256, 128]), b) == .dataLengthNotSectorMultiple(384))
        #expect(refusal(try b.chain(type: T.out, out: [[UInt8](repeating: 0, count: 513)]), b) == .dataLengthNotSectorMultiple(513))
        // Sector-sized in total is enough; the pieces may be any size.
        #expect(refusal(try b.chain(type: T.in, inLengths: [100, 412]), b) == nil)
    }

    @Test func sectorsMustBeInsideTheDisk() throws {
        var b = try RequestBuilder()
        #expect(refusal(try b.chain(type: T.in, sector: 2047, inLengths: [512]), b) == nil)  // the last sector
        #expect(refusal(try b.chain(type: T.in, sector: 2047, inLengths: [1024]), b)
            == .beyondEndOfDisk(sector: 2047, byteCount: 1024, capacitySectors: 2048))
        #expect(refusal(try b.chain(type: T.out, sector: 2048, out: [[UInt8](repeating: 0, count: 512)]), b)
            == .beyondEndOfDisk(sector: 2048, byteCount: 512, capacitySectors: 2048))
        // sector * 512 and sector + count would overflow 64 bits: still just out of range.
        #expect(refusal(try b.chain(type: T.in, sector: UInt64.max, inLengths: [512]), b)
            == .beyondEndOfDisk(sector: UInt64.max, byteCount: 512, capacitySectors: 2048))
        #expect(refusal(try b.chain(type: T.in, sector: UInt64.max >> 9, inLengths: [512]), b)
            == .beyondEndOfDisk(sector: UInt64.max >> 9, byteCount: 512, capacitySectors: 2048))
        // A zero-length read at the very end is in range.
        #expect(refusal(try b.chain(type: T.in, sector: 2048), b) == nil)
    }

    @Test func readOnlyDiskRefusesEveryWrite() throws {
        var b = try RequestBuilder()
        var readOnly = limits
        readOnly.readOnly = true
        #expect(refusal(try b.chain(type: T.out, out: [[UInt8](repeating: 0, count: 512)]), b, limits: readOnly) == .writeToReadOnlyDisk(type: T.out))
        #expect(refusal(try b.chain(type: T.discard, out: [RequestBuilder.range(sector: 0, count: 1)]), b, limits: readOnly)
            == .writeToReadOnlyDisk(type: T.discard))
        #expect(refusal(try b.chain(type: T.writeZeroes, out: [RequestBuilder.range(sector: 0, count: 1)]), b, limits: readOnly)
            == .writeToReadOnlyDisk(type: T.writeZeroes))
        #expect(refusal(try b.chain(type: T.in, inLengths: [512]), b, limits: readOnly) == nil)
        #expect(refusal(try b.chain(type: T.flush), b, limits: readOnly) == nil)
        #expect(BlockRequestError.writeToReadOnlyDisk(type: T.out).status == .ioError)
    }

    @Test func getIDNeeds20Bytes() throws {
        var b = try RequestBuilder()
        #expect(refusal(try b.chain(type: T.getID, inLengths: [19]), b) == .idBufferTooSmall(19))
        #expect(refusal(try b.chain(type: T.getID, inLengths: [10, 10]), b) == nil)
        #expect(refusal(try b.chain(type: T.getID), b) == .idBufferTooSmall(0))
    }

    @Test func discardPayloadMustBeWhole16ByteEntries() throws {
        var b = try RequestBuilder()
        #expect(refusal(try b.chain(type: T.discard), b) == .rangeListLengthInvalid(0))
        #expect(refusal(try b.chain(type: T.discard, out: [Array(RequestBuilder.range(sector: 0, count: 1)[0..<15])]), b)
            == .rangeListLengthInvalid(15))
        // An entry split across two buffers is fine.
        let entry = RequestBuilder.range(sector: 5, count: 3)
        #expect(try parse(try b.chain(type: T.writeZeroes, out: [Array(entry[0..<7]), Array(entry[7...])]), b).get().operation
            == .writeZeroes([BlockRange(sector: 5, sectorCount: 3, unmap: false)]))
    }

    @Test func rangeLimits() throws {
        var b = try RequestBuilder()
        let five = (0..<5).flatMap { RequestBuilder.range(sector: UInt64($0) * 8, count: 8) }
        #expect(refusal(try b.chain(type: T.discard, out: [five]), b) == .tooManyRanges(count: 5, max: 4))
        #expect(refusal(try b.chain(type: T.writeZeroes, out: [RequestBuilder.range(sector: 0, count: 65)]), b)
            == .rangeTooLarge(sectorCount: 65, max: 64))
        #expect(refusal(try b.chain(type: T.discard, out: [RequestBuilder.range(sector: 2000, count: 49)]), b)
            == .rangeBeyondEndOfDisk(sector: 2000, sectorCount: 49, capacitySectors: 2048))
        #expect(refusal(try b.chain(type: T.discard, out: [RequestBuilder.range(sector: UInt64.max, count: 1)]), b)
            == .rangeBeyondEndOfDisk(sector: UInt64.max, sectorCount: 1, capacitySectors: 2048))
        #expect(BlockRequestError.tooManyRanges(count: 5, max: 4).status == .ioError)
    }

    // MARK: Unsupported, answered with UNSUPP

    @Test func unsupportedTypes() throws {
        var b = try RequestBuilder()
        // SCSI passthrough (2, 3), legacy FLUSH_OUT (5), GET_LIFETIME, SECURE_ERASE, zone ops, the legacy barrier bit.
        for type: UInt32 in [2, 3, 5, 10, 14, 16, 18, 0x8000_0000, 0x8000_0001, .max] {
            let error = refusal(try b.chain(type: type), b)
            #expect(error == .unsupportedType(type))
            #expect(error?.status == .unsupported)
        }
    }

    @Test func discardFlagRules() throws {
        var b = try RequestBuilder()
        // §5.2.6.2: unmap is for WRITE_ZEROES only; reserved bits are refused on both.
        #expect(refusal(try b.chain(type: T.discard, out: [RequestBuilder.range(sector: 0, count: 1, flags: 1)]), b) == .unmapOnDiscard)
        #expect(refusal(try b.chain(type: T.writeZeroes, out: [RequestBuilder.range(sector: 0, count: 1, flags: 2)]), b) == .reservedRangeFlags(2))
        #expect(refusal(try b.chain(type: T.discard, out: [RequestBuilder.range(sector: 0, count: 1, flags: 0x8000_0000)]), b)
            == .reservedRangeFlags(0x8000_0000))
        #expect(BlockRequestError.unmapOnDiscard.status == .unsupported)
        #expect(BlockRequestError.reservedRangeFlags(2).status == .unsupported)
    }

    @Test func discardAndWriteZeroesNeedTheirFeature() throws {
        var b = try RequestBuilder()
        let plain = BlockRequestLimits(capacitySectors: 2048, readOnly: false, discard: nil, writeZeroes: nil)
        #expect(refusal(try b.chain(type: T.discard, out: [RequestBuilder.range(sector: 0, count: 1)]), b, limits: plain)
            == .featureNotOffered(type: T.discard))
        #expect(refusal(try b.chain(type: T.writeZeroes, out: [RequestBuilder.range(sector: 0, count: 1)]), b, limits: plain)
            == .featureNotOffered(type: T.writeZeroes))
        #expect(BlockRequestError.featureNotOffered(type: T.discard).status == .unsupported)
    }

    @Test func failuresCarryTheStatusAddress() throws {
        var b = try RequestBuilder()
        let chain = try b.chain(type: 99)
        #expect(parse(chain, b) == .failure(BlockRequestFailure(.unsupportedType(99), statusAddress: chain.last!.address)))
    }
}
