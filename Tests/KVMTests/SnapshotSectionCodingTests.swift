import Devices
import Foundation
import KVM
import Testing
@testable import Swiftlet

/// The binary section encoding of state files from format version 2 on (SectionCoding.swift, docs/snapshots.md):
/// every section type round-trips, and a payload that is cut short, too long, or forged is refused with a reason,
/// never a crash or a huge allocation. No KVM needed.
struct SnapshotSectionCodingTests {
    static func roundTrip<T: BinarySnapshotSection & Equatable>(_ value: T) throws -> T {
        var reader = SectionReader(SnapshotSection.encode(value))
        return try T(from: &reader)
    }

    static func decodeError<T: BinarySnapshotSection>(_ type: T.Type, _ bytes: [UInt8]) -> SectionDecodingError? {
        var reader = SectionReader(bytes)
        do { _ = try T(from: &reader); return nil } catch { return error }
    }

    static let vcpu: VCPUSection = {
        func blob<Kind>(_ fill: UInt8) -> KVMStateBlob<Kind> {
            try! KVMStateBlob<Kind>(bytes: Array(repeating: fill, count: KVMStateBlob<Kind>.size))
        }
        let state = VCPUState(registers: blob(1), specialRegisters: blob(2), fpu: blob(3), xsave: nil, xcrs: blob(5),
                              debugRegisters: nil, lapic: blob(7), events: blob(8), mpState: 0, tscKHz: nil,
                              cpuid: [CPUIDEntry(function: 7, index: 0, flags: 1, eax: 2, ebx: 3, ecx: 4, edx: 5),
                                      CPUIDEntry(function: 0x8000_0001, index: 0, flags: 0, eax: 0, ebx: 0, ecx: .max, edx: 9)],
                              msrs: [MSRValue(index: 0x10, value: .max), MSRValue(index: 0xC000_0080, value: 0xD01)],
                              refused: ["KVM_GET_XSAVE failed: Operation not supported (errno 95)", "ü"])
        return VCPUSection(id: 3, state)
    }()

    static let linuxMachine = MachineSection(
        payloadKind: .linux, payloadPath: "/boot/vmlinuz", rawImageMode: nil, vcpuCount: 2, memoryBytes: 256 << 20,
        console: "serial", inKernelIRQChip: true, savedAtUnixNanoseconds: 1_796_000_000_000_000_000, hostRefused: [],
        configuration: MachineConfiguration(payload: .linux(LinuxPayload(kernelPath: "/boot/vmlinuz", commandLine: "console=ttyS0 quiet")),
                                            vcpuCount: 2, memory: .mebibytes(256)))

    @Test("every binary section type comes back equal, with optionals present and absent")
    func roundTrips() throws {
        #expect(try Self.roundTrip(Self.vcpu) == Self.vcpu)
        #expect(try Self.roundTrip(Self.linuxMachine) == Self.linuxMachine)
        let raw = MachineSection(payloadKind: .rawImage, payloadPath: "/guest.bin", rawImageMode: "user", vcpuCount: 1,
                                 memoryBytes: 1 << 30, console: "serial", inKernelIRQChip: false, savedAtUnixNanoseconds: 5,
                                 hostRefused: ["MSR 0x4b564d06"], configuration: nil)
        #expect(try Self.roundTrip(raw) == raw)
        for kind in [nil, "Diff"] {
            let memory = MemorySection(file: "memory", pageSize: 4096, fileSize: 5 << 30,
                                       regions: [.init(guestAddress: 0, size: 3 << 30, fileOffset: 0),
                                                 .init(guestAddress: 4 << 30, size: 2 << 30, fileOffset: 3 << 30)],
                                       bytesWritten: 12_288, kind: kind)
            #expect(try Self.roundTrip(memory) == memory)
        }
        let vm = VMSection(picMaster: Data([1, 2]), picSlave: nil, ioapic: Data(repeating: 9, count: 300), pit: Data(), clock: nil)
        #expect(try Self.roundTrip(vm) == vm)
        var serial = Serial8250.State()
        serial.lineControl = 0x83
        serial.overrunError = true
        serial.receiveFIFO = [0x41, 0x42]
        #expect(try Self.roundTrip(serial) == serial)
        var i8042 = I8042.State()
        i8042.pendingKeyboardCommand = 0xED
        i8042.outputBuffer = [0xFA]
        #expect(try Self.roundTrip(i8042) == i8042)
        var rtc = CMOSRTC.State()
        rtc.clockOffset = -3600
        rtc.ram[0x0E] = 0x80
        #expect(try Self.roundTrip(rtc) == rtc)
        let host = HostSection(bootID: "5f1c2f9e-8d0a-4c43-9a4e-2b0f3c8f6d11")
        #expect(try Self.roundTrip(host) == host)
        let generation = VMGenerationID.State(address: 0xE_0030, gsi: 9)
        #expect(try Self.roundTrip(generation) == generation)
    }

