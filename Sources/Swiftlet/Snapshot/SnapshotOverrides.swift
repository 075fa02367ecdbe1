/// What a restore changes from the saved configuration (Firecracker's `network_overrides`, `vsock_override`, and
/// `drive_overrides` from its pull request #5774), so that many clones of one snapshot can run at once, each with
/// its own host endpoints and its own copy of each read-write disk (an image is locked by the process using it,
/// so two clones cannot share one).
///
/// The guest sees none of it: MAC addresses, the vsock CID, disk serials and every device's state are the saved
/// ones; only the host side a device is bridged to changes.
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

    /// One disk's new image file, found by its id (`drive_id`; disks given on the command line are `drive0`,
    /// `drive1`, ... by position). The file must be a copy of the saved disk as it was at the save: the guest's
    /// page cache and file system still describe that content.
    public struct Drive: Sendable, Equatable {
        public var driveID: String
        public var path: String
        public init(driveID: String, path: String) {
            self.driveID = driveID
            self.path = path
        }
    }

    public var networks: [Network]
    public var drives: [Drive]
    /// The vsock device's new host socket path (Firecracker's `vsock_override.uds_path`).
    public var vsockSocketPath: String?
    /// Set the kvm-clock forward by the wall-clock time since the save (see `Machine(restoringFrom:)`).
    public var advanceGuestClock: Bool

    public init(networks: [Network] = [], drives: [Drive] = [], vsockSocketPath: String? = nil, advanceGuestClock: Bool = false) {
        self.networks = networks
        self.drives = drives
        self.vsockSocketPath = vsockSocketPath
        self.advanceGuestClock = advanceGuestClock
    }
}
