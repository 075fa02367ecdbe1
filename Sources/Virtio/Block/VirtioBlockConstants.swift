// Numbers of the virtio block device (virtio 1.2 §5.2), named as the spec and <linux/virtio_blk.h> name them.
//
// A request is a descriptor chain holding, in order (§5.2.6):
//   struct virtio_blk_req {
//       le32 type;          // VIRTIO_BLK_T_*
//       le32 reserved;      // "ioprio" in legacy drivers; ignored
//       le64 sector;        // in 512-byte units, whatever blk_size says
//       u8   data[];        // device-readable for OUT/DISCARD/WRITE_ZEROES, device-writable for IN/GET_ID
//       u8   status;        // device-writable: VIRTIO_BLK_S_*
//   };

/// Request types (`virtio_blk_req.type`, §5.2.6).
public enum VirtioBlockRequestType {
    public static let `in`: UInt32 = 0  // VIRTIO_BLK_T_IN: read sectors into the data buffers
    public static let out: UInt32 = 1  // VIRTIO_BLK_T_OUT: write the data buffers to sectors
    public static let flush: UInt32 = 4  // VIRTIO_BLK_T_FLUSH: make completed writes durable
    public static let getID: UInt32 = 8  // VIRTIO_BLK_T_GET_ID: 20-byte device serial
    public static let getLifetime: UInt32 = 10  // VIRTIO_BLK_T_GET_LIFETIME (not offered)
    public static let discard: UInt32 = 11  // VIRTIO_BLK_T_DISCARD
    public static let writeZeroes: UInt32 = 13  // VIRTIO_BLK_T_WRITE_ZEROES
    public static let secureErase: UInt32 = 14  // VIRTIO_BLK_T_SECURE_ERASE (not offered)
}

/// The status byte the device writes last (§5.2.6).
public enum VirtioBlockStatus: UInt8, Sendable, Equatable, CustomStringConvertible {
    case ok = 0  // VIRTIO_BLK_S_OK
    case ioError = 1  // VIRTIO_BLK_S_IOERR
    case unsupported = 2  // VIRTIO_BLK_S_UNSUPP

    public var description: String {
        switch self {
        case .ok: "OK"
        case .ioError: "IOERR"
        case .unsupported: "UNSUPP"
        }
    }
}

/// Device-specific feature bits (§5.2.3), as masks over the 64-bit feature word. The transport-independent bits
/// (VIRTIO_F_VERSION_1, ring features) belong to the virtio core, not here.
public enum VirtioBlockFeature {
    public static let sizeMax: UInt64 = 1 << 1  // VIRTIO_BLK_F_SIZE_MAX: size_max is valid
    public static let segMax: UInt64 = 1 << 2  // VIRTIO_BLK_F_SEG_MAX: seg_max is valid
    public static let geometry: UInt64 = 1 << 4  // VIRTIO_BLK_F_GEOMETRY (not offered)
    public static let readOnly: UInt64 = 1 << 5  // VIRTIO_BLK_F_RO: writes fail with IOERR
    public static let blockSize: UInt64 = 1 << 6  // VIRTIO_BLK_F_BLK_SIZE: blk_size is valid
    public static let flush: UInt64 = 1 << 9  // VIRTIO_BLK_F_FLUSH: the device has a write cache; FLUSH works
    public static let topology: UInt64 = 1 << 10  // VIRTIO_BLK_F_TOPOLOGY: topology is valid
    public static let configWCE: UInt64 = 1 << 11  // VIRTIO_BLK_F_CONFIG_WCE (not offered: writeback is fixed)
    public static let multiQueue: UInt64 = 1 << 12  // VIRTIO_BLK_F_MQ: num_queues is valid
    public static let discard: UInt64 = 1 << 13  // VIRTIO_BLK_F_DISCARD
    public static let writeZeroes: UInt64 = 1 << 14  // VIRTIO_BLK_F_WRITE_ZEROES
    public static let lifetime: UInt64 = 1 << 15  // VIRTIO_BLK_F_LIFETIME (not offered)
    public static let secureErase: UInt64 = 1 << 16  // VIRTIO_BLK_F_SECURE_ERASE (not offered)
}

public enum VirtioBlock {
    /// The unit of `sector` and `num_sectors`: always 512 bytes, independent of blk_size (§5.2.6).
    public static let sectorSize: UInt64 = 512
    public static let sectorShift: UInt64 = 9
    /// Size of the request header (type, reserved, sector).
    public static let headerSize: UInt64 = 16
    /// Size of one `virtio_blk_discard_write_zeroes` entry: le64 sector, le32 num_sectors, le32 flags.
    public static let rangeEntrySize: UInt64 = 16
    /// VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP: bit 0 of an entry's flags; bits 31:1 are reserved.
    public static let unmapFlag: UInt32 = 1
    /// VIRTIO_BLK_ID_BYTES: the GET_ID answer is exactly this long (NUL-padded; not terminated when 20 long).
    public static let idBytes = 20
}
