import Foundation
import Testing

/// Guests that read no ACPI: booted with `acpi=off` (as Firecracker's and Kata's guests are), they find their
/// CPUs, the IOAPIC and the interrupt routing in Swiftlet's MP table; with `noapic` added they run on the 8259.
/// In the QEMU test host (scripts/testhost), like TestHostBootTests.
///
/// Debian's cloud kernel (the default guest) cannot read MP tables (CONFIG_X86_MPPARSE is off), so the `acpi=off`
/// boot uses Debian's generic kernel — the test host's own, which has it — with the default initramfs (it has no
/// modules for that kernel and skips loading them). With acpi=off the guest cannot power off (that is an ACPI
/// sleep state): it ends with `reboot -f`, which `reboot=k` turns into the i8042 reset that ends Swiftlet's run.
@Suite(.serialized, .enabled(if: TestHost.isPrepared, "run scripts/setup to prepare the test host and guests"))
struct MPTableEndToEndTests {
    @Test("acpi=off, 2 vCPUs: Debian's generic kernel finds our MP table and brings up both CPUs")
    func acpiOffGuestSeesEveryCPUFromTheMPTable() throws {
        let kernel = TestHost.cache + "/testhost/vmlinux"
        let result = try TestHost.run(["swiftlet", "run", "--kernel", kernel, "--initrd", TestHost.guest("initramfs.cpio"),
                                       "--cmdline", "console=ttyS0 reboot=k panic=-1 acpi=off", "--memory", "256M", "--cpus", "2"],
                                      input: "echo cpus=$(nproc) online=$(cat /sys/devices/system/cpu/online)\nreboot -f\n",
                                      inputAfter: "~ # ")
        #expect(result.status == 0, "output:\n\(result.output)")
        // mpparse.c's own lines: the pointer was found where we put it, and the table is ours.
        #expect(result.output.contains("found SMP MP-table at [mem 0x000f0000-0x000f000f]"), "output:\n\(result.output)")
        #expect(result.output.contains("Intel MultiProcessor Specification v1.4"))
        #expect(result.output.contains("MPTABLE: OEM ID: SWIFTLET"))
        #expect(!result.output.contains("BIOS bug"), "output:\n\(result.output)")
        #expect(!result.output.contains("MPTABLE: bad"), "output:\n\(result.output)")
        #expect(result.output.contains("smpboot: Allowing 2 CPUs"))
        #expect(result.output.contains("cpus=2 online=0-1"), "output:\n\(result.output)")
    }

    /// With ACPI, Swiftlet's platform is hardware-reduced (FADT), and on such a platform Linux drives no 8259 at all;
    /// `noapic` there leaves legacy IRQs nowhere to go (seen: the unprogrammed PIC delivered IRQ 4 as vector 4, #OF,
    /// during the 8250 probe). Without ACPI the MP table's virtual wire mode applies: the 8259s behind LINT0.
    @Test("acpi=off noapic: the generic kernel runs its timer and serial on the 8259 PIC (XT-PIC), 2 CPUs from the MP table")
    func noapicGuestRunsOnThePIC() throws {
        let kernel = TestHost.cache + "/testhost/vmlinux"
        let result = try TestHost.run(["swiftlet", "run", "--kernel", kernel, "--initrd", TestHost.guest("initramfs.cpio"),
                                       "--cmdline", "console=ttyS0 reboot=k panic=-1 acpi=off noapic", "--memory", "256M", "--cpus", "2"],
                                      input: "echo cpus=$(nproc); grep -E '^ *(0|4):' /proc/interrupts\nreboot -f\n",
                                      inputAfter: "~ # ")
        #expect(result.status == 0, "output:\n\(result.output)")
        #expect(result.output.contains("MPTABLE: OEM ID: SWIFTLET"), "output:\n\(result.output)")
        #expect(result.output.contains("cpus=2"), "output:\n\(result.output)")
        let lines = result.output.split(separator: "\n")
        #expect(lines.contains { $0.contains("XT-PIC") && $0.hasSuffix("timer") }, "output:\n\(result.output)")
        #expect(lines.contains { $0.contains("XT-PIC") && $0.hasSuffix("ttyS0") }, "output:\n\(result.output)")
    }
}

