/// How the virtio devices reach the guest.
///
/// - `pci`: virtio-pci functions on bus 0 with MSI-X (one vector per queue, delivered by irqfd without the VMM on
///   the path). The default for `swiftlet run` and `swiftlet serve`: the stock kernel has virtio_pci, and MSI-X
///   is the faster path (docs/performance.md).
/// - `mmio`: virtio-mmio windows with one interrupt line each, announced on the kernel command line
///   (`virtio_mmio.device=4K@0x...:GSI`) and in the DSDT (`LNRO0005`). Firecracker's transport, and the default in
///   Firecracker mode unless `--enable-pci`: guests booted with `pci=off` still find every device.
public enum VirtioTransport: String, Sendable, Equatable, Codable, CaseIterable {
    case pci
    case mmio

    /// Firecracker's habitual `pci=off` with PCI devices leaves the guest without them: the warning that says
    /// what to do, or nil when there is nothing to warn about. `source` names where pci=off came from (" from
    /// boot_args").
    public static func pciOffWarning(commandLine: String, transport: VirtioTransport, hasDevices: Bool,
                                     remedy: String = "use --transport mmio", source: String = "") -> String? {
        guard transport == .pci, hasDevices, commandLine.split(separator: " ").contains("pci=off") else { return nil }
        return "the kernel command line contains pci=off, but the disks, network interfaces and vsock are virtio-PCI "
            + "devices here: the guest will not see them. Remove pci=off\(source), or \(remedy) (virtio-mmio devices need no PCI)."
    }
}
