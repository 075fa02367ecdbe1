// The virtio-mmio register block, version 2 ("modern"; virtio 1.2 §4.2.2, Linux's include/uapi/linux/virtio_mmio.h):
//
//     0x000 MagicValue        R   "virt" (0x74726976)      0x004 Version            R   2
//     0x008 DeviceID          R   virtio device type       0x00c VendorID           R
//     0x010 DeviceFeatures    R   32 bits, picked by       0x014 DeviceFeaturesSel  W
//     0x020 DriverFeatures    W   ... the *Sel registers   0x024 DriverFeaturesSel  W
//     0x030 QueueSel          W                            0x034 QueueNumMax        R   0: no such queue
//     0x038 QueueNum          W                            0x044 QueueReady         RW
//     0x050 QueueNotify       W   the queue's index        0x060 InterruptStatus    R   bit 0 used buffer, bit 1 config
//     0x064 InterruptACK      W                            0x070 Status             RW  device status (§2.1)
//     0x080 QueueDescLow      W   0x084 QueueDescHigh      0x090 QueueDriverLow  W  0x094 QueueDriverHigh
//     0x0a0 QueueDeviceLow    W   0x0a4 QueueDeviceHigh    0x0ac SHMSel W, 0x0b0-0x0bc SHMLen/SHMBase Low/High R
//     0x0c0 QueueReset        RW  (VIRTIO_F_RING_RESET)    0x0fc ConfigGeneration   R
//     0x100 ...               device-specific configuration space (§4.2.2: any width the field has)
//
// §4.2.2.2: "The driver MUST only use 32 bit wide and aligned reads and writes to access the control registers
// described in table 4.1." Anything else below 0x100 is refused: read as 0, written nowhere, logged.

/// One control register of the block (offsets below 0x100).
enum VirtioMMIORegister: UInt64, CaseIterable {
    case magicValue = 0x000
    case version = 0x004
    case deviceID = 0x008
    case vendorID = 0x00C
    case deviceFeatures = 0x010
    case deviceFeaturesSel = 0x014
    case driverFeatures = 0x020
    case driverFeaturesSel = 0x024
    case queueSel = 0x030
    case queueNumMax = 0x034
    case queueNum = 0x038
    case queueReady = 0x044
    case queueNotify = 0x050
    case interruptStatus = 0x060
    case interruptACK = 0x064
    case status = 0x070
    case queueDescLow = 0x080
    case queueDescHigh = 0x084
    case queueDriverLow = 0x090
    case queueDriverHigh = 0x094
    case queueDeviceLow = 0x0A0
    case queueDeviceHigh = 0x0A4
    case shmSel = 0x0AC
    case shmLenLow = 0x0B0
    case shmLenHigh = 0x0B4
    case shmBaseLow = 0x0B8
    case shmBaseHigh = 0x0BC
    case queueReset = 0x0C0
    case configGeneration = 0x0FC

    /// The register a 32-bit aligned access at `offset` names, or nil (a hole, or an access the spec forbids).
    static func at(offset: UInt64, width: Int) -> VirtioMMIORegister? {
        guard width == 4, offset % 4 == 0 else { return nil }
        return VirtioMMIORegister(rawValue: offset)
    }
}

/// Where things are in a virtio-mmio device's window, and the values it identifies itself with.
public enum VirtioMMIOLayout {
    /// Each device has a 4 KiB window (what Firecracker gives, and `virtio_mmio.device=4K@...` says).
    public static let windowSize: UInt64 = 0x1000
    /// QueueNotify: the VMM registers one ioeventfd per queue here, matching the queue index written.
    public static let queueNotifyOffset: UInt64 = VirtioMMIORegister.queueNotify.rawValue
    /// Device configuration space starts here (§4.2.2).
    public static let configurationOffset: UInt64 = 0x100
    /// The most configuration space a window holds.
    public static let maximumConfigurationSize = Int(windowSize - configurationOffset)

    /// "virt", little-endian (§4.2.2).
    public static let magicValue: UInt32 = 0x7472_6976
    /// Version 2: the modern register layout. Version 1 (legacy, QueuePFN) is not offered.
    public static let version: UInt32 = 2
    /// VendorID: "SWLT", little-endian. Drivers match on DeviceID alone (Linux binds VIRTIO_DEV_ANY_ID vendors).
    public static let vendorID: UInt32 = 0x544C_5753

    /// InterruptStatus bits (§4.2.2).
    public static let interruptUsedBuffer: UInt32 = 1 << 0
    public static let interruptConfigurationChange: UInt32 = 1 << 1
    static let interruptBits = interruptUsedBuffer | interruptConfigurationChange

    /// SHMLen/SHMBase of a region that does not exist: all ones (§4.2.2, "Reading from a non-existent region
    /// results in a length of -1"). These devices have no shared memory regions.
    static let noSharedMemory: UInt32 = 0xFFFF_FFFF
}
