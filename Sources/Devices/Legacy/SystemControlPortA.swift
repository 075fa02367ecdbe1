// Port 0x92, "System Control Port A" (PS/2 and later chipsets): bit 1 gates address line 20, bit 0 is a
// self-clearing "fast reset" that pulses the CPU's reset line.
//
// Why model it: real-mode boot code (Linux's arch/x86/boot/a20.c, bootloaders) reads it to enable A20 the fast way
// and must find A20 enabled; firmware and some operating systems reboot by writing bit 0. Under KVM the A20 line
// is always enabled, so bit 1 reads as set whatever is written — which is also what the A20 test in a20.c then
// observes in memory. Linux itself never resets through this port (its reboot= methods are ACPI, the keyboard
// controller, triple fault, BIOS/EFI and 0xCF9), so `onReset` matters only for other guests.
//
// Threads: vCPU threads; the register is guarded by a Mutex, and `onReset` runs after it is released.

import Synchronization

public final class SystemControlPortA: BusDevice {
    public static let port: UInt64 = 0x92

    static let fastReset: UInt8 = 0x01
    static let a20Enabled: UInt8 = 0x02

    /// The register value the guest reads back (bits other than 0 and 1 are stored as written).
    private let value = Mutex<UInt8>(SystemControlPortA.a20Enabled)
    private let onReset: (@Sendable () -> Void)?

    /// - Parameter onReset: called when the guest sets the fast-reset bit; nil ignores such requests.
    public init(onReset: (@Sendable () -> Void)? = nil) {
        self.onReset = onReset
    }

    public func read(offset: UInt64, width: Int) -> UInt64 {
        guard width == 1 else { return .max }
        return UInt64(value.withLock { $0 })
    }

    public func write(offset: UInt64, width: Int, value written: UInt64) {
        guard width == 1 else { return }
        let byte = UInt8(truncatingIfNeeded: written)
        // The reset bit reads back as 0 (the pulse is over by the time anyone could look), A20 always as enabled.
        value.withLock { $0 = (byte & ~Self.fastReset) | Self.a20Enabled }
        if byte & Self.fastReset != 0 { onReset?() }
    }
}
