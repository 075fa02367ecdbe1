/// The I/O ports through which the guest powers off and resets the VM, as the FADT declares them, and what
/// the guest writes there. The VMM's port device (one small device on the PIO bus) implements exactly this.
///
/// Swiftlet's FADT sets HW_REDUCED_ACPI (ACPI 6.5 §4.1): there is no PM1 event/control block, no SCI, no
/// PM timer. A hardware-reduced platform powers off through the FADT's SLEEP_CONTROL_REG and
/// SLEEP_STATUS_REG (§4.8.3.7) and resets through RESET_REG (§4.8.3.6). All three are one-byte I/O ports in
/// one 4-port block, 0x600-0x603 by default:
///
/// | port        | register           | guest writes                        | guest reads             |
/// |-------------|--------------------|-------------------------------------|-------------------------|
/// | base + 0    | SLEEP_CONTROL_REG  | `SLP_TYP << 2 | SLP_EN (0x20)`      | (nothing; answer 0)     |
/// | base + 1    | SLEEP_STATUS_REG   | 0x80 (WAK_STS, write-1-to-clear)    | WAK_STS in bit 7 (0)    |
/// | base + 2    | RESET_REG          | RESET_VALUE (0x01)                  | (nothing; answer 0)     |
/// | base + 3    | reserved           | ignore                              | 0                       |
///
/// **Power-off** (`poweroff`, `halt -p`): Linux evaluates `\_S5_` from the DSDT — `Package () {5, 0}`, so
/// SLP_TYP is 5 — then, in ACPICA's `acpi_hw_extended_sleep()`, first writes 0x80 to SLEEP_STATUS_REG to
/// clear WAK_STS, then writes `(5 << 2) | 0x20` = **0x34** to SLEEP_CONTROL_REG. The VMM must end the VM
/// on that write: afterwards the guest only polls SLEEP_STATUS_REG for WAK_STS, forever. Test with
/// `request(forWrite:toPort:)` == `.powerOff`, which accepts any write with SLP_EN set and SLP_TYP 5.
/// (Linux only offers ACPI power-off at all when `\_S5_` exists and both sleep registers are non-zero.)
///
/// **Reset** (`reboot`, and `panic=` reboots): with `reboot=a` on the kernel command line Linux checks FADT
/// RESET_REG_SUP and writes RESET_VALUE, **0x01**, to RESET_REG as one byte (`acpi_reboot()`); if the VM
/// is still running afterwards it tries the keyboard controller (0xFE to port 0x64), ACPI once more, then
/// others. **The VMM must pass `reboot=a` (or `reboot=k` to use an i8042):** without a `reboot=` option,
/// x86 Linux on a hardware-reduced platform picks EFI reboot (`reboot_init()`: `efi_reboot_required()` is
/// true when HW_REDUCED_ACPI is set), which does nothing without EFI, and then falls back to a real-mode
/// jump to the BIOS reset vector 0xFFFF0 — where a VMM without firmware has no code. Measured with the
/// Debian 6.1 cloud kernel: `/sys/kernel/reboot/type` reads `efi` by default and `acpi` with `reboot=a`,
/// and only with `reboot=a` does the byte 0x01 reach port 0x602.
public struct ACPIPowerRegisters: Sendable, Equatable {
    /// First port of the block; the default, 0x600, sits outside every legacy PC device (and outside the
    /// ACPICA "protected ports" list), below where a PCI I/O window would usually start (0x1000).
    public var basePort: UInt16
    /// The byte the guest writes to RESET_REG to reset (FADT RESET_VALUE).
    public var resetValue: UInt8

    public static let defaultBasePort: UInt16 = 0x600
    /// Number of ports the block occupies, starting at `basePort`.
    public static let portCount: UInt16 = 4

    public init(basePort: UInt16 = ACPIPowerRegisters.defaultBasePort, resetValue: UInt8 = 0x01) {
        self.basePort = basePort
        self.resetValue = resetValue
    }

    public var sleepControlPort: UInt16 { basePort }
    public var sleepStatusPort: UInt16 { basePort &+ 1 }
    public var resetPort: UInt16 { basePort &+ 2 }
    /// The ports to register on the PIO bus (cut at 0xFFFF for a base that `validate()` would reject).
    public var ports: ClosedRange<UInt16> {
        let (last, overflow) = basePort.addingReportingOverflow(ACPIPowerRegisters.portCount - 1)
        return basePort...(overflow ? .max : last)
    }

    // Bits of the sleep registers (ACPI 6.5 §4.8.3.7, Tables 4.20 and 4.21).

    /// SLEEP_CONTROL_REG bits 2-4: SLP_TYP, the value from the `\_Sx_` package of the state to enter.
    public static let sleepTypeShift: UInt8 = 2
    public static let sleepTypeMask: UInt8 = 0x1C
    /// SLEEP_CONTROL_REG bit 5: SLP_EN, "enter the sleep state now".
    public static let sleepEnable: UInt8 = 0x20
    /// SLEEP_STATUS_REG bit 7: WAK_STS, set by hardware on wake; written as 1 to clear.
    public static let wakeStatus: UInt8 = 0x80
    /// SLP_TYP of S5 (soft-off) as the DSDT's `\_S5_` package declares it.
    public static let s5SleepType: UInt8 = 5
    /// The exact byte Linux writes to SLEEP_CONTROL_REG to power off: 0x34.
    public static let powerOffValue: UInt8 = s5SleepType << sleepTypeShift | sleepEnable

    /// What the guest asks for with a write to one of the ports.
    public enum Request: Sendable, Equatable {
        case powerOff
        case reset
    }

    /// Decodes a one-byte guest write; nil for writes that ask for nothing (clearing WAK_STS, sleep states
    /// other than S5, other values, other ports).
    public func request(forWrite value: UInt8, toPort port: UInt16) -> Request? {
        switch port {
        case sleepControlPort:
            let sleepType = (value & ACPIPowerRegisters.sleepTypeMask) >> ACPIPowerRegisters.sleepTypeShift
            let enabled = value & ACPIPowerRegisters.sleepEnable != 0
            return enabled && sleepType == ACPIPowerRegisters.s5SleepType ? .powerOff : nil
        case resetPort:
            return value == resetValue ? .reset : nil
        default:
            return nil
        }
    }

    func validate() throws(ACPIError) {
        guard basePort != 0, UInt32(basePort) + UInt32(ACPIPowerRegisters.portCount) <= 0x1_0000 else {
            throw .invalidPowerRegisterPort(basePort)
        }
    }
}
