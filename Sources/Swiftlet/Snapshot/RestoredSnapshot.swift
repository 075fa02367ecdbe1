#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import ACPI
import Devices
import GuestMemory
import KVM
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A snapshot directory read and checked, ready to build a machine from (`Machine(restoringFrom:)`).
///
/// `load` is where the untrusted file becomes trusted values: after it returns, every count is in range, every
/// kernel struct has this host's size, the memory layout is the one this Swiftlet builds for the saved RAM size,
/// and the memory file has exactly that size.
struct RestoredSnapshot {
    struct IRQChips {
        var picMaster: IRQChipState
        var picSlave: IRQChipState
        var ioapic: IRQChipState
    }

    let directory: String
    let statePath: String
    let memoryPath: String
    let configuration: MachineConfiguration
    let inKernelIRQChip: Bool
    let vcpus: [VCPUState]
    let irqchips: IRQChips?
    let pit: PITState?
    let clock: ClockState?
    let serial: Serial8250.State
    let i8042: I8042.State
    let rtc: CMOSRTC.State?
    /// The VM Generation ID's place, when the saved machine had one (a restore gives it a new ID).
    let vmGenerationID: VMGenerationID.State?
    /// The virtio devices' sections, in attach order (empty for raw images).
    let virtio: [VirtioSection]
    /// What the host refused when the snapshot was saved.
    let hostRefused: [String]
    let memoryBytesWritten: UInt64
    /// The state was saved by a `Diff` snapshot: its memory file must have been merged onto the one before it.
    let isDiff: Bool
    /// Wall-clock time of the save's kvm-clock reading.
    let savedAtUnixNanoseconds: UInt64
    /// Saved in the host kernel's current boot (`HostBoot`): the CPU feature check has nothing to find.
    let savedInThisBoot: Bool

    /// The restored machine's `bootLog`.
    var log: [String] {
        ["restored from snapshot \(directory): \(vcpus.count) vCPU(s), \(configuration.memory) of RAM "
            + "(\(memoryBytesWritten) bytes of it in the memory file, mapped copy-on-write)"]
            + hostRefused.map { "not in the snapshot (refused by the host that saved it): \($0)" }
            + (isDiff ? ["the state is of a Diff snapshot: its memory file must be the previous snapshot's with the Diff's merged onto it "
                         + "(swiftlet merge-memory); a Diff's memory file alone is mostly holes"] : [])
    }

    /// The CPUID table vCPU `id` had, or nil to compute it afresh (a host that refused KVM_GET_CPUID2).
    func cpuid(vcpu id: UInt32) -> [CPUIDEntry]? {
        guard Int(id) < vcpus.count, !vcpus[Int(id)].cpuid.isEmpty else { return nil }
        return vcpus[Int(id)].cpuid
    }

    /// The largest RAM a snapshot may declare (1 TiB): a bound on an untrusted number, far above any guest here.
    static let maximumMemoryBytes: UInt64 = 1 << 40

