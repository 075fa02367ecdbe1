/// `PUT /boot-source`: the kernel, its initrd and its command line.
public struct BootSource: Codable, Sendable, Equatable {
    /// Firecracker's `DEFAULT_KERNEL_CMDLINE` (vmm_config/boot_source.rs), used when `boot_args` is absent.
    /// Note `pci=off` and `8250.nr_uarts=0`: with it a Swiftlet guest sees neither its virtio-PCI devices nor a
    /// serial console, which is why the conversion to a `MachineConfiguration` warns about `pci=off`.
    public static let defaultKernelCommandLine =
        "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd"

    public var kernelImagePath: String
    public var initrdPath: String?
    public var bootArgs: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kernelImagePath = "kernel_image_path"
        case initrdPath = "initrd_path"
        case bootArgs = "boot_args"
    }

    public init(kernelImagePath: String, initrdPath: String? = nil, bootArgs: String? = nil) {
        self.kernelImagePath = kernelImagePath
        self.initrdPath = initrdPath
        self.bootArgs = bootArgs
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        kernelImagePath = try container.decode(String.self, forKey: .kernelImagePath)
        initrdPath = try container.decodeIfPresent(String.self, forKey: .initrdPath)
        bootArgs = try container.decodeIfPresent(String.self, forKey: .bootArgs)
    }

    /// As Firecracker serializes it: `initrd_path` always (null when absent), `boot_args` only when given.
    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(kernelImagePath, forKey: .kernelImagePath)
        try container.encode(initrdPath, forKey: .initrdPath)
        try container.encodeIfPresent(bootArgs, forKey: .bootArgs)
    }
}
