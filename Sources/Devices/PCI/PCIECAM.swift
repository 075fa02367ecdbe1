// The Enhanced Configuration Access Mechanism (PCI Express Base 4.0 §7.2.2): configuration space as memory, 4 KiB
// per function, 1 MiB per bus, from the base the MCFG table announces. Offset bits 27-20 pick the bus, 19-15 the
// device, 14-12 the function, 11-0 the register — which gives access to the extended space above 256 bytes.
//
// Accesses are 1, 2 or 4 bytes and naturally aligned; anything else (an 8-byte or unaligned access, which the
// PCIe spec leaves undefined) is survived as a master abort: reads all ones, writes dropped.

public final class PCIECAM: BusDevice {
    private let root: PCIRoot

    /// Register at `layout.ecamBase`, `layout.ecamSize` bytes.
    public init(root: PCIRoot) { self.root = root }

    public func read(offset: UInt64, width: Int) -> UInt64 {
        guard width <= 4 else { return .max }
        let (function, register) = PCIAddress.decodeECAMOffset(offset)
        return UInt64(root.readConfiguration(function, offset: register, width: width))
    }

    public func write(offset: UInt64, width: Int, value: UInt64) {
        guard width <= 4 else { return }
        let (function, register) = PCIAddress.decodeECAMOffset(offset)
        root.writeConfiguration(function, offset: register, width: width, value: UInt32(truncatingIfNeeded: value))
    }
}