    static func load(directory: String, overrides: SnapshotOverrides = SnapshotOverrides()) throws(SnapshotError) -> RestoredSnapshot {
        let statePath = directory + "/" + Machine.snapshotStateFile
        let file = try SnapshotFile.read(path: statePath)
        func invalid(_ name: String, _ reason: String) -> SnapshotError { .invalidSection(path: statePath, name: name, reason: reason) }

        let machine = try SnapshotSection.decode(MachineSection.self, SnapshotSection.machine, from: file, path: statePath)
        guard (1...MachineConfiguration.maximumVCPUs).contains(machine.vcpuCount) else {
            throw invalid(SnapshotSection.machine, "vCPU count \(machine.vcpuCount) is outside 1...\(MachineConfiguration.maximumVCPUs)")
        }
        guard machine.memoryBytes > 0, machine.memoryBytes <= maximumMemoryBytes, machine.memoryBytes % MemoryRegion.pageSize == 0 else {
            throw invalid(SnapshotSection.machine, "memory size \(machine.memoryBytes) is not a whole number of pages up to 1 TiB")
        }
        let configuration: MachineConfiguration
        switch machine.payloadKind {
        case .rawImage:
            guard let modeName = machine.rawImageMode, let mode = RawImagePayload.Mode(rawValue: modeName) else {
                throw invalid(SnapshotSection.machine, "raw image mode \(machine.rawImageMode ?? "(none)") is unknown")
            }
            guard let console = MachineConfiguration.Console(rawValue: machine.console) else {
                throw invalid(SnapshotSection.machine, "console \(machine.console) is unknown")
            }
            guard overrides.networks.isEmpty, overrides.drives.isEmpty, overrides.vsockSocketPath == nil else {
                throw .unsupported("\(statePath) is of a raw-image machine, which has no network interfaces, disks or vsock to override")
            }
            configuration = MachineConfiguration(payload: .rawImage(RawImagePayload(path: machine.payloadPath, mode: mode)),
                                                 vcpuCount: machine.vcpuCount, memory: MemorySize(bytes: machine.memoryBytes),
                                                 console: console)
        case .linux:
            guard var saved = machine.configuration, case .linux = saved.payload else {
                throw invalid(SnapshotSection.machine, "a Linux guest's snapshot without its configuration")
            }
            guard saved.vcpuCount == machine.vcpuCount, saved.memory.bytes == machine.memoryBytes, machine.inKernelIRQChip else {
                throw invalid(SnapshotSection.machine, "the configuration does not match the machine's vCPU count, memory or irqchip")
            }
            try apply(overrides, to: &saved, statePath: statePath)
            // The same checks a new machine's configuration gets (disks, networks, vsock, device count); the
            // files and host devices it names are opened when the machine is built.
            do { try saved.validate() } catch { throw invalid(SnapshotSection.machine, "the saved configuration: \(error)") }
            configuration = saved
        }

        // Memory: the layout must be the one Machine.init builds for this size, regions back to back in the file.
        let memory = try SnapshotSection.decode(MemorySection.self, SnapshotSection.memory, from: file, path: statePath)
        var expected: [MemorySection.Region] = []
        var offset: UInt64 = 0
        for range in X86MemoryLayout.ramRanges(size: machine.memoryBytes) {
            expected.append(.init(guestAddress: range.start.rawValue, size: range.size, fileOffset: offset))
            offset += range.size
        }
        guard memory.regions == expected, memory.fileSize == machine.memoryBytes, memory.pageSize == MemoryRegion.pageSize else {
            throw invalid(SnapshotSection.memory, "the memory layout does not match \(machine.memoryBytes) bytes of RAM")
        }
        guard memory.file == Machine.snapshotMemoryFile else {
            throw invalid(SnapshotSection.memory, "memory file name \"\(memory.file)\" is not \"\(Machine.snapshotMemoryFile)\"")
        }
        let memoryPath = directory + "/" + memory.file
        var info = stat()
        guard stat(memoryPath, &info) == 0 else {
            throw .memory(.file(path: memoryPath, operation: "open", errno: Errno(rawValue: errno)))
        }
        guard UInt64(max(info.st_size, 0)) == memory.fileSize else {
            throw .memory(.fileSizeMismatch(path: memoryPath, expected: memory.fileSize, actual: UInt64(max(info.st_size, 0))))
        }

        // vCPUs: one section each, numbered from 0.
        var vcpus: [VCPUState] = []
        for index in 0..<machine.vcpuCount {
            let name = SnapshotSection.vcpu(index)
            let section = try SnapshotSection.decode(VCPUSection.self, name, from: file, path: statePath)
            guard section.id == UInt32(index) else { throw invalid(name, "it is vCPU \(section.id)") }
            do { vcpus.append(try section.vcpuState()) } catch { throw invalid(name, error.description) }
        }
        try checkCPUVendor(of: vcpus, statePath: statePath)

        // The VM.
        let vm = try SnapshotSection.decode(VMSection.self, SnapshotSection.vm, from: file, path: statePath)
        func blob<Kind>(_ data: Data?, _ what: String) throws(SnapshotError) -> KVMStateBlob<Kind>? {
            guard let data else { return nil }
            do { return try KVMStateBlob<Kind>(bytes: Array(data)) } catch { throw invalid(SnapshotSection.vm, "\(what): \(error)") }
        }
        var irqchips: IRQChips?
        if machine.inKernelIRQChip {
            guard let master: IRQChipState = try blob(vm.picMaster, "PIC master"), let slave: IRQChipState = try blob(vm.picSlave, "PIC slave"),
                  let ioapic: IRQChipState = try blob(vm.ioapic, "IOAPIC") else {
                throw invalid(SnapshotSection.vm, "the in-kernel irqchip's state is missing")
            }
            irqchips = IRQChips(picMaster: master, picSlave: slave, ioapic: ioapic)
        }

        // Devices. The RTC is optional (a snapshot may leave it out; the restored one then starts afresh).
        let serial = try SnapshotSection.decode(Serial8250.State.self, SnapshotSection.serial, from: file, path: statePath)
        let i8042 = try SnapshotSection.decode(I8042.State.self, SnapshotSection.i8042, from: file, path: statePath)
        let rtc = file.section(named: SnapshotSection.rtc) == nil
            ? nil : try SnapshotSection.decode(CMOSRTC.State.self, SnapshotSection.rtc, from: file, path: statePath)

        // The VM Generation ID: its 16 bytes must be guest RAM and its line an I/O APIC input, as this Swiftlet
        // places them; the restore writes there. (Only Linux guests get one; on a machine without the in-kernel
        // irqchip the line would just have nobody to interrupt.)
        var vmGenerationID: VMGenerationID.State?
        if file.section(named: SnapshotSection.vmGenerationID) != nil {
            let saved = try SnapshotSection.decode(VMGenerationID.State.self, SnapshotSection.vmGenerationID, from: file, path: statePath)
            let inRAM = X86MemoryLayout.ramRanges(size: machine.memoryBytes).contains { range in
                saved.address >= range.start.rawValue && saved.address <= range.start.rawValue + range.size
                    && range.start.rawValue + range.size - saved.address >= UInt64(VMGenerationIDACPI.idLength)
            }
            guard inRAM, saved.gsi < 24 else {
                throw invalid(SnapshotSection.vmGenerationID, "address 0x\(String(saved.address, radix: 16)) or GSI \(saved.gsi) "
                              + "is not 16 bytes of guest RAM and an I/O APIC input")
            }
            vmGenerationID = saved
        }

        // Where it was saved: a section older snapshots do not have.
        var savedInThisBoot = false
        if file.section(named: SnapshotSection.host) != nil {
            let host = try SnapshotSection.decode(HostSection.self, SnapshotSection.host, from: file, path: statePath)
            savedInThisBoot = HostBoot.id != nil && host.bootID == HostBoot.id
        }

        // Virtio devices: one section each, numbered from 0, as many as the configuration builds.
        var virtio: [VirtioSection] = []
        if case .linux = configuration.payload {
            for index in 0..<configuration.virtioDeviceCount {
                virtio.append(try SnapshotSection.decode(VirtioSection.self, SnapshotSection.virtio(index), from: file, path: statePath))
            }
            guard file.section(named: SnapshotSection.virtio(configuration.virtioDeviceCount)) == nil else {
                throw invalid(SnapshotSection.virtio(configuration.virtioDeviceCount), "more virtio devices than the configuration has")
            }
        }

        return RestoredSnapshot(directory: directory, statePath: statePath, memoryPath: memoryPath, configuration: configuration,
                                inKernelIRQChip: machine.inKernelIRQChip, vcpus: vcpus, irqchips: irqchips,
                                pit: machine.inKernelIRQChip ? try blob(vm.pit, "PIT") : nil, clock: try blob(vm.clock, "clock"),
                                serial: serial, i8042: i8042, rtc: rtc, vmGenerationID: vmGenerationID, virtio: virtio, hostRefused: machine.hostRefused,
                                memoryBytesWritten: memory.bytesWritten, isDiff: memory.kind == "Diff", savedAtUnixNanoseconds: machine.savedAtUnixNanoseconds,
                                savedInThisBoot: savedInThisBoot)
    }

