import ACPI
import Devices
import GuestMemory

/// PCI: one host bridge with bus 0, reached through configuration mechanism #1 (ports 0xCF8-0xCFF) and ECAM,
/// with BARs decoded in a 32-bit window of the MMIO hole and an I/O window. The ACPI tables describe the same
/// layout (a PNP0A08 host bridge whose _CRS lists the windows, and an MCFG for ECAM), and the e820 map reserves
/// ECAM, which Linux requires before it uses an MCFG area.
///
///     0xC000_0000-0xDFFF_FFFF  32-bit BAR window       0xE000_0000-0xE00F_FFFF  ECAM (bus 0)
///     ports 0xCF8-0xCFF        config mechanism #1     ports 0xC000-0xFFFF      I/O BAR window
enum PCIPlatform {
    static let layout = PCILayout()

    /// The host bridge as the ACPI tables describe it: must match `layout`.
    static var acpiDescription: PCIHostBridgeDescription {
        PCIHostBridgeDescription(
            busRange: 0...UInt8(layout.busCount - 1), ecamBase: layout.ecamBase,
            memory32Window: UInt32(layout.memory32Window.lowerBound)...UInt32(layout.memory32Window.upperBound),
            memory64Window: layout.memory64Window,
            ioWindow: layout.ioWindow.map { UInt16($0.lowerBound)...UInt16($0.upperBound) })
    }

    /// Ranges the e820 map marks reserved.
    static var reservedRanges: [(start: GuestAddress, size: UInt64)] {
        [(GuestAddress(layout.ecamBase), layout.ecamSize)]
    }

    /// Adds the host bridge's DSDT objects and the MCFG table.
    static func describe(in acpi: inout ACPIConfiguration) {
        acpi.additionalDevices += PCIHostBridgeACPI.devices(acpiDescription)
        acpi.additionalTables.append(PCIHostBridgeACPI.mcfg(acpiDescription, oem: acpi.oem))
    }

    /// Builds the root bus with the host bridge at 00:00.0 and registers its access paths on the buses.
    static func attach(ports: inout PortIOBus, mmio: inout MMIOBus, onBARChange: (@Sendable (PCIBARChange) -> Void)? = nil) throws -> PCIRoot {
        let root = try PCIRoot(layout: layout, onBARChange: onBARChange)
        try root.attach(PCIHostBridge(), at: PCIAddress(device: 0))
        try ports.register(PCIConfigurationPorts(root: root), base: PCILayout.configAddressPort,
                           length: PCILayout.configPortCount, name: "PCI configuration ports")
        try mmio.register(PCIECAM(root: root), base: layout.ecamBase, length: layout.ecamSize, name: "PCI ECAM")
        let window = layout.memory32Window
        try mmio.register(PCIBARWindow(root: root, space: .memory, base: window.lowerBound), base: window.lowerBound,
                          length: window.upperBound - window.lowerBound + 1, name: "PCI 32-bit memory window")
        if let io = layout.ioWindow {
            try ports.register(PCIBARWindow(root: root, space: .io, base: io.lowerBound), base: io.lowerBound,
                               length: io.upperBound - io.lowerBound + 1, name: "PCI I/O window")
        }
        return root
    }
}
