#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Swiftlet

/// Everything configured before `InstanceStart`, keyed the way Firecracker's `VmResources` keys it, with
/// Firecracker's rules applied as each resource arrives (so a client learns of a mistake from the PUT that made
/// it, not at start). `machineConfiguration()` turns it into the library's `MachineConfiguration`.
public struct VMResources: Sendable, Equatable {
    /// Largest MMDS document, in bytes of JSON: Firecracker's default `mmds_size_limit` (its HTTP payload limit).
    public static let mmdsSizeLimit = 51200

    public private(set) var bootSource: BootSource?
    public private(set) var machineConfig = MachineConfig()
    /// In the order the guest sees them: the root device first (vda), the others in the order first PUT.
    public private(set) var drives: [Drive] = []
    public private(set) var networkInterfaces: [NetworkInterface] = []
    public var vsock: Vsock?
    public var entropy: Entropy?
    public var logger: LoggerConfig?
    public var metrics: MetricsConfig?
    public private(set) var mmdsConfig: MmdsConfig?
    /// The MMDS document; `.null` until the first `PUT /mmds` (Firecracker's "not initialized").
    public private(set) var mmds: JSONValue = .null

    public init() {}

    // MARK: Applying resources (Firecracker's VmResources::set_* / build_*)

    /// Firecracker opens the kernel and initrd when the boot source is PUT; so does this, to report a wrong
    /// path at once.
    public mutating func setBootSource(_ source: BootSource) throws(APIFault) {
        if let reason = Self.openFailure(source.kernelImagePath, flags: O_RDONLY) {
            throw APIFault(message: "Boot source error: The kernel file cannot be opened: \(reason)")
        }
        if let initrd = source.initrdPath, let reason = Self.openFailure(initrd, flags: O_RDONLY) {
            throw APIFault(message: "Boot source error: The initrd file cannot be opened due to invalid path or invalid permissions. \(reason)")
        }
        if let arguments = source.bootArgs, arguments.utf8.contains(0) {
            throw APIFault(message: "Boot source error: The kernel command line is invalid: it contains a NUL byte")
        }
        bootSource = source
    }

    public mutating func updateMachineConfig(_ update: PartialMachineConfig) throws(APIFault) {
        machineConfig = try machineConfig.applying(update)
    }

    /// Firecracker's `BlockBuilder::insert`: a known `drive_id` is replaced in place; at most one root device,
    /// and it is kept first.
    public mutating func insertDrive(_ drive: Drive) throws(APIFault) {
        if drive.socket != nil {
            throw APIFault(message: "Drive config error: vhost-user block devices (`socket`) are not implemented in this version of Swiftlet.")
        }
        guard let path = drive.pathOnHost else {
            throw APIFault(message: "Drive config error: Unable to create the virtio block device: `path_on_host` is required.")
        }
        if let reason = Self.openFailure(path, flags: drive.readOnly ? O_RDONLY : O_RDWR) {
            throw APIFault(message: "Drive config error: Unable to create the virtio block device: cannot open \(path): \(reason)")
        }
        let position = drives.firstIndex { $0.driveID == drive.driveID }
        let hasRoot = drives.first?.isRootDevice ?? false
        if drive.isRootDevice, hasRoot, position != 0 {
            throw APIFault(message: "Drive config error: A root block device already exists!")
        }
        if let position {
            drives[position] = drive
            if drive.isRootDevice, position != 0 { drives.swapAt(0, position) }
        } else if drive.isRootDevice {
            drives.insert(drive, at: 0)
        } else {
            drives.append(drive)
        }
    }

    /// After boot: the drive's new backing file and/or rate limiter, remembered for `GET /vm/config`.
    mutating func updateDrive(_ update: PartialDrive) throws(APIFault) {
        guard let index = drives.firstIndex(where: { $0.driveID == update.driveID }) else {
            throw APIFault(message: "Drive config error: Unable to patch the block device: no drive has the id `\(update.driveID)`. Please verify the request arguments.")
        }
        if let path = update.pathOnHost { drives[index].pathOnHost = path }
        if let limiter = update.rateLimiter { drives[index].rateLimiter = limiter }
    }

