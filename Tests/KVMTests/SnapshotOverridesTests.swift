// What a restore may change in a saved Linux guest's configuration: the host side of each device, never what the
// guest sees. No /dev/kvm needed: this is the step before anything is built.

import Testing

@testable import Swiftlet

@Suite struct SnapshotOverridesTests {
    /// A saved configuration as a snapshot's machine section carries it: two disks (the first given by the API with
    /// a drive_id, the second from the command line, so known by position), one TAP interface, a vsock.
    static var saved: MachineConfiguration {
        var configuration = MachineConfiguration.linux(kernel: "/k")
        configuration.disks = [DiskConfiguration(path: "/images/root.ext4", id: "rootfs"),
                               DiskConfiguration(path: "/images/data.img", readOnly: true)]
        configuration.networks = [NetworkConfiguration(backend: .tap(name: "tap0"), mac: MACAddress(bytes: [2, 0, 0, 0, 0, 1]))]
        configuration.vsock = VsockConfiguration(guestCID: 3, socketPath: "/run/v.sock")
        return configuration
    }

    @Test("disks are found by drive_id or by position (drive1); only their paths change, serials and read-only stay")
    func drivesByIdOrPosition() throws {
        var configuration = Self.saved
        try RestoredSnapshot.apply(SnapshotOverrides(drives: [.init(driveID: "rootfs", path: "/clones/2/root.ext4"),
                                                              .init(driveID: "drive1", path: "/clones/2/data.img")],
                                                     vsockSocketPath: "/run/v2.sock"),
                                   to: &configuration, statePath: "/snap/state")
        #expect(configuration.disks == [DiskConfiguration(path: "/clones/2/root.ext4", id: "rootfs"),
                                        DiskConfiguration(path: "/clones/2/data.img", readOnly: true)])
        #expect(configuration.vsock == VsockConfiguration(guestCID: 3, socketPath: "/run/v2.sock"))
        #expect(configuration.networks == Self.saved.networks)
    }

    @Test("an override naming a disk or interface the snapshot lacks is refused with the ids it has")
    func unknownIdsAreRefused() {
        var configuration = Self.saved
        let drive = #expect(throws: SnapshotError.self) {
            try RestoredSnapshot.apply(SnapshotOverrides(drives: [.init(driveID: "drive0", path: "/x")]), to: &configuration, statePath: "/snap/state")
        }
        #expect(drive?.description.contains("disks rootfs, drive1") == true, "\(String(describing: drive))")
        #expect(drive?.description.contains("/snap/state") == true)
        let network = #expect(throws: SnapshotError.self) {
            try RestoredSnapshot.apply(SnapshotOverrides(networks: [.init(interfaceID: "eth0", backend: .tap(name: "t"))]),
                                       to: &configuration, statePath: "/snap/state")
        }
        #expect(network?.description.contains("interfaces net0") == true, "\(String(describing: network))")
        #expect(configuration == Self.saved, "nothing changed")
    }
}
