// virtio-console configuration space and feature bits (virtio 1.2 §5.3.3, §5.3.4).
//
//     struct virtio_console_config {
//         le16 cols;          // offset 0, valid with VIRTIO_CONSOLE_F_SIZE
//         le16 rows;          // offset 2, valid with VIRTIO_CONSOLE_F_SIZE
//         le32 max_nr_ports;  // offset 4, valid with VIRTIO_CONSOLE_F_MULTIPORT
//         le32 emerg_wr;      // offset 8, valid with VIRTIO_CONSOLE_F_EMERG_WRITE
//     };
//
// We offer neither SIZE (the guest keeps its default 80×25 idea of the terminal; a resize would need config
// change notifications wired to the host's SIGWINCH) nor MULTIPORT (one port, so no control queues: exactly
// two queues, receiveq 0 and transmitq 1, §5.3.2). We do offer EMERG_WRITE: writing a character to emerg_wr
// prints it without any queue set up, which early-boot consoles use.

/// Feature bits of virtio-console (§5.3.3).
public enum VirtioConsoleFeature {
    /// VIRTIO_CONSOLE_F_SIZE: cols and rows are valid.
    public static let size: UInt64 = 1 << 0
    /// VIRTIO_CONSOLE_F_MULTIPORT: several ports and the control queues. Not offered.
    public static let multiport: UInt64 = 1 << 1
    /// VIRTIO_CONSOLE_F_EMERG_WRITE: emerg_wr is valid.
    public static let emergencyWrite: UInt64 = 1 << 2
}

/// The layout of `struct virtio_console_config` (§5.3.4).
public enum VirtioConsoleConfiguration {
    public static let columnsOffset = 0
    public static let rowsOffset = 2
    public static let maximumPortsOffset = 4
    public static let emergencyWriteOffset = 8
    public static let size = 12

    /// What the driver reads: no size, one port (only meaningful with MULTIPORT, harmless otherwise), and
    /// emerg_wr reading 0 (the spec gives it no read value; it is a write-only doorbell).
    static func initialSpace() -> ConfigurationSpace {
        var space = ConfigurationSpace(size: size)
        space.set(UInt16(0), at: columnsOffset)
        space.set(UInt16(0), at: rowsOffset)
        space.set(UInt32(1), at: maximumPortsOffset)
        return space
    }
}
