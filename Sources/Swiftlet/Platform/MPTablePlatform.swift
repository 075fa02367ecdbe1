import Boot

/// The MP table Swiftlet writes beside the ACPI tables for every Linux guest: the same machine as the MADT and
/// the DSDT's `_PRT` describe — every vCPU, KVM's IOAPIC, the ISA IRQs, PCI bus 0's INTx routes — for guests that
/// read no ACPI (`acpi=off`, as Firecracker and Kata guests boot, or a kernel built without ACPI).
enum MPTablePlatform {
    static func configuration(vcpuCount: Int, additionalGSIs: [UInt32] = []) -> MPTableConfiguration {
        var config = MPTableConfiguration(vcpuCount: vcpuCount)
        config.pciBusPresent = true
        // A GSI a virtio-mmio device owns (its edge-triggered line) is not also a PCI INTx input: no PCI device
        // raises INTx when the devices are on virtio-mmio, and two entries for one pin would disagree on its trigger.
        config.pciInterrupts = PCIPlatform.acpiDescription.intxRoutes.filter { !additionalGSIs.contains($0.gsi) }.map {
            MPTableConfiguration.PCIInterrupt(device: $0.device, pin: $0.pin, gsi: $0.gsi)
        }
        config.additionalLines = additionalGSIs.map { MPTableConfiguration.InterruptLine(gsi: $0) }
        return config
    }
}
