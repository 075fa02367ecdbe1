import Devices
import Foundation
import GuestMemory
import KVM
import Testing
import Virtio
import VirtioMMIO
@testable import Swiftlet

/// Where virtio-mmio devices go and how the guest is told (`VirtioMMIOPlatform`): the windows and GSIs against the
/// rest of the platform, the command-line parameters in Firecracker's form, the device count the transport allows,
/// and the wiring on a real VM (bus, ioeventfds with datamatch).
@Suite struct VirtioMMIOPlatformTests {
    @Test func commandLineParametersAreFirecrackersForm() {
        let slots = VirtioMMIOPlatform.slots(count: 3)
        #expect(VirtioMMIOPlatform.commandLineParameters(slots) == [
            "virtio_mmio.device=4K@0xe8000000:5",
            "virtio_mmio.device=4K@0xe8001000:6",
            "virtio_mmio.device=4K@0xe8002000:7",
        ])
    }

    @Test func windowsAndInterruptsStayClearOfThePlatform() {
        let slots = VirtioMMIOPlatform.slots(count: VirtioMMIOPlatform.maximumDevices)
        let layout = PCIPlatform.layout
        let taken: [ClosedRange<UInt64>] = [layout.memory32Window, layout.ecamRange, 0xFEC0_0000...0xFEC0_0FFF, 0xFEE0_0000...0xFEE0_0FFF]
        for slot in slots {
            let window = slot.base...(slot.base + VirtioMMIOLayout.windowSize - 1)
            #expect(taken.allSatisfy { !$0.overlaps(window) }, "window at 0x\(String(slot.base, radix: 16))")
            #expect(window.upperBound < X86MemoryLayout.mmioHoleEnd.rawValue && window.lowerBound >= X86MemoryLayout.mmioHoleStart.rawValue)
            // PIT, i8042, cascade, COM2, COM1, RTC, SCI, PS/2 mouse; nothing beyond the I/O APIC's 24 inputs.
            #expect(![0, 1, 2, 3, 4, 8, 9, 12].contains(slot.gsi) && slot.gsi < 24)
        }
        #expect(Set(slots.map(\.gsi)).count == slots.count)
        #expect(Set(slots.map(\.base)).count == slots.count)
    }

    @Test func theDeviceLimitFollowsTheTransport() throws {
        let kernel = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-mmio-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: kernel, contents: Data([0x4D, 0x5A])))
        defer { unlink(kernel) }
        var configuration = MachineConfiguration.linux(kernel: kernel)
        configuration.transport = .mmio
        configuration.disks = (0..<16).map { DiskConfiguration(path: "/nonexistent/disk\($0).img") }
        #expect {
            try configuration.validate()
        } throws: { error in
            guard case .tooManyDevices(17, maximum: 16, _) = error as? ConfigurationError else { return false }
            return "\(error)".contains("virtio-mmio")
        }
        configuration.transport = .pci
        #expect(configuration.maximumVirtioDevices == 31)
    }

    @Test func pciOffWarnsOnlyWhenTheDevicesAreOnPCI() {
        #expect(VirtioTransport.pciOffWarning(commandLine: "console=ttyS0 pci=off", transport: .pci, hasDevices: true)?
            .contains("--transport mmio") == true)
        #expect(VirtioTransport.pciOffWarning(commandLine: "console=ttyS0 pci=off", transport: .mmio, hasDevices: true) == nil)
        #expect(VirtioTransport.pciOffWarning(commandLine: "console=ttyS0 pci=off", transport: .pci, hasDevices: false) == nil)
        #expect(VirtioTransport.pciOffWarning(commandLine: "console=ttyS0", transport: .pci, hasDevices: true) == nil)
    }

    @Test func noapicWarnsUnlessACPIIsOff() {
        #expect(noapicWithoutACPIOffWarning(commandLine: "console=ttyS0 noapic")?.contains("Add acpi=off") == true)
        #expect(noapicWithoutACPIOffWarning(commandLine: "console=ttyS0 noapic acpi=off") == nil)
        #expect(noapicWithoutACPIOffWarning(commandLine: "console=ttyS0 pci=off") == nil)
        #expect(noapicWithoutACPIOffWarning(commandLine: "noapic=1 console=ttyS0") == nil)
    }

    @Test(.enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
    func devicesAreOnTheBusWithTheirNotifiersRegistered() throws {
        let vm = try KVMSystem().createVM()
        try vm.createIRQChip()
        let memory = try GuestMemory(ranges: [(start: GuestAddress(0), size: 16 << 20)])
        try vm.mapGuestMemory(memory)
        var mmio = MMIOBus()
        let loops = try DeviceEventLoops()
        try VirtioMMIOPlatform.attach([EntropyDevice(), ConsoleDevice(output: { _ in })], to: &mmio, vm: vm, memory: memory,
                                      loops: loops)
        // The guest's probe reads "virt" and the device IDs.
        #expect(mmio.read(address: 0xE800_0000, width: 4) == 0x7472_6976)
        #expect(mmio.read(address: 0xE800_0008, width: 4) == 4)
        #expect(mmio.read(address: 0xE800_1008, width: 4) == 3)
        // Queue 1 of the console has its ioeventfd: the same address and datamatch cannot be registered again.
        let probe = try EventFD()
        #expect(throws: KVMError.self) {
            try vm.registerIOEventFD(probe, at: .mmio(GuestAddress(0xE800_1050)), length: 4, matching: 1)
        }
        // A queue index the device does not have is free (its writes exit to the VMM, which refuses them).
        #expect(throws: Never.self) {
            try vm.registerIOEventFD(probe, at: .mmio(GuestAddress(0xE800_1050)), length: 4, matching: 99)
        }
    }
}