    @Test("a section cut short at any byte, or with a byte after its last field, is refused")
    func truncatedOrLongerIsRefused() {
        let bytes = SnapshotSection.encode(Self.vcpu)
        for length in 0..<bytes.count {
            #expect(Self.decodeError(VCPUSection.self, Array(bytes.prefix(length))) != nil, "cut at \(length) of \(bytes.count)")
        }
        #expect(Self.decodeError(VCPUSection.self, bytes + [0]) == SectionDecodingError(reason: "1 bytes follow its last field"))
        let machine = SnapshotSection.encode(Self.linuxMachine)
        for length in 0..<machine.count {
            #expect(Self.decodeError(MachineSection.self, Array(machine.prefix(length))) != nil, "cut at \(length)")
        }
    }

    @Test("forged lengths, counts, flags and text are refused before anything is allocated")
    func forgedFieldsAreRefused() {
        // A byte run claiming 4 GiB in a 12-byte section.
        var writer = SectionWriter()
        writer.write(UInt32(3))             // vCPU id
        writer.write(UInt32.max)            // the registers' length
        writer.write(UInt64(0))
        #expect(Self.decodeError(VCPUSection.self, writer.bytes)?.reason == "the registers says 4294967295 bytes, more than the 8 left")

        // An MSR count far beyond the bytes left: the section ends with that count, two MSRs and an empty list.
        var vcpu = Self.vcpu
        vcpu.refused = []
        var forged = SnapshotSection.encode(vcpu)
        let msrCountOffset = forged.count - (4 + 2 * 12 + 4)
        withUnsafeBytes(of: UInt32(0x1000_0000).littleEndian) { forged.replaceSubrange(msrCountOffset..<(msrCountOffset + 4), with: $0) }
        let reason = Self.decodeError(VCPUSection.self, forged)?.reason ?? ""
        #expect(reason == "268435456 MSRs cannot fit in the 28 bytes left", "\(reason)")

        // A presence flag or Bool that is neither 0 nor 1.
        var flag = SnapshotSection.encode(VMSection(picMaster: nil, picSlave: nil, ioapic: nil, pit: nil, clock: nil))
        flag[0] = 2
        #expect(Self.decodeError(VMSection.self, flag)?.reason == "whether the PIC master is present is 2, not 0 or 1")

        // Text that is not UTF-8.
        var text = SectionWriter()
        text.write(bytes: [0xFF, 0xFE])
        text.write(UInt64(0))
        #expect(Self.decodeError(MemorySection.self, text.bytes)?.reason == "the memory file name is not UTF-8")
    }

    @Test("a binary section that cannot be read becomes invalidSection naming file and section; version 1 files are read as JSON")
    func decodeThroughTheFile() throws {
        var file = SnapshotFile()
        file.sections = [.init(name: SnapshotSection.vcpu(0), payload: Array(SnapshotSection.encode(Self.vcpu).dropLast()))]
        #expect(throws: SnapshotError.invalidSection(path: "/s/state", name: "vcpu.0", reason: "refused state says 2 bytes, more than the 1 left")) {
            try SnapshotSection.decode(VCPUSection.self, SnapshotSection.vcpu(0), from: file, path: "/s/state")
        }
        file.version = 1
        file.sections = [.init(name: SnapshotSection.vcpu(0), payload: SnapshotSection.encodeJSON(Self.vcpu))]
        #expect(try SnapshotSection.decode(VCPUSection.self, SnapshotSection.vcpu(0), from: file, path: "/s/state") == Self.vcpu)
    }
}
