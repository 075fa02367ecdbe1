import Foundation
import Swiftlet
import SwiftletKit
import Testing

/// `VirtualMachineConfiguration.validate()`: one typed error per rule, the VMM's own errors mapped into the same
/// type, and a valid value translated into the VMM's configuration field by field.
@Suite struct ConfigurationTests {
    /// A non-empty regular file to stand in for a kernel (validation only stats it).
    static func fakeKernel() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftletkit-kernel-\(UUID().uuidString)").path
        try Data(repeating: 0x90, count: 4096).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func linux() throws -> VirtualMachineConfiguration {
        var configuration = VirtualMachineConfiguration()
        configuration.bootLoader = .linux(LinuxBootLoader(kernelPath: try fakeKernel()))
        return configuration
    }

    @Test("no boot loader is refused")
    func missingBootLoader() {
        #expect(throws: VirtualMachineConfigurationError.missingBootLoader) { try VirtualMachineConfiguration().validate() }
    }

    @Test("cpuCount outside 1...64 and memory outside 16 MiB...1 TiB or not in 4 KiB pages are refused, naming the value")
    func cpuAndMemoryRanges() throws {
        var configuration = try Self.linux()
        for count in [0, -1, 65] {
            configuration.cpuCount = count
            #expect(throws: VirtualMachineConfigurationError.invalidCPUCount(count, reason: "allowed: 1 to 64")) { try configuration.validate() }
        }
        configuration.cpuCount = 64
        try configuration.validate()
        configuration.cpuCount = 1
        for size: UInt64 in [0, 1 << 20, (1 << 40) + 4096] {
            configuration.memorySize = size
            #expect(throws: VirtualMachineConfigurationError.invalidMemorySize(size, reason: "allowed: 16 MiB to 1024 GiB")) {
                try configuration.validate()
            }
        }
        configuration.memorySize = (64 << 20) + 512
        #expect(throws: VirtualMachineConfigurationError.invalidMemorySize((64 << 20) + 512, reason: "not a multiple of 4 KiB")) {
            try configuration.validate()
        }
        configuration.memorySize = 64 << 20
        try configuration.validate()
    }

    @Test("one socket device at most; a guest CID below 3 is the VMM's rule, mapped to invalidSocketDevice")
    func socketDevices() throws {
        var configuration = try Self.linux()
        configuration.socketDevices = [SocketDeviceConfiguration(socketPath: "/tmp/a.sock"), SocketDeviceConfiguration(socketPath: "/tmp/b.sock")]
        #expect(throws: VirtualMachineConfigurationError.tooManySocketDevices(2)) { try configuration.validate() }
        configuration.socketDevices = [SocketDeviceConfiguration(guestCID: 2, socketPath: "/tmp/a.sock")]
        do {
            try configuration.validate()
            Issue.record("CID 2 was accepted")
        } catch {
            guard case let .invalidSocketDevice(value, reason) = error else { Issue.record("got \(error)"); return }
            #expect(value == "cid=2")
            #expect(reason.contains("at least 3"))
        }
        configuration.socketDevices = [SocketDeviceConfiguration(socketPath: "/no/such/directory/vm.sock")]
        #expect(throws: VirtualMachineConfigurationError.invalidSocketDevice("/no/such/directory/vm.sock",
                                                                           reason: "directory /no/such/directory does not exist")) {
            try configuration.validate()
        }
    }

    @Test("a raw image takes no virtio devices")
    func rawImageDevices() throws {
        var configuration = VirtualMachineConfiguration()
        configuration.bootLoader = .rawImage(RawImageBootLoader(imagePath: try Self.fakeKernel()))
        try configuration.validate()
        configuration.socketDevices = [SocketDeviceConfiguration(socketPath: "/tmp/a.sock")]
        #expect(throws: VirtualMachineConfigurationError.deviceNeedsLinuxGuest(device: "a socket device")) { try configuration.validate() }
        configuration.socketDevices = []
        configuration.storageDevices = [StorageDeviceConfiguration(imagePath: "/tmp/disk.img")]
        #expect(throws: VirtualMachineConfigurationError.deviceNeedsLinuxGuest(device: "a storage device")) { try configuration.validate() }
        configuration.storageDevices = []
        configuration.console.device = .virtio
        #expect(throws: VirtualMachineConfigurationError.deviceNeedsLinuxGuest(device: "a virtio console")) { try configuration.validate() }
    }

    @Test("files the VMM cannot read are its unreadableFile, with role, path and reason")
    func unreadableFiles() throws {
        var configuration = VirtualMachineConfiguration()
        configuration.bootLoader = .linux(LinuxBootLoader(kernelPath: "/no/such/vmlinuz"))
        #expect(throws: VirtualMachineConfigurationError.unreadableFile(role: "kernel", path: "/no/such/vmlinuz", reason: "No such file or directory")) {
            try configuration.validate()
        }
        let kernel = try Self.fakeKernel()
        configuration.bootLoader = .linux(LinuxBootLoader(kernelPath: kernel, initialRamdiskPath: "/tmp"))
        #expect(throws: VirtualMachineConfigurationError.unreadableFile(role: "initrd", path: "/tmp", reason: "not a regular file")) {
            try configuration.validate()
        }
        configuration.bootLoader = .linux(LinuxBootLoader(kernelPath: kernel))
        configuration.storageDevices = [StorageDeviceConfiguration(imagePath: "/no/such/disk.img")]
        #expect(throws: VirtualMachineConfigurationError.invalidStorageDevice(path: "/no/such/disk.img", reason: "No such file or directory")) {
            try configuration.validate()
        }
    }

    @Test("network addresses are parsed: a bad MAC, address, multicast MAC or MTU is invalidNetworkDevice")
    func networkDevices() throws {
        var configuration = try Self.linux()
        func expectRefused(_ device: NetworkDeviceConfiguration, value: String) {
            configuration.networkDevices = [device]
            do {
                try configuration.validate()
                Issue.record("\(device) was accepted")
            } catch {
                guard case let .invalidNetworkDevice(refused, _) = error else { Issue.record("got \(error)"); return }
                #expect(refused == value)
            }
        }
        let tap = NetworkDeviceConfiguration.Attachment.tap(name: "tap0")
        expectRefused(NetworkDeviceConfiguration(attachment: tap, macAddress: "02:00:00:00:00"), value: "02:00:00:00:00")
        expectRefused(NetworkDeviceConfiguration(attachment: tap, macAddress: "01:00:5e:00:00:01"), value: "01:00:5e:00:00:01")
        expectRefused(NetworkDeviceConfiguration(attachment: tap, ipv4Address: "10.0.0.2"), value: "10.0.0.2")
        expectRefused(NetworkDeviceConfiguration(attachment: tap, ipv4Address: "10.0.0.2/24", ipv4Gateway: "10.1.0.1"), value: "10.1.0.1")
        expectRefused(NetworkDeviceConfiguration(attachment: tap, mtu: 20), value: "mtu 20")
        expectRefused(NetworkDeviceConfiguration(attachment: .tap(name: "a-name-longer-than-15")), value: "tap a-name-longer-than-15")
        configuration.networkDevices = [NetworkDeviceConfiguration(attachment: tap, ipv4Address: "10.0.0.2/24", ipv4Gateway: "10.0.0.1")]
        try configuration.validate()
    }

    @Test("a valid configuration becomes the VMM's, field by field; the default command line follows the console")
    func translation() throws {
        var configuration = try Self.linux()
        configuration.cpuCount = 2
        configuration.memorySize = 256 << 20
        configuration.console.device = .virtio
        configuration.transport = .mmio
        configuration.socketDevices = [SocketDeviceConfiguration(guestCID: 7, socketPath: "/tmp/swiftletkit-test.sock")]
        let machine = try configuration.machineConfiguration()
        #expect(machine.vcpuCount == 2)
        #expect(machine.memory.bytes == 256 << 20)
        #expect(machine.console == .virtio)
        #expect(machine.transport == .mmio)
        #expect(machine.vsock == VsockConfiguration(guestCID: 7, socketPath: "/tmp/swiftletkit-test.sock"))
        guard case let .linux(payload) = machine.payload else { Issue.record("not a Linux payload"); return }
        #expect(payload.commandLine == LinuxPayload.defaultVirtioConsoleCommandLine)
    }

    @Test("VirtualMachine refuses an invalid configuration with invalidConfiguration; a valid one is stopped and can start")
    func virtualMachineInit() throws {
        #expect(throws: VirtualMachineError.invalidConfiguration(.missingBootLoader)) { try VirtualMachine(configuration: VirtualMachineConfiguration()) }
        let vm = try VirtualMachine(configuration: try Self.linux())
        #expect(vm.state == .stopped)
        #expect(vm.canStart)
        #expect(!vm.canPause && !vm.canResume && !vm.canStop && !vm.canRequestStop)
        #expect(vm.stopReason == nil)
        #expect(vm.agent == nil)
    }

    @Test("defaultGuest has the default guest's files and one socket device, or says setup has not run")
    func defaultGuest() throws {
        do {
            let configuration = try VirtualMachineConfiguration.defaultGuest(socketPath: "/tmp/swiftletkit-default.sock")
            guard case let .linux(linux)? = configuration.bootLoader else { Issue.record("no Linux boot loader"); return }
            #expect(linux.kernelPath == DefaultGuest.kernelPath)
            #expect(linux.initialRamdiskPath == DefaultGuest.initrdPath)
            #expect(configuration.socketDevices == [SocketDeviceConfiguration(socketPath: "/tmp/swiftletkit-default.sock")])
        } catch {
            #expect(error == .defaultGuestMissing(directory: DefaultGuest.directory))
        }
        #expect(SocketDeviceConfiguration.temporarySocketPath() != SocketDeviceConfiguration.temporarySocketPath())
    }
}