/// Swiftlet's microVM kernel (scripts/build-guest-kernel): drivers built in, MP table parsing, virtio-mmio with
/// command-line devices. Skipped, saying why, when the cache has not got it.
@Suite(.serialized, .enabled(if: TestHost.isPrepared && MicroVMKernel.path != nil,
                             "no microVM kernel: run scripts/build-guest-kernel (or scripts/setup --guest-kernel)"))
struct MicroVMKernelEndToEndTests {
    @Test("the microVM kernel with acpi=off and 2 vCPUs: both CPUs from the MP table, a virtio disk that works, no modules needed")
    func microVMKernelWithoutACPI() throws {
        let kernel = try #require(MicroVMKernel.path)
        let image = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-mvm-\(UUID().uuidString).ext4").path
        defer { try? FileManager.default.removeItem(atPath: image) }
        try TestHost.tool("/usr/bin/truncate", ["-s", "32M", image])
        try TestHost.tool("/sbin/mkfs.ext4", ["-q", "-F", image])
        let script = [
            "echo cpus=$(nproc) kernel=$(uname -r)",
            "mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo mvm-$((6*7)) > /mnt/f && sync && cat /mnt/f && umount /mnt",
            "reboot -f",
        ].joined(separator: "\n") + "\n"
        let result = try TestHost.run(["swiftlet", "run", "--kernel", kernel, "--initrd", TestHost.guest("initramfs.cpio"),
                                       "--cmdline", "console=ttyS0 reboot=k panic=1 acpi=off",
                                       "--memory", "256M", "--cpus", "2", "--disk", image],
                                      input: script, inputAfter: "~ # ")
        #expect(result.status == 0, "output:\n\(result.output)")
        #expect(result.output.contains("MPTABLE: OEM ID: SWIFTLET"), "output:\n\(result.output)")
        #expect(result.output.contains("cpus=2"), "output:\n\(result.output)")
        #expect(result.output.split(separator: "\n").contains("mvm-42"), "output:\n\(result.output)")
    }

    /// Firecracker's usual guest: no PCI, no ACPI, devices on the command line (virtio_mmio.device=4K@0x...:GSI),
    /// CPUs and the IOAPIC from the MP table, each device on its own edge-triggered IOAPIC pin.
    @Test("the microVM kernel as Firecracker boots it: pci=off acpi=off, virtio-mmio from the command line, 2 vCPUs, a working disk")
    func microVMKernelFirecrackerStyle() throws {
        let kernel = try #require(MicroVMKernel.path)
        let image = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-mmio-\(UUID().uuidString).ext4").path
        defer { try? FileManager.default.removeItem(atPath: image) }
        try TestHost.tool("/usr/bin/truncate", ["-s", "32M", image])
        try TestHost.tool("/sbin/mkfs.ext4", ["-q", "-F", image])
        let script = [
            "echo cpus=$(nproc)",
            "mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo mmio-$((6*7)) > /mnt/f && sync && cat /mnt/f && umount /mnt",
            "grep -c IO-APIC.*virtio /proc/interrupts",
            "reboot -f",
        ].joined(separator: "\n") + "\n"
        let result = try TestHost.run(["swiftlet", "run", "--kernel", kernel, "--initrd", TestHost.guest("initramfs.cpio"),
                                       "--transport", "mmio", "--cmdline", "console=ttyS0 reboot=k panic=1 pci=off acpi=off",
                                       "--memory", "256M", "--cpus", "2", "--disk", image],
                                      input: script, inputAfter: "~ # ")
        #expect(result.status == 0, "output:\n\(result.output)")
        #expect(result.output.contains("MPTABLE: OEM ID: SWIFTLET"), "output:\n\(result.output)")
        #expect(result.output.contains("virtio-mmio: Registering device virtio-mmio.0"), "output:\n\(result.output)")
        #expect(result.output.contains("cpus=2"), "output:\n\(result.output)")
        #expect(result.output.split(separator: "\n").contains("mmio-42"), "output:\n\(result.output)")
    }
}

enum MicroVMKernel {
    /// The vmlinux scripts/build-guest-kernel made (microvm/current, resolved: the test host copies files, not links).
    static var path: String? {
        let link = TestHost.cache + "/microvm/current/vmlinux"
        guard FileManager.default.fileExists(atPath: link) else { return nil }
        return URL(fileURLWithPath: link).resolvingSymlinksInPath().path
    }
}
