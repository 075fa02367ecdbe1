/// `noapic` on a kernel command line that also lets the guest read ACPI: a warning that says what to do, or nil.
///
/// Swiftlet's FADT is hardware-reduced (as Firecracker's is), and a hardware-reduced ACPI guest drives no 8259
/// PIC. With `noapic` it then has no interrupt controller at all: measured in the test host, the Debian kernel
/// crashed in its serial probe when the never-programmed PIC delivered IRQ 4 as vector 4. With `acpi=off` the
/// guest reads the MP table and runs its legacy interrupts on the PIC instead (docs/guest-kernel.md).
/// `source` names where the command line came from (" from boot_args").
public func noapicWithoutACPIOffWarning(commandLine: String, source: String = "") -> String? {
    let parameters = commandLine.split(separator: " ")
    guard parameters.contains("noapic"), !parameters.contains("acpi=off") else { return nil }
    return "the kernel command line\(source) contains noapic but not acpi=off: with ACPI the guest drives no 8259 PIC "
        + "(Swiftlet's ACPI is hardware-reduced, as Firecracker's), so noapic leaves it without interrupts and it "
        + "will likely crash while booting. Add acpi=off (the guest then finds its CPUs and interrupts in the MP table), "
        + "or remove noapic."
}