    func drive(id: String) -> Drive? { drives.first { $0.driveID == id } }

    /// Firecracker's `NetBuilder::build`: a known `iface_id` is replaced; a guest MAC may be used once.
    public mutating func insertNetworkInterface(_ interface: NetworkInterface) throws(APIFault) {
        if let mac = interface.guestMac.flatMap(MACAddress.init),
           networkInterfaces.contains(where: { $0.ifaceID != interface.ifaceID && $0.guestMac.flatMap(MACAddress.init) == mac }) {
            throw APIFault(message: "Network config error: The MAC address is already in use: \(mac)")
        }
        if let index = networkInterfaces.firstIndex(where: { $0.ifaceID == interface.ifaceID }) {
            networkInterfaces[index] = interface
        } else {
            networkInterfaces.append(interface)
        }
    }

    /// After boot: new rate limiters (stored; not enforced yet).
    mutating func updateNetworkInterface(_ update: PartialNetworkInterface) throws(APIFault) {
        guard let index = networkInterfaces.firstIndex(where: { $0.ifaceID == update.ifaceID }) else {
            throw APIFault(message: "Network config error: Unable to update the net device: no network interface has the id `\(update.ifaceID)`.")
        }
        if let limiter = update.rxRateLimiter { networkInterfaces[index].rxRateLimiter = limiter }
        if let limiter = update.txRateLimiter { networkInterfaces[index].txRateLimiter = limiter }
    }

    /// Firecracker's checks on `PUT /mmds/config`.
    public mutating func setMmdsConfig(_ config: MmdsConfig) throws(APIFault) {
        guard !config.networkInterfaces.isEmpty else {
            throw APIFault(message: "MMDS config error: The list of network interface IDs that allow forwarding MMDS requests is empty.")
        }
        let known = Set(networkInterfaces.map(\.ifaceID))
        guard config.networkInterfaces.allSatisfy(known.contains) else {
            throw APIFault(message: "MMDS config error: The list of network interface IDs provided contains at least one ID that does not correspond to any existing network interface.")
        }
        guard config.hasValidAddress else { throw APIFault(message: "MMDS config error: The MMDS IPv4 address is not link local.") }
        mmdsConfig = config
    }

    public mutating func putMMDS(_ value: JSONValue) throws(APIFault) {
        try Self.checkMMDSSize(value)
        mmds = value
    }

    /// RFC 7396 merge into the stored document; like Firecracker, refused until a PUT has created one.
    public mutating func patchMMDS(_ patch: JSONValue) throws(APIFault) {
        guard mmds != .null else { throw APIFault(message: "MMDS error: The MMDS data store is not initialized.") }
        let merged = mmds.merging(patch: patch)
        try Self.checkMMDSSize(merged)
        mmds = merged
    }

    private static func checkMMDSSize(_ value: JSONValue) throws(APIFault) {
        let size = (try? WireJSON.encoder().encode(value).count) ?? 0
        if size > mmdsSizeLimit {
            throw APIFault(status: 413, message: "MMDS limit exceeded error: The MMDS patch request doesn't fit.")
        }
    }

    /// nil when `path` opens with `flags`, else the reason the way Rust's io::Error prints it.
    static func openFailure(_ path: String, flags: Int32) -> String? {
        let fd = open(path, flags | O_CLOEXEC)
        if fd >= 0 {
            close(fd)
            return nil
        }
        let code = errno
        return "\(String(cString: strerror(code))) (os error \(code))"
    }

    // MARK: Reporting

    public var fullConfiguration: FullVmConfiguration {
        FullVmConfiguration(bootSource: bootSource ?? BootSource(kernelImagePath: ""), machineConfig: machineConfig, drives: drives,
                            networkInterfaces: networkInterfaces, vsock: vsock, entropy: entropy, logger: logger, metrics: metrics,
                            mmdsConfig: mmdsConfig)
    }
}
