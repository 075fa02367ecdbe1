import Devices
import Virtio

/// The machine's devices by the ids the control plane uses, kept after boot so that a request can reach its
/// device: Ctrl-Alt-Del goes to the i8042, `PATCH /drives/{drive_id}` to that disk, metrics read every device.
///
/// Ids: a disk's is its `DiskConfiguration.id` (Firecracker's `drive_id`) or, when none was given, `drive<N>` by
/// position; a network interface's is its `NetworkConfiguration.id` (`iface_id`) or `net<N>`; vsock is `vsock`.
public struct DeviceRegistry: Sendable {
    public struct Drive: Sendable {
        public let id: String
        public let device: BlockDevice
    }

    public struct NetworkInterface: Sendable {
        public let id: String
        public let device: NetDevice
    }

    public let serial: Serial8250
    public let i8042: I8042
    /// In guest order (vda, vdb, ...).
    public let drives: [Drive]
    /// In guest order (eth0, eth1, ...).
    public let networkInterfaces: [NetworkInterface]
    public let vsock: VsockDevice?

    public func drive(id: String) -> BlockDevice? { drives.first { $0.id == id }?.device }
    public func networkInterface(id: String) -> NetDevice? { networkInterfaces.first { $0.id == id }?.device }
}
