/// The virtio-blk device configuration space (virtio 1.2 §5.2.4), little-endian, at these byte offsets:
///
///     0  le64 capacity                  disk size in 512-byte sectors (always valid)
///     8  le32 size_max                  largest single data segment, bytes        (VIRTIO_BLK_F_SIZE_MAX)
///    12  le32 seg_max                   most data segments per request            (VIRTIO_BLK_F_SEG_MAX)
///    16  le16 geometry.cylinders                                                  (VIRTIO_BLK_F_GEOMETRY)
///    18  u8   geometry.heads
///    19  u8   geometry.sectors
///    20  le32 blk_size                  logical block size the guest should use   (VIRTIO_BLK_F_BLK_SIZE)
///    24  u8   topology.physical_block_exp  physical block = blk_size << exp       (VIRTIO_BLK_F_TOPOLOGY)
///    25  u8   topology.alignment_offset
///    26  le16 topology.min_io_size      in blocks
///    28  le32 topology.opt_io_size      in blocks
///    32  u8   writeback                 cache mode, writable with CONFIG_WCE (not offered)
///    33  u8   unused0
///    34  le16 num_queues                                                          (VIRTIO_BLK_F_MQ)
///    36  le32 max_discard_sectors                                                 (VIRTIO_BLK_F_DISCARD)
///    40  le32 max_discard_seg
///    44  le32 discard_sector_alignment
///    48  le32 max_write_zeroes_sectors                                            (VIRTIO_BLK_F_WRITE_ZEROES)
///    52  le32 max_write_zeroes_seg
///    56  u8   write_zeroes_may_unmap
///    57  u8   unused1[3]
///    60  (secure-erase and zoned fields follow in 1.2; their features are not offered, so they read as zero)
///
/// The space is read-only here: without VIRTIO_BLK_F_CONFIG_WCE no field is writable, so the transport drops
/// driver writes.
public struct VirtioBlockConfig: Sendable, Equatable {
    public struct Geometry: Sendable, Equatable {
        public var cylinders: UInt16 = 0
        public var heads: UInt8 = 0
        public var sectors: UInt8 = 0
        public init(cylinders: UInt16 = 0, heads: UInt8 = 0, sectors: UInt8 = 0) {
            self.cylinders = cylinders
            self.heads = heads
            self.sectors = sectors
        }
    }

    public struct Topology: Sendable, Equatable {
        public var physicalBlockExponent: UInt8 = 0
        public var alignmentOffset: UInt8 = 0
        public var minIOSize: UInt16 = 0
        public var optIOSize: UInt32 = 0
        public init(physicalBlockExponent: UInt8 = 0, alignmentOffset: UInt8 = 0, minIOSize: UInt16 = 0, optIOSize: UInt32 = 0) {
            self.physicalBlockExponent = physicalBlockExponent
            self.alignmentOffset = alignmentOffset
            self.minIOSize = minIOSize
            self.optIOSize = optIOSize
        }
    }

    /// Bytes of configuration space this device encodes (through unused1).
    public static let size = 60

    public var capacity: UInt64
    public var sizeMax: UInt32
    public var segMax: UInt32
    /// Encoded but not offered (VIRTIO_BLK_F_GEOMETRY is legacy CHS; Linux ignores it for virtio disks).
    public var geometry = Geometry()
    public var blkSize: UInt32 = 512
    /// Encoded; offered only when `offersTopology`.
    public var topology = Topology()
    public var offersTopology = false
    /// 1 = writeback. With FLUSH offered and CONFIG_WCE not, the driver assumes a writeback cache and sends
    /// flushes; the field itself is informational.
    public var writeback: UInt8 = 1
    public var numQueues: UInt16
    public var maxDiscardSectors: UInt32
    public var maxDiscardSeg: UInt32
    public var discardSectorAlignment: UInt32
    public var maxWriteZeroesSectors: UInt32
    public var maxWriteZeroesSeg: UInt32
    public var writeZeroesMayUnmap: UInt8
    /// Offer VIRTIO_BLK_F_RO; also refuses writes in request parsing.
    public var readOnly: Bool
    /// Offer DISCARD / WRITE_ZEROES (never on a read-only disk: they would only fail).
    public var supportsDiscard = true
    public var supportsWriteZeroes = true

