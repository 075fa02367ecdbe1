import Swiftlet

extension VMResources {
    /// The kernel command line the guest gets: `boot_args` (or Firecracker's default), then the root device's
    /// `root=` as Firecracker appends it (`root=/dev/vda`, or `root=PARTUUID=...`, then `ro` or `rw`).
    public var kernelCommandLine: String {
        var line = bootSource?.bootArgs ?? BootSource.defaultKernelCommandLine
        if let root = drives.first, root.isRootDevice {
            let device = root.partuuid.map { "PARTUUID=\($0)" } ?? "/dev/vda"
            line += (line.isEmpty ? "" : " ") + "root=\(device) \(root.readOnly ? "ro" : "rw")"
        }
        return line
    }

    /// The library configuration `InstanceStart` builds, and what the user should know about it: with `transport`
    /// pci (`--enable-pci` in Firecracker mode, `swiftlet serve`'s default) Firecracker's habitual `pci=off` hides the
    /// devices from the guest; virtio-mmio (Firecracker mode's default) does not need PCI.
    public func machineConfiguration(transport: VirtioTransport = .pci) throws(APIFault) -> (configuration: MachineConfiguration, warnings: [String]) {
        guard let bootSource else {
            // Firecracker's StartMicrovmError::MissingKernelConfig, behind VmmActionError::StartMicrovm.
            throw APIFault(message: "Start microvm error: Cannot start microvm without kernel configuration.")
        }
        let commandLine = kernelCommandLine
        let payload = LinuxPayload(kernelPath: bootSource.kernelImagePath, initrdPath: bootSource.initrdPath, commandLine: commandLine)
        let disks = drives.map { DiskConfiguration(path: $0.pathOnHost ?? "", readOnly: $0.readOnly, id: Self.serial(for: $0.driveID)) }
        var networks: [NetworkConfiguration] = []
        for interface in networkInterfaces {
            let mac = interface.guestMac.flatMap(MACAddress.init) ?? Self.derivedMAC(for: interface)
            networks.append(NetworkConfiguration(backend: .tap(name: interface.hostDevName), mac: mac, mtu: interface.mtu, id: interface.ifaceID))
        }
        let vsockConfiguration = vsock.map { VsockConfiguration(guestCID: $0.guestCID, socketPath: $0.udsPath) }
        let configuration = MachineConfiguration(payload: .linux(payload), vcpuCount: Int(machineConfig.vcpuCount),
                                                 memory: .mebibytes(machineConfig.memSizeMib), disks: disks, networks: networks,
                                                 vsock: vsockConfiguration, transport: transport)

        var warnings: [String] = []
        let parameters = commandLine.split(separator: " ").map(String.init)
        if let warning = VirtioTransport.pciOffWarning(
            commandLine: commandLine, transport: transport, hasDevices: !disks.isEmpty || !networks.isEmpty || vsockConfiguration != nil,
            remedy: "use virtio-mmio (Firecracker mode without --enable-pci, or swiftlet serve --transport mmio)",
            source: " from boot_args")
        {
            warnings.append(warning)
        }
        if let warning = noapicWithoutACPIOffWarning(commandLine: commandLine, source: " from boot_args") {
            warnings.append(warning)
        }
        if parameters.contains("8250.nr_uarts=0") {
            warnings.append("the kernel command line contains 8250.nr_uarts=0: the guest has no serial console (Firecracker's default "
                + "boot_args disable it; pass boot_args with console=ttyS0 to see the guest's output).")
        }
        // `entropy` needs nothing here: every Swiftlet guest has a virtio-rng (its rate limiter is not enforced).
        return (configuration, warnings)
    }

    /// The virtio-blk serial (VIRTIO_BLK_T_GET_ID) holds 20 bytes: the drive id, cut at a character boundary.
    public static func serial(for driveID: String) -> String {
        var serial = ""
        for character in driveID {
            guard serial.utf8.count + String(character).utf8.count <= 20 else { break }
            serial.append(character)
        }
        return serial
    }

    /// A locally administered unicast MAC that stays the same for the same interface across runs (FNV-1a of
    /// its id and TAP name), for interfaces PUT without `guest_mac`.
    static func derivedMAC(for interface: NetworkInterface) -> MACAddress {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in "\(interface.ifaceID)#\(interface.hostDevName)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        let bytes = [0x02, 0x46] + (0..<4).map { UInt8(truncatingIfNeeded: hash >> (8 * UInt64($0))) }
        let text = bytes.map { byte in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }.joined(separator: ":")
        return MACAddress(text)!
    }
}
