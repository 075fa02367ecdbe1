import Swiftlet

extension VirtualMachineConfiguration {
    /// Checks everything that can be checked without building the VM: the rules of this value first (a boot
    /// loader, the CPU and memory ranges, one socket device, no devices on a raw image, parsable addresses), then
    /// the VMM's own (`MachineConfiguration.validate()`: readable files that fit in RAM, device limits, the vsock
    /// socket's directory). The first problem found is thrown.
    public func validate() throws(VirtualMachineConfigurationError) {
        _ = try machineConfiguration()
    }

    /// The VMM's configuration this value describes, validated.
    public func machineConfiguration() throws(VirtualMachineConfigurationError) -> MachineConfiguration {
        guard let bootLoader else { throw .missingBootLoader }
        guard cpuCount >= Self.minimumAllowedCPUCount, cpuCount <= Self.maximumAllowedCPUCount else {
            throw .invalidCPUCount(cpuCount, reason: "allowed: \(Self.minimumAllowedCPUCount) to \(Self.maximumAllowedCPUCount)")
        }
        guard memorySize >= Self.minimumAllowedMemorySize, memorySize <= Self.maximumAllowedMemorySize else {
            throw .invalidMemorySize(memorySize, reason: "allowed: \(Self.minimumAllowedMemorySize >> 20) MiB to \(Self.maximumAllowedMemorySize >> 30) GiB")
        }
        guard memorySize % 4096 == 0 else { throw .invalidMemorySize(memorySize, reason: "not a multiple of 4 KiB") }
        guard socketDevices.count <= 1 else { throw .tooManySocketDevices(socketDevices.count) }

        let payload: MachineConfiguration.Payload
        switch bootLoader {
        case let .linux(linux):
            let commandLine = linux.commandLine ?? (console.device == .virtio ? LinuxPayload.defaultVirtioConsoleCommandLine
                                                                             : LinuxPayload.defaultCommandLine)
            payload = .linux(LinuxPayload(kernelPath: linux.kernelPath, initrdPath: linux.initialRamdiskPath, commandLine: commandLine))
        case let .rawImage(raw):
            if !storageDevices.isEmpty { throw .deviceNeedsLinuxGuest(device: "a storage device") }
            if !networkDevices.isEmpty { throw .deviceNeedsLinuxGuest(device: "a network device") }
            if !socketDevices.isEmpty { throw .deviceNeedsLinuxGuest(device: "a socket device") }
            if console.device == .virtio { throw .deviceNeedsLinuxGuest(device: "a virtio console") }
            let mode: RawImagePayload.Mode = switch raw.mode {
            case .real: .realMode
            case .long: .longMode
            case .user: .userMode
            }
            payload = .rawImage(RawImagePayload(path: raw.imagePath, mode: mode))
        }

        var networks: [NetworkConfiguration] = []
        for (index, device) in networkDevices.enumerated() { networks.append(try device.machineConfiguration(index: index)) }
        let configuration = MachineConfiguration(
            payload: payload, vcpuCount: cpuCount, memory: MemorySize(bytes: memorySize),
            disks: storageDevices.map { DiskConfiguration(path: $0.imagePath, readOnly: $0.isReadOnly, id: $0.blockDeviceIdentifier) },
            networks: networks, console: console.device == .virtio ? .virtio : .serial,
            vsock: socketDevices.first.map { VsockConfiguration(guestCID: $0.guestCID, socketPath: $0.socketPath) },
            transport: transport == .mmio ? .mmio : .pci)
        do { try configuration.validate() } catch { throw VirtualMachineConfigurationError(error) }
        return configuration
    }
}

extension NetworkDeviceConfiguration {
    func machineConfiguration(index: Int) throws(VirtualMachineConfigurationError) -> NetworkConfiguration {
        let mac: MACAddress
        if let text = macAddress {
            guard let parsed = MACAddress(text) else { throw .invalidNetworkDevice(text, reason: "not a MAC address (xx:xx:xx:xx:xx:xx)") }
            mac = parsed
        } else {
            mac = MACAddress.derived(from: "swiftletkit#\(index)")
        }
        var address: IPv4Interface?
        if let text = ipv4Address {
            guard let parsed = IPv4Interface(text) else { throw .invalidNetworkDevice(text, reason: "not an IPv4 address with a prefix (10.0.0.2/24)") }
            address = parsed
        }
        var gateway: IPv4Address?
        if let text = ipv4Gateway {
            guard let parsed = IPv4Address(text) else { throw .invalidNetworkDevice(text, reason: "not an IPv4 address") }
            gateway = parsed
        }
        if let mtu, !NetworkConfiguration.mtuRange.contains(mtu) {
            throw .invalidNetworkDevice("mtu \(mtu)", reason: "allowed: \(NetworkConfiguration.mtuRange.lowerBound) to \(NetworkConfiguration.mtuRange.upperBound)")
        }
        if case let .tap(name) = attachment, name.isEmpty || name.utf8.count > 15 || name.contains("/") {
            throw .invalidNetworkDevice("tap \(name)", reason: "an interface name is 1 to 15 bytes without '/'")
        }
        let backend: NetworkConfiguration.Backend = switch attachment {
        case let .tap(name): .tap(name: name)
        case let .socket(path, listen): .socket(path: path, listen: listen)
        }
        return NetworkConfiguration(backend: backend, mac: mac, address: address, gateway: gateway, mtu: mtu)
    }
}