    /// A configuration for a disk of `capacityBytes` (a multiple of 512) served through queues of `queueSize`.
    ///
    /// - seg_max is queueSize - 2: a request's chain holds the header and status descriptors besides the data
    ///   (Linux's virtio_blk adds exactly those two to seg_max), and no chain may be longer than the queue (§2.7.5.3).
    /// - size_max 1 MiB: any value works for us (segments are checked against guest RAM, not a bounce buffer);
    ///   it only caps how much Linux merges into one segment.
    /// - discard_sector_alignment 8 sectors (4 KiB): holes are punched in file-system blocks; smaller discards are
    ///   only zeroed by the host, so the guest is told to discard in 4 KiB units.
    /// - 32 ranges per DISCARD / WRITE_ZEROES, up to 2^32 - 1 sectors each (Linux caps segments at 256 anyway).
    public init(capacityBytes: UInt64, readOnly: Bool, queueSize: UInt16 = 256, numQueues: UInt16 = 1) {
        precondition(queueSize >= 3 && numQueues >= 1)
        self.capacity = capacityBytes >> VirtioBlock.sectorShift
        self.sizeMax = 1 << 20
        self.segMax = UInt32(queueSize) - 2
        self.numQueues = numQueues
        self.maxDiscardSectors = UInt32.max
        self.maxDiscardSeg = 32
        self.discardSectorAlignment = 8
        self.maxWriteZeroesSectors = UInt32.max
        self.maxWriteZeroesSeg = 32
        self.writeZeroesMayUnmap = 1
        self.readOnly = readOnly
    }

    /// The device-specific feature bits to offer (§5.2.3). The virtio core adds VIRTIO_F_VERSION_1 and the ring
    /// features.
    public var offeredFeatures: UInt64 {
        var features = VirtioBlockFeature.sizeMax | VirtioBlockFeature.segMax | VirtioBlockFeature.blockSize
            | VirtioBlockFeature.flush
        if offersTopology { features |= VirtioBlockFeature.topology }
        if numQueues > 1 { features |= VirtioBlockFeature.multiQueue }
        if readOnly {
            features |= VirtioBlockFeature.readOnly
        } else {
            if supportsDiscard { features |= VirtioBlockFeature.discard }
            if supportsWriteZeroes { features |= VirtioBlockFeature.writeZeroes }
        }
        return features
    }

    /// What request parsing checks against. Pass the negotiated features to refuse DISCARD/WRITE_ZEROES from a
    /// driver that did not accept them (the default assumes the driver took everything offered).
    public func requestLimits(negotiated features: UInt64? = nil) -> BlockRequestLimits {
        let features = features ?? offeredFeatures
        return BlockRequestLimits(
            capacitySectors: capacity,
            readOnly: readOnly,
            discard: features & VirtioBlockFeature.discard != 0 && !readOnly
                ? .init(maxSegments: maxDiscardSeg, maxSectors: maxDiscardSectors) : nil,
            writeZeroes: features & VirtioBlockFeature.writeZeroes != 0 && !readOnly
                ? .init(maxSegments: maxWriteZeroesSeg, maxSectors: maxWriteZeroesSectors) : nil)
    }

    /// The whole configuration space, byte-exact.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.size)
        func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
            for index in 0..<MemoryLayout<T>.size { out[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
        }
        put(capacity, at: 0)
        put(sizeMax, at: 8)
        put(segMax, at: 12)
        put(geometry.cylinders, at: 16)
        put(geometry.heads, at: 18)
        put(geometry.sectors, at: 19)
        put(blkSize, at: 20)
        put(topology.physicalBlockExponent, at: 24)
        put(topology.alignmentOffset, at: 25)
        put(topology.minIOSize, at: 26)
        put(topology.optIOSize, at: 28)
        put(writeback, at: 32)
        put(numQueues, at: 34)
        put(maxDiscardSectors, at: 36)
        put(maxDiscardSeg, at: 40)
        put(discardSectorAlignment, at: 44)
        put(maxWriteZeroesSectors, at: 48)
        put(maxWriteZeroesSeg, at: 52)
        put(writeZeroesMayUnmap, at: 56)
        return out
    }

    /// A driver read of `width` bytes at `offset`, as a little-endian value. Any offset and width is survived:
    /// bytes past the end of the space read as zero, and widths other than 1...8 read as 0 (the transport decides
    /// which widths are legal; this never traps on a guest's choice).
    public func read(offset: UInt64, width: Int) -> UInt64 {
        guard (1...8).contains(width) else { return 0 }
        let space = bytes
        var value: UInt64 = 0
        for index in 0..<width {
            let (position, overflow) = offset.addingReportingOverflow(UInt64(index))
            if !overflow, position < UInt64(space.count) { value |= UInt64(space[Int(position)]) << (8 * index) }
        }
        return value
    }

    /// The serial GET_ID returns: `id` as UTF-8, NUL-padded to exactly 20 bytes (not NUL-terminated when it is
    /// 20 bytes long, as the spec allows). Throws when `id` is longer than 20 bytes.
    public static func serial(for id: String?) throws(BlockError) -> [UInt8] {
        let utf8 = Array((id ?? "").utf8)
        guard utf8.count <= VirtioBlock.idBytes else { throw .idTooLong(id ?? "") }
        return utf8 + [UInt8](repeating: 0, count: VirtioBlock.idBytes - utf8.count)
    }
}
