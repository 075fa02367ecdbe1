/// One window of BAR space on a bus: the VMM registers one over each window of the layout (the 32-bit and
/// 64-bit memory windows on the MMIO bus, the I/O window on the port bus), and every access is passed to the
/// function whose BAR decodes that address now (see `PCIRoot`). Nothing decoding there reads all ones and drops
/// writes: a master abort, as on hardware.
public final class PCIBARWindow: BusDevice {
    private let root: PCIRoot
    private let space: PCIBARSpace
    private let base: UInt64

    /// `base` must be the address the window is registered at on the bus.
    public init(root: PCIRoot, space: PCIBARSpace, base: UInt64) {
        self.root = root
        self.space = space
        self.base = base
    }

    public func read(offset: UInt64, width: Int) -> UInt64 {
        root.readBAR(space, address: base &+ offset, width: width) ?? .max
    }

    public func write(offset: UInt64, width: Int, value: UInt64) {
        root.writeBAR(space, address: base &+ offset, width: width, value: value)
    }
}
