#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Devices
import GuestMemory
import KVM
import Virtio
import VirtioMMIO
import VirtioPCI

/// The sections of a state file (docs/snapshots.md lists them): binary where the type has a binary form
/// (BinarySections.swift), JSON otherwise. Kernel state structs travel as their bytes (`KVMStateBlob`; base64 in
/// JSON), checked against this host's struct sizes when read back.
enum SnapshotSection {
    static let machine = "machine"
    static let memory = "memory"
    static let vm = "vm"
    static func vcpu(_ index: Int) -> String { "vcpu.\(index)" }
    static let serial = "device.serial"
    static let i8042 = "device.i8042"
    static let rtc = "device.rtc"
    /// Where the VM Generation ID is and its interrupt (`VMGenerationID.State`); absent in snapshots of raw images
    /// and of machines from before the device existed.
    static let vmGenerationID = "device.vmgenid"
    /// The boot of the host kernel the snapshot was saved in (`HostSection`); absent in older snapshots.
    static let host = "host"
    /// The virtio devices, numbered in attach order (rng, console, vsock, networks, disks).
    static func virtio(_ index: Int) -> String { "device.virtio.\(index)" }

    /// A section in the binary encoding this version writes (SectionCoding.swift).
    static func encode<T: BinarySnapshotSection>(_ value: T) -> [UInt8] {
        var writer = SectionWriter()
        value.write(to: &writer)
        return writer.bytes
    }

    /// A section that stays JSON (the virtio devices).
    static func encode<T: Encodable>(_ value: T) -> [UInt8] { encodeJSON(value) }

    static func encodeJSON<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding our own plain values cannot fail (no floats that are NaN, no custom encoders that throw).
        return Array(try! encoder.encode(value))
    }

    /// A section with a binary form: binary in files of format version 2 and later, JSON in version 1's.
    static func decode<T: BinarySnapshotSection>(_ type: T.Type, _ name: String, from file: SnapshotFile, path: String) throws(SnapshotError) -> T {
        guard file.version >= 2 else { return try decodeJSON(type, name, from: file, path: path) }
        guard let section = file.section(named: name) else { throw .missingSection(path: path, name: name) }
        var reader = SectionReader(section.payload)
        do { return try T(from: &reader) } catch {
            throw .invalidSection(path: path, name: name, reason: error.reason)
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ name: String, from file: SnapshotFile, path: String) throws(SnapshotError) -> T {
        try decodeJSON(type, name, from: file, path: path)
    }

    static func decodeJSON<T: Decodable>(_ type: T.Type, _ name: String, from file: SnapshotFile, path: String) throws(SnapshotError) -> T {
        guard let section = file.section(named: name) else { throw .missingSection(path: path, name: name) }
        do {
            return try JSONDecoder().decode(T.self, from: Data(section.payload))
        } catch {
            throw .invalidSection(path: path, name: name, reason: "\(error)")
        }
    }
}

/// `machine`: what the machine was built from and what the host would not save.
struct MachineSection: Codable, Equatable {
    enum PayloadKind: String, Codable { case linux, rawImage }
    var payloadKind: PayloadKind
    /// The raw image or kernel file the machine booted (informational: a restore does not read it).
    var payloadPath: String
    /// The raw image's mode ("real", "long", "user"); nil for Linux.
    var rawImageMode: String?
    var vcpuCount: Int
    var memoryBytes: UInt64
    var console: String
    /// Whether KVM's irqchip and PIT were created (Linux guests); the `vm` section then carries their state.
    var inKernelIRQChip: Bool
    /// Wall-clock time of the save, nanoseconds since 1970 (for a later "advance the guest clock" policy).
    var savedAtUnixNanoseconds: UInt64
    /// Every piece of state the host refused to give, vCPU and VM alike, as "vCPU 0: KVM_GET_XSAVE failed: ...".
    var hostRefused: [String]
    /// A Linux guest's whole configuration (disks, networks, vsock, console, transport), which a restore builds the
    /// same devices from; nil for raw images, which the fields above describe.
    var configuration: MachineConfiguration?
}

/// `host`: where the snapshot was saved. A restore in the same boot skips the CPU feature check (`HostBoot`).
struct HostSection: Codable, Equatable {
    var bootID: String
}