    /// Why this host cannot run the snapshot's guest: the saved CPU features its KVM lacks
    /// (`GuestCPUID.missingFeatures`).
    func cpuFeaturesMessage(missing: [String]) -> String {
        "\(statePath) was saved on a host whose CPU has features this host's KVM cannot give the guest "
            + "(\(missing.joined(separator: "; "))); the guest's kernel chose code that uses them at boot, so it cannot run here"
    }

    /// A guest saved on one CPU vendor's host cannot run on another's: its kernel chose vendor-specific code paths,
    /// MSRs and errata at boot. The saved CPUID's leaf 0 names the vendor the guest saw (the host's, passed
    /// through); a snapshot without a CPUID table (a host that refused KVM_GET_CPUID2) is not checked.
    static func checkCPUVendor(of vcpus: [VCPUState], statePath: String, hostVendor: String? = HostCPU.vendor) throws(SnapshotError) {
        guard let hostVendor, let leaf0 = vcpus.first?.cpuid.first(where: { $0.function == 0 }) else { return }
        let saved = HostCPU.vendor(ebx: leaf0.ebx, ecx: leaf0.ecx, edx: leaf0.edx)
        guard saved == hostVendor else {
            throw .unsupported("\(statePath) was saved on a host with a \(saved) CPU; this host's CPU is \(hostVendor), and a guest "
                               + "cannot move between CPU vendors (its kernel chose vendor-specific code, MSRs and errata at boot)")
        }
    }

    /// Swaps the host endpoints and disk images a restore was told to (`SnapshotOverrides`); the guest-visible parts
    /// (MACs, the CID, disk serials) stay the saved ones. An override naming an interface or a disk the snapshot
    /// does not have is refused.
    static func apply(_ overrides: SnapshotOverrides, to configuration: inout MachineConfiguration, statePath: String) throws(SnapshotError) {
        /// The position of the device `id` names among `ids`, or the refusal that lists the ids there are.
        func position(of id: String, in ids: [String], override: String, none: String, plural: String) throws(SnapshotError) -> Int {
            guard let index = ids.firstIndex(of: id) else {
                throw .unsupported("\(override) override for \"\(id)\": \(statePath) has "
                                   + (ids.isEmpty ? none : "\(plural) \(ids.joined(separator: ", "))"))
            }
            return index
        }
        let interfaceIDs = configuration.networks.enumerated().map { $1.registryID(position: $0) }
        for network in overrides.networks {
            let index = try position(of: network.interfaceID, in: interfaceIDs, override: "network", none: "no network interfaces", plural: "interfaces")
            configuration.networks[index].backend = network.backend
        }
        let driveIDs = configuration.disks.enumerated().map { $1.registryID(position: $0) }
        for drive in overrides.drives {
            let index = try position(of: drive.driveID, in: driveIDs, override: "drive", none: "no disks", plural: "disks")
            configuration.disks[index].path = drive.path
        }
        if let path = overrides.vsockSocketPath {
            guard configuration.vsock != nil else { throw .unsupported("vsock override: \(statePath) has no vsock device") }
            configuration.vsock?.socketPath = path
        }
    }
}
