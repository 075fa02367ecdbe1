#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import GuestMemory

/// How to enter the kernel.
public enum EntryPreference: Equatable, Sendable {
    /// The Linux 64-bit boot protocol: at the vmlinux ELF entry (startup_64) when the kernel is or can be
    /// unpacked to an ELF, otherwise at the bzImage's load address + 0x200 (its decompressor's startup_64).
    case automatic
    /// The 32-bit PVH entry (XEN_ELFNOTE_PHYS32_ENTRY); an error if the kernel has no such note.
    case pvh
}

public struct LinuxBootRequest: Sendable {
    public var kernel: [UInt8]
    public var initrd: [UInt8]?
    public var commandLine: String
    public var entry: EntryPreference
    /// Unpack a bzImage's payload (lz4, gzip, none) on the host and boot the vmlinux inside, instead of
    /// running the kernel's decompressor in the guest. On an emulating host (PVM) this saves minutes.
    public var unpackPayloadInHost: Bool
    /// Where the VMM put the ACPI RSDP, passed to the kernel in boot_params.acpi_rsdp_addr (or the PVH
    /// start_info's rsdp_paddr).
    public var rsdpAddress: GuestAddress?
    /// Device ranges outside RAM to mark reserved in the e820 map (PCI ECAM).
    public var reservedRanges: [(start: GuestAddress, size: UInt64)]

    public init(kernel: [UInt8], initrd: [UInt8]? = nil, commandLine: String = "", entry: EntryPreference = .automatic,
                unpackPayloadInHost: Bool = true, rsdpAddress: GuestAddress? = nil,
                reservedRanges: [(start: GuestAddress, size: UInt64)] = []) {
        self.reservedRanges = reservedRanges
        self.kernel = kernel
        self.initrd = initrd
        self.commandLine = commandLine
        self.entry = entry
        self.unpackPayloadInHost = unpackPayloadInHost
        self.rsdpAddress = rsdpAddress
    }
}

/// What `loadLinux` did, and how to start the vCPU.
public struct LoadedKernel: Sendable {
    public enum Entry: Equatable, Sendable {
        /// Linux 64-bit entry at a vmlinux's startup_64 (ELF file, or unpacked from a bzImage).
        case vmlinux64
        /// Linux 64-bit entry at a bzImage's load address + 0x200: the kernel unpacks itself in the guest.
        case bzImage64
        /// 32-bit PVH entry.
        case pvh32
    }

    public var cpu: InitialCPUState
    public var kind: KernelKind
    public var entry: Entry
    /// Guest-physical range the kernel occupies (for a bzImage entered as is: load address + init_size).
    public var kernelStart: GuestAddress
    public var kernelEnd: GuestAddress
    public var initrd: (address: GuestAddress, size: UInt64)?
    /// Human-readable lines saying what was done, for the VMM's log.
    public var log: [String]

    /// The log as one line.
    public var summary: String { log.joined(separator: "; ") }
}

