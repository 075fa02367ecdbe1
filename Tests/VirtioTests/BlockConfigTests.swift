// The virtio-blk configuration space (virtio 1.2 §5.2.4) byte by byte, driver reads of any offset and width, and
// the feature bits the device offers.

import Testing

@testable import Virtio

@Suite struct BlockConfigTests {
    private func le(_ bytes: [UInt8], _ offset: Int, _ width: Int) -> UInt64 {
        (0..<width).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
    }

    @Test func fieldsSitAtTheirSpecOffsets() {
        var config = VirtioBlockConfig(capacityBytes: 0x1_2345_6000, readOnly: false, queueSize: 128, numQueues: 4)
        config.geometry = .init(cylinders: 0x0102, heads: 0x03, sectors: 0x04)
        config.topology = .init(physicalBlockExponent: 3, alignmentOffset: 1, minIOSize: 0x0506, optIOSize: 0x0708_090A)
        config.blkSize = 4096
        let bytes = config.bytes
        #expect(bytes.count == 60)
        #expect(le(bytes, 0, 8) == 0x1_2345_6000 / 512)  // capacity, in sectors
        #expect(le(bytes, 8, 4) == 1 << 20)  // size_max
        #expect(le(bytes, 12, 4) == 126)  // seg_max = queue size - header - status
        #expect(le(bytes, 16, 2) == 0x0102)  // geometry.cylinders
        #expect(bytes[18] == 3 && bytes[19] == 4)  // heads, sectors
        #expect(le(bytes, 20, 4) == 4096)  // blk_size
        #expect(bytes[24] == 3 && bytes[25] == 1)  // physical_block_exp, alignment_offset
        #expect(le(bytes, 26, 2) == 0x0506 && le(bytes, 28, 4) == 0x0708_090A)  // min_io_size, opt_io_size
        #expect(bytes[32] == 1 && bytes[33] == 0)  // writeback, unused0
        #expect(le(bytes, 34, 2) == 4)  // num_queues
        #expect(le(bytes, 36, 4) == 0xFFFF_FFFF)  // max_discard_sectors
        #expect(le(bytes, 40, 4) == 32)  // max_discard_seg
        #expect(le(bytes, 44, 4) == 8)  // discard_sector_alignment
        #expect(le(bytes, 48, 4) == 0xFFFF_FFFF)  // max_write_zeroes_sectors
        #expect(le(bytes, 52, 4) == 32)  // max_write_zeroes_seg
        #expect(bytes[56] == 1)  // write_zeroes_may_unmap
        #expect(bytes[57...] == [0, 0, 0])  // unused1
    }

    @Test func readsOfAnyOffsetAndWidthSurvive() {
        let config = VirtioBlockConfig(capacityBytes: 0x1122_3344_5566_7000, readOnly: false)
        let capacity: UInt64 = 0x1122_3344_5566_7000 >> 9
        #expect(config.read(offset: 0, width: 8) == capacity)
        #expect(config.read(offset: 0, width: 4) == capacity & 0xFFFF_FFFF)  // 32-bit halves, as Linux reads le64
        #expect(config.read(offset: 4, width: 4) == capacity >> 32)
        #expect(config.read(offset: 1, width: 2) == (capacity >> 8) & 0xFFFF)  // unaligned
        #expect(config.read(offset: 12, width: 4) == 254)  // seg_max with the default 256-entry queue
        #expect(config.read(offset: 56, width: 1) == 1)
        // Straddling the end: bytes past it read as zero.
        #expect(config.read(offset: 56, width: 8) == 1)
        #expect(config.read(offset: 60, width: 4) == 0)
        #expect(config.read(offset: 4096, width: 8) == 0)
        #expect(config.read(offset: .max, width: 8) == 0)
        #expect(config.read(offset: .max - 2, width: 8) == 0)
        // Odd widths: harmless.
        #expect(config.read(offset: 0, width: 0) == 0)
        #expect(config.read(offset: 0, width: -1) == 0)
        #expect(config.read(offset: 0, width: 9) == 0)
        #expect(config.read(offset: 0, width: 3) == capacity & 0xFF_FFFF)
    }

    @Test func offeredFeatures() {
        let f = VirtioBlockFeature.self
        let writable = VirtioBlockConfig(capacityBytes: 1 << 20, readOnly: false)
        #expect(writable.offeredFeatures == f.sizeMax | f.segMax | f.blockSize | f.flush | f.discard | f.writeZeroes)
        let readOnly = VirtioBlockConfig(capacityBytes: 1 << 20, readOnly: true, numQueues: 2)
        #expect(readOnly.offeredFeatures == f.sizeMax | f.segMax | f.blockSize | f.flush | f.readOnly | f.multiQueue)
        // Bit numbers from §5.2.3.
        #expect(f.sizeMax == 1 << 1 && f.segMax == 1 << 2 && f.readOnly == 1 << 5 && f.blockSize == 1 << 6)
        #expect(f.flush == 1 << 9 && f.topology == 1 << 10 && f.multiQueue == 1 << 12)
        #expect(f.discard == 1 << 13 && f.writeZeroes == 1 << 14)
    }

    @Test func requestLimitsFollowTheNegotiatedFeatures() {
        let config = VirtioBlockConfig(capacityBytes: 1 << 20, readOnly: false)
        let all = config.requestLimits()
        #expect(all.capacitySectors == 2048 && !all.readOnly)
        #expect(all.discard == .init(maxSegments: 32, maxSectors: .max))
        #expect(all.writeZeroes == .init(maxSegments: 32, maxSectors: .max))
        // A driver that declined DISCARD gets UNSUPP for it.
        let noDiscard = config.requestLimits(negotiated: config.offeredFeatures & ~VirtioBlockFeature.discard)
        #expect(noDiscard.discard == nil && noDiscard.writeZeroes != nil)
    }

    @Test func serialIsTwentyBytesNulPadded() throws {
        #expect(try VirtioBlockConfig.serial(for: "vda") == Array("vda".utf8) + [UInt8](repeating: 0, count: 17))
        #expect(try VirtioBlockConfig.serial(for: nil) == [UInt8](repeating: 0, count: 20))
        #expect(try VirtioBlockConfig.serial(for: "12345678901234567890") == Array("12345678901234567890".utf8))
        #expect(throws: BlockError.idTooLong("123456789012345678901")) { try VirtioBlockConfig.serial(for: "123456789012345678901") }
        // Multi-byte UTF-8 counts in bytes: 11 × 2 bytes = 22.
        #expect(throws: BlockError.self) { try VirtioBlockConfig.serial(for: "ééééééééééé") }
    }
}
