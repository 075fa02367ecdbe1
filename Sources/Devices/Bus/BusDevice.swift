// The three narrow interfaces between emulated devices and the VMM.
//
// Threads: the VMM calls `BusDevice.read/write` from whichever vCPU thread took the port-I/O or MMIO exit, so
// several vCPUs can be inside one device at once, alongside host threads (stdin feeding a UART, the API asking for
// Ctrl-Alt-Del). Every device therefore guards its registers with its own lock; see each device for its lock order.
// Devices call out to `InterruptLine` and `ConsoleSink` while holding that lock (so that level changes and output
// bytes leave in the order the guest caused them); implementations must never call back into a device.

/// A device on a bus. Offsets are relative to the range the device was registered at; width is 1, 2, 4 or 8
/// bytes (the bus has already checked that `[offset, offset + width)` lies inside that range).
///
/// Reads return the value in the low `width` bytes; the bus masks off anything above, so a byte-wide device may
/// simply answer `.max` for "nothing here". Writes carry the value in the low `width` bytes.
public protocol BusDevice: AnyObject, Sendable {
    func read(offset: UInt64, width: Int) -> UInt64
    func write(offset: UInt64, width: Int, value: UInt64)
}

/// One interrupt input of the platform's interrupt controllers (an ISA IRQ line here). The VMM maps it to
/// `KVM_IRQ_LINE`. Devices call `setLevel` only when their output level changes; an edge-triggered input (the
/// legacy ISA IRQs are) then sees exactly one rising edge per newly pending condition.
public protocol InterruptLine: Sendable {
    func setLevel(_ asserted: Bool)
}

/// Where a console device's output goes (the VMM's stdout, a log file, a test buffer). Called once per byte the
/// guest transmits, from a vCPU thread, with the device lock held: it must not block for long and must not call
/// back into the device.
public protocol ConsoleSink: Sendable {
    func write(_ byte: UInt8)
}