/// `device.virtio.N`: one virtio device and its transport.
struct VirtioSection: Codable, Equatable {
    /// The virtio device ID (1 net, 2 block, 3 console, 4 rng, 19 vsock): a restore checks it against the device
    /// it built in that position.
    var deviceType: UInt32
    var pci: VirtioPCISnapshot?
    var mmio: VirtioMMIOSnapshot?
}

/// `memory`: how the memory file maps onto guest-physical addresses.
struct MemorySection: Codable, Equatable {
    struct Region: Codable, Equatable {
        var guestAddress: UInt64
        var size: UInt64
        var fileOffset: UInt64
    }
    /// The memory file's name inside the snapshot directory.
    var file: String
    var pageSize: UInt64
    var fileSize: UInt64
    var regions: [Region]
    /// Bytes of non-zero pages written (the rest of the file is holes).
    var bytesWritten: UInt64
    /// `Diff` when the file holds only the pages written since the previous snapshot (to be merged onto that
    /// snapshot's memory file before a restore); absent for a whole memory file.
    var kind: String?
}

/// `vm`: VM-wide KVM state. The irqchip and PIT are present only with `inKernelIRQChip`.
struct VMSection: Codable, Equatable {
    var picMaster: Data?
    var picSlave: Data?
    var ioapic: Data?
    var pit: Data?
    var clock: Data?
}

/// `vcpu.N`: one vCPU's KVM state (VCPUState).
struct VCPUSection: Codable, Equatable {
    struct CPUID: Codable, Equatable {
        var function: UInt32, index: UInt32, flags: UInt32, eax: UInt32, ebx: UInt32, ecx: UInt32, edx: UInt32
    }
    struct MSR: Codable, Equatable {
        var index: UInt32
        var value: UInt64
    }
    var id: UInt32
    var registers: Data
    var specialRegisters: Data
    var fpu: Data?
    var xsave: Data?
    var xcrs: Data?
    var debugRegisters: Data?
    var lapic: Data?
    var events: Data?
    var mpState: UInt32?
    var tscKHz: UInt32?
    var cpuid: [CPUID]
    var msrs: [MSR]
    var refused: [String]

    init(id: UInt32, _ state: VCPUState) {
        self.id = id
        registers = Data(state.registers.bytes)
        specialRegisters = Data(state.specialRegisters.bytes)
        fpu = state.fpu.map { Data($0.bytes) }
        xsave = state.xsave.map { Data($0.bytes) }
        xcrs = state.xcrs.map { Data($0.bytes) }
        debugRegisters = state.debugRegisters.map { Data($0.bytes) }
        lapic = state.lapic.map { Data($0.bytes) }
        events = state.events.map { Data($0.bytes) }
        mpState = state.mpState
        tscKHz = state.tscKHz
        cpuid = state.cpuid.map { CPUID(function: $0.function, index: $0.index, flags: $0.flags, eax: $0.eax, ebx: $0.ebx, ecx: $0.ecx, edx: $0.edx) }
        msrs = state.msrs.map { MSR(index: $0.index, value: $0.value) }
        refused = state.refused
    }

    /// Back to KVM's types; every blob's size is checked against this host's struct.
    func vcpuState() throws(KVMError) -> VCPUState {
        func blob<Kind>(_ data: Data?) throws(KVMError) -> KVMStateBlob<Kind>? {
            guard let data else { return nil }
            return try KVMStateBlob<Kind>(bytes: Array(data))
        }
        guard cpuid.count <= 256, msrs.count <= 4096 else {
            throw .invalidArgument("\(cpuid.count) CPUID entries and \(msrs.count) MSRs are more than KVM takes")
        }
        return VCPUState(
            registers: try RegistersState(bytes: Array(registers)),
            specialRegisters: try SpecialRegistersState(bytes: Array(specialRegisters)),
            fpu: try blob(fpu), xsave: try blob(xsave), xcrs: try blob(xcrs), debugRegisters: try blob(debugRegisters),
            lapic: try blob(lapic), events: try blob(events), mpState: mpState, tscKHz: tscKHz,
            cpuid: cpuid.map { CPUIDEntry(function: $0.function, index: $0.index, flags: $0.flags, eax: $0.eax, ebx: $0.ebx, ecx: $0.ecx, edx: $0.edx) },
            msrs: msrs.map { MSRValue(index: $0.index, value: $0.value) },
            refused: refused)
    }
}