/// Loads a Linux kernel (bzImage or ELF vmlinux), its initrd and command line into `memory`, writes the
/// boot structures (zero page or PVH start_info, e820, GDT, page tables), and returns the vCPU state.
///
/// The guest memory must include low RAM from 0 past 1 MiB (`X86MemoryLayout.ramRanges`). Nothing about
/// KVM is involved: the VMM applies `LoadedKernel.cpu` to its vCPU.
public func loadLinux(_ request: LinuxBootRequest, into memory: GuestMemory) throws(BootError) -> LoadedKernel {
    var log: [String] = []
    let kind = try KernelKind.validate(request.kernel)
    let memoryMap = try E820Map(memory: memory, reserved: request.reservedRanges)

    // Decide what gets loaded: an ELF (given, or unpacked from the bzImage) or the bzImage as is.
    var elf: ElfKernel?
    var params: BootParams
    var commandLineMaximum: Int
    var initrdAddressMax: UInt64 = 0x7fff_ffff     // what x86-64 kernels declare; used for an ELF without header
    var bzImage: BzImage?

    switch kind {
    case .elf:
        elf = try ElfKernel(request.kernel)
        params = .forELFKernel()
        commandLineMaximum = LinuxKernelDefaults.elfCommandLineMaximum
        log.append("ELF vmlinux")
    case let .bzImage(version, format):
        let image = try BzImage(request.kernel)
        bzImage = image
        params = BootParams(copyingHeaderOf: image)
        commandLineMaximum = Int(image.header.cmdlineSize)
        initrdAddressMax = UInt64(image.header.initrdAddrMax)
        let payloadSize = image.payload.map { BootError.mebibytes(UInt64($0.count)) } ?? "?"
        var line = "bzImage, boot protocol \(BzImage.versionString(version)), payload \(format) (\(payloadSize))"
        if request.unpackPayloadInHost && format.canUnpackInHost {
            let started = monotonicSeconds()
            let vmlinux = try image.unpackPayload()
            let elapsed = monotonicSeconds() - started
            elf = try ElfKernel(vmlinux)
            line += " unpacked in the host to \(BootError.mebibytes(UInt64(vmlinux.count))) in \(milliseconds(elapsed)) ms"
        } else {
            line += request.unpackPayloadInHost ? " (no host decoder: the kernel unpacks itself)" : " (left to the kernel's decompressor)"
        }
        log.append(line)
    }

    // Load the kernel and choose the entry.
    let entry: LoadedKernel.Entry
    let entryAddress: GuestAddress
    let kernelStart: GuestAddress
    let kernelEnd: GuestAddress
    if let elf {
        guard elf.physicalStart >= BootLayout.kernelMinimumAddress else {
            throw .kernelDoesNotFit("a segment starts at \(elf.physicalStart), inside the first MiB that holds the boot structures")
        }
        try elf.load(into: memory)
        kernelStart = elf.physicalStart
        kernelEnd = elf.physicalEnd
        if request.entry == .pvh {
            guard let pvh = elf.pvhEntry else {
                throw .noPVHEntry("the kernel has no XEN_ELFNOTE_PHYS32_ENTRY note (built without CONFIG_PVH?)")
            }
            entry = .pvh32
            entryAddress = pvh
        } else {
            entry = .vmlinux64
            entryAddress = elf.entry
        }
        log.append("loaded \(elf.segments.count) segments at \(kernelStart) – \(kernelEnd)")
    } else {
        let image = bzImage!
        guard request.entry != .pvh else {
            throw .noPVHEntry("the PVH note is inside the bzImage's \(image.payloadFormat) payload, which is not unpacked in the host")
        }
        let load = image.loadAddress
        let code = image.protectedModeKernel
        // The decompressor needs init_size bytes from the load address while it works.
        let footprint = max(UInt64(code.count), UInt64(image.header.initSize))
        guard memory.contains(load, length: footprint) else {
            throw .kernelDoesNotFit("the bzImage needs \(BootError.mebibytes(footprint)) (init_size) at \(load), "
                + "beyond the guest's low RAM (ends at \(memoryMap.lowRAMEnd))")
        }
        try writing("protected-mode kernel at \(load)") { () throws(GuestMemoryError) in try memory.write(code, at: load) }
        params.setCode32Start(load)
        entry = .bzImage64
        entryAddress = load.adding(BzImage.startup64Offset)
        kernelStart = load
        kernelEnd = load.adding(footprint)
        log.append("loaded the protected-mode kernel at \(load), init_size \(BootError.mebibytes(footprint))")
    }

    // Initrd, high in low RAM.
    var initrd: (address: GuestAddress, size: UInt64)?
    if let bytes = request.initrd, !bytes.isEmpty {
        let size = UInt64(bytes.count)
        let address = try InitrdPlacement.address(size: size, lowRAMEnd: memoryMap.lowRAMEnd,
                                                  addressMax: initrdAddressMax, kernelEnd: kernelEnd)
        try writing("initrd at \(address)") { () throws(GuestMemoryError) in try memory.write(bytes, at: address) }
        initrd = (address, size)
        log.append("initrd of \(BootError.mebibytes(size)) at \(address)")
    }

    try KernelCommandLine.write(request.commandLine, maximum: commandLineMaximum, to: memory)

    let cpu: InitialCPUState
    if entry == .pvh32 {
        try PVHStartInfo.write(to: memory, commandLine: BootLayout.commandLine, initrd: initrd,
                               rsdp: request.rsdpAddress, memoryMap: memoryMap)
        cpu = try .pvh32(entry: entryAddress, in: memory)
        log.append("entering the PVH entry at \(entryAddress) in 32-bit mode, start_info at \(BootLayout.pvhStartInfo)")
    } else {
        params.setLoaderFields()
        params.setCommandLine(at: BootLayout.commandLine)
        params.setE820(memoryMap)
        if let initrd { params.setRamdisk(at: initrd.address, size: initrd.size) }
        if let rsdp = request.rsdpAddress { params.setACPIRSDP(rsdp) }
        try params.write(to: memory)
        cpu = try .linux64(entry: entryAddress, in: memory)
        let what = entry == .vmlinux64 ? "vmlinux" : "the bzImage's startup_64"
        log.append("entering \(what) at \(entryAddress) in 64-bit mode, zero page at \(BootLayout.zeroPage)")
    }

    return LoadedKernel(cpu: cpu, kind: kind, entry: entry, kernelStart: kernelStart, kernelEnd: kernelEnd,
                        initrd: initrd, log: log)
}

private func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

private func milliseconds(_ seconds: Double) -> Int { Int((seconds * 1000).rounded()) }
