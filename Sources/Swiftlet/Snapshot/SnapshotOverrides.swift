/// What a restore changes from the saved configuration (Firecracker's `network_overrides`, `vsock_override`),
/// so that many clones of one snapshot can run at once, each with its own host endpoints.
///
/// The guest sees none of it: MAC addresses, the vsock CID and every device's state are the saved ones; only the
/// host side a device is bridged to changes.
public struct SnapshotOverrides: Sendable, Equatable {
    /// One network interface's new host backend, found by its id (`iface_id`; interfaces given on the command
    /// line are `net0`, `net1`, ... by position).
    public struct Network: Sendable, Equatable {
        public var interfaceID: String
        public var backend: NetworkConfiguration.Backend
        public init(interfaceID: String, backend: NetworkConfiguration.Backend) {
            self.interfaceID = interfaceID
            self.backend = backend
        }
    }

    public var networks: [Network]
    /// The vsock device's new host socket path (Firecracker's `vsock_override.uds_path`).
    public var vsockSocketPath: String?
    /// Set the kvm-clock forward by the wall-clock time since the save (see `Machine(restoringFrom:)`).
    public var advanceGuestClock: Bool

    public init(networks: [Network] = [], vsockSocketPath: String? = nil, advanceGuestClock: Bool = false) {
        self.networks = networks
        self.vsockSocketPath = vsockSocketPath
        self.advanceGuestClock = advanceGuestClock
    }
}
