/// A PCI function on the root bus: what `PCIRoot` needs from a device model (the host bridge, and the virtio-pci
/// transport later).
///
/// Threads: every method may be called from any vCPU thread, several at once, so implementations keep their
/// `PCIConfigurationSpace` and other state behind their own lock. Configuration accesses arrive with the root's
/// configuration lock held (lock order: PCIRoot configuration → device); BAR accesses arrive without any root
/// lock. A device never calls back into the root.
public protocol PCIDevice: AnyObject, Sendable {
    /// A configuration read of `width` (1, 2 or 4) bytes at `offset` (0-4095). Implementations normally answer
    /// from `PCIConfigurationSpace.read`, which already refuses malformed accesses.
    func readConfiguration(offset: Int, width: Int) -> UInt32
    /// A configuration write. After it the root reads `decodedBARs` to find BARs the guest moved, enabled or
    /// disabled; a device with MSI-X also passes message-control changes to its `MSIXVectors` here.
    func writeConfiguration(offset: Int, width: Int, value: UInt32)
    /// The BARs the function decodes now (`PCIConfigurationSpace.decodedBARs`).
    var decodedBARs: [PCIBARMapping] { get }
    /// A guest access inside BAR `index`, at `offset` from the BAR's base, of 1, 2, 4 or 8 bytes that lie
    /// entirely inside the BAR (the root checks).
    func readBAR(_ index: Int, offset: UInt64, width: Int) -> UInt64
    func writeBAR(_ index: Int, offset: UInt64, width: Int, value: UInt64)
}

/// Why the PCI topology could not be built. All are VMM configuration mistakes found before the guest runs.
public enum PCIError: Error, Equatable, CustomStringConvertible {
    /// Another function is already attached at that address.
    case addressInUse(PCIAddress)
    /// Only bus 0 exists (there are no PCI-to-PCI bridges).
    case busNotPresent(PCIAddress)
    /// All 32 device numbers of bus 0 are taken.
    case noFreeDevice
    /// A BAR of `size` bytes does not fit what is left of the named window.
    case windowExhausted(window: String, size: UInt64)
    /// The layout is inconsistent (overlapping windows, an ECAM base that is not 1 MiB aligned, ...).
    case invalidLayout(String)

    public var description: String {
        switch self {
        case let .addressInUse(address): return "PCI: \(address) is already in use"
        case let .busNotPresent(address): return "PCI: cannot attach \(address): only bus 0 exists"
        case .noFreeDevice: return "PCI: all 32 device numbers on bus 0 are in use"
        case let .windowExhausted(window, size):
            return "PCI: no room for a BAR of 0x\(String(size, radix: 16)) bytes in the \(window) window"
        case let .invalidLayout(reason): return "PCI: invalid layout: \(reason)"
        }
    }
}
