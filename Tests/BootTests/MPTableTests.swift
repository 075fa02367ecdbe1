import Testing
@testable import Boot
import GuestMemory

/// The Intel MP table (MultiProcessor Specification 1.4) as a guest reads it: found by the scan Linux does, its
/// checksums and lengths checked as Linux's mpparse.c checks them, its entries counted and decoded.
@Suite struct MPTableTests {
    @Test func oneVCPUTableIsFoundWhereLinuxScansAndChecksOut() throws {
        let memory = try makeGuestMemory()
        try MPTable.write(MPTableConfiguration(vcpuCount: 1), into: memory)
        let table = try #require(try ParsedMPTable.scan(memory))
        #expect(table.floatingPointerAddress == 0xF_0000)
        #expect(table.configurationTableAddress == 0xF_0010)
        #expect(table.localAPICAddress == 0xFEE0_0000)
        #expect(table.oemID == "SWIFTLET" && table.productID == "MICROVM     ")
        #expect(table.processors == [.init(apicID: 0, version: 0x14, flags: 0b11)])
        #expect(table.buses == [.init(id: 0, type: "ISA   ")])
        #expect(table.ioapics == [.init(id: 0, version: 0x11, flags: 1, address: 0xFEC0_0000)])
        // 16 ISA IRQs, each on the IOAPIC pin of its own number (KVM's default routes).
        #expect(table.interrupts.count == 16)
        #expect(table.interrupts.map(\.sourceBusIRQ) == Array(0..<16))
        #expect(table.interrupts.allSatisfy { $0.type == 0 && $0.sourceBus == 0 && $0.destinationPin == $0.sourceBusIRQ && $0.flags == 0 })
        #expect(table.localInterrupts == [
            .init(type: 3, flags: 0, sourceBus: 0, sourceBusIRQ: 0, destination: 0, destinationPin: 0),      // ExtINT → BSP LINT0
            .init(type: 1, flags: 0, sourceBus: 0, sourceBusIRQ: 0, destination: 0xFF, destinationPin: 1),   // NMI → all LINT1
        ])
        // Header 44 + processor 20 + bus, IOAPIC, 16 interrupts, 2 local interrupts at 8 each.
        #expect(table.baseTableLength == 44 + 20 + 8 * (1 + 1 + 16 + 2))
        #expect(table.entryCount == 1 + 1 + 1 + 16 + 2)
        #expect(MPTable.size(MPTableConfiguration(vcpuCount: 1)) == 16 + Int(table.baseTableLength))
    }

    @Test(arguments: [2, 4, 64])
    func everyVCPUIsAnEnabledProcessorAndOnlyTheFirstIsTheBSP(vcpus: Int) throws {
        let memory = try makeGuestMemory()
        try MPTable.write(MPTableConfiguration(vcpuCount: vcpus), into: memory)
        let table = try #require(try ParsedMPTable.scan(memory))
        #expect(table.processors.map(\.apicID) == (0..<vcpus).map(UInt8.init))
        #expect(table.processors.allSatisfy { $0.flags & 1 == 1 })
        #expect(table.processors.filter { $0.flags & 2 != 0 }.map(\.apicID) == [0])
        #expect(table.baseTableLength == UInt16(44 + 20 * vcpus + 8 * 20))
    }

    @Test func theLargestVCPUCountFitsAndOneMoreIsRefused() throws {
        let memory = try makeGuestMemory()
        var config = MPTableConfiguration(vcpuCount: MPTableConfiguration.maximumVCPUCount)
        config.pciBusPresent = true
        config.pciInterrupts = allPCIRoutes()
        try MPTable.write(config, into: memory)
        let table = try #require(try ParsedMPTable.scan(memory))
        #expect(table.processors.count == 255)
        #expect(table.processors.last?.apicID == 254)
        #expect(MPTable.size(config) < 0x1_0000)
        #expect(throws: BootError.self) { try MPTable.build(MPTableConfiguration(vcpuCount: 256)) }
        #expect(throws: BootError.self) { try MPTable.build(MPTableConfiguration(vcpuCount: 0)) }
    }

    /// With PCI, bus 0 must be the PCI bus: Linux matches a device's INTx entry by comparing the entry's source
    /// bus ID with the PCI bus number.
    @Test func pciBusIsBusZeroAndItsINTxRoutesAreLevelActiveLow() throws {
        let memory = try makeGuestMemory()
        var config = MPTableConfiguration(vcpuCount: 2)
        config.pciBusPresent = true
        config.pciInterrupts = allPCIRoutes()
        try MPTable.write(config, into: memory)
        let table = try #require(try ParsedMPTable.scan(memory))
        #expect(table.buses == [.init(id: 0, type: "PCI   "), .init(id: 1, type: "ISA   ")])
        let isa = table.interrupts.filter { $0.sourceBus == 1 }
        let pci = table.interrupts.filter { $0.sourceBus == 0 }
        #expect(isa.count == 16)
        #expect(pci.count == 128)
        // Device 3, INTB: source bus IRQ = device << 2 | pin, GSI 16 + (3 + 1) % 8.
        let entry = try #require(pci.first { $0.sourceBusIRQ == 3 << 2 | 1 })
        #expect(entry.destinationPin == 20)
        #expect(entry.flags == 0b11_11)
        #expect(table.localInterrupts.allSatisfy { $0.sourceBus == 1 })
    }

    @Test func additionalLinesAboveTheISARangeGetEntriesOnce() throws {
        let memory = try makeGuestMemory()
        var config = MPTableConfiguration(vcpuCount: 1)
        config.additionalLines = [.init(gsi: 5), .init(gsi: 20), .init(gsi: 21), .init(gsi: 20)]
        try MPTable.write(config, into: memory)
        let table = try #require(try ParsedMPTable.scan(memory))
        #expect(table.interrupts.count == 18)
        #expect(table.interrupts.suffix(2).map(\.destinationPin) == [20, 21])
        #expect(table.interrupts.suffix(2).allSatisfy { $0.flags == 0b01_01 && $0.sourceBus == 0 })

        config.additionalLines = [.init(gsi: 24)]
        #expect(throws: BootError.self) { try MPTable.build(config) }
    }

    @Test func tableLiesInTheE820ReservedBIOSArea() throws {
        var config = MPTableConfiguration(vcpuCount: 64)
        config.pciBusPresent = true
        config.pciInterrupts = allPCIRoutes()
        let start = MPTable.defaultBase.rawValue
        let end = start + UInt64(MPTable.size(config))
        let map = try E820Map(ramRanges: X86MemoryLayout.ramRanges(size: 512 << 20))
        #expect(map.entries.contains { $0.type == .reserved && $0.address.rawValue <= start && end <= $0.address.rawValue + $0.size })
        #expect(start >= BootLayout.biosAreaStart.rawValue && end <= BootLayout.highMemoryStart.rawValue)
    }

    @Test func checksumsCoverEveryByte() throws {
        var config = MPTableConfiguration(vcpuCount: 3)
        config.pciBusPresent = true
        config.pciInterrupts = allPCIRoutes()
        let bytes = try MPTable.build(config)
        #expect(MPChecksum.sum(bytes[0..<16]) == 0)
        let length = Int(bytes.u16(16 + 4))
        #expect(16 + length == bytes.count)
        #expect(MPChecksum.sum(bytes[16..<(16 + length)]) == 0)
        // A changed byte anywhere breaks it.
        var broken = bytes
        broken[16 + 60] &+= 1
        #expect(MPChecksum.sum(broken[16..<(16 + length)]) != 0)
    }

    @Test func badConfigurationsAreRefused() {
        var misplaced = MPTableConfiguration(vcpuCount: 1)
        #expect(throws: BootError.self) { try MPTable.build(misplaced, at: GuestAddress(0xF_0008)) }
        #expect(throws: BootError.self) { try MPTable.build(misplaced, at: GuestAddress(0xF_FFF0)) }
        misplaced.pciInterrupts = [.init(device: 1, pin: 0, gsi: 17)]
        #expect(throws: BootError.self) { try MPTable.build(misplaced) }   // no PCI bus
        misplaced.pciBusPresent = true
        misplaced.pciInterrupts = [.init(device: 1, pin: 4, gsi: 17)]
        #expect(throws: BootError.self) { try MPTable.build(misplaced) }
        var tooMany = MPTableConfiguration(vcpuCount: 1)
        tooMany.pciBusPresent = true
        tooMany.pciInterrupts = allPCIRoutes() + allPCIRoutes()
        #expect(throws: BootError.self) { try MPTable.build(tooMany) }
        var names = MPTableConfiguration(vcpuCount: 1)
        names.oemID = "NINE CHRS"
        #expect(throws: BootError.self) { try MPTable.build(names) }
    }

    private func allPCIRoutes() -> [MPTableConfiguration.PCIInterrupt] {
        (0..<32).flatMap { device in
            (0..<4).map { pin in
                MPTableConfiguration.PCIInterrupt(device: UInt8(device), pin: UInt8(pin), gsi: 16 + UInt32(device + pin) % 8)
            }
        }
    }
}

/// An MP table read back the way Linux does it (arch/x86/kernel/mpparse.c): smp_scan_config looks for "_MP_" on
/// 16-byte boundaries in the first KiB, the last KiB below 640 KiB and 0xF0000-0xFFFFF, and takes a pointer whose
/// LENGTH is 1, whose 16 bytes sum to 0 and whose SPEC_REV is 1 or 4; smp_check_mpc then wants "PCMP", a checksum
/// of 0 over BASE TABLE LENGTH bytes, SPEC_REV 1 or 4 and a local APIC address; smp_read_mpc walks the entries by
/// type (20 bytes for a processor, 8 for the others) and stops at an unknown type.
struct ParsedMPTable {
    struct Processor: Equatable { var apicID: UInt8, version: UInt8, flags: UInt8 }
    struct Bus: Equatable { var id: UInt8, type: String }
    struct IOAPIC: Equatable { var id: UInt8, version: UInt8, flags: UInt8, address: UInt32 }
    struct Interrupt: Equatable {
        var type: UInt8, flags: UInt16, sourceBus: UInt8, sourceBusIRQ: UInt8, destination: UInt8, destinationPin: UInt8
    }

    var floatingPointerAddress: UInt64 = 0
    var configurationTableAddress: UInt64 = 0
    var baseTableLength: UInt16 = 0
    var entryCount: UInt16 = 0
    var oemID = "", productID = ""
    var localAPICAddress: UInt32 = 0
    var processors: [Processor] = []
    var buses: [Bus] = []
    var ioapics: [IOAPIC] = []
    var interrupts: [Interrupt] = []
    var localInterrupts: [Interrupt] = []

    static let scanRanges: [(start: UInt64, length: UInt64)] = [(0, 0x400), (639 * 0x400, 0x400), (0xF_0000, 0x1_0000)]

    static func scan(_ memory: GuestMemory) throws -> ParsedMPTable? {
        for range in scanRanges {
            for address in stride(from: range.start, to: range.start + range.length, by: 16) {
                let candidate = try memory.read(at: GuestAddress(address), count: 16)
                guard candidate[0..<4].elementsEqual("_MP_".utf8), candidate[8] == 1, MPChecksum.sum(candidate) == 0,
                      candidate[9] == 1 || candidate[9] == 4 else { continue }
                return try parse(memory, floatingPointer: address, candidate)
            }
        }
        return nil
    }

    private static func parse(_ memory: GuestMemory, floatingPointer: UInt64, _ pointer: [UInt8]) throws -> ParsedMPTable? {
        var table = ParsedMPTable()
        table.floatingPointerAddress = floatingPointer
        table.configurationTableAddress = UInt64(pointer.u32(4))
        let header = try memory.read(at: GuestAddress(table.configurationTableAddress), count: 44)
        guard header[0..<4].elementsEqual("PCMP".utf8), header[6] == 1 || header[6] == 4, header.u32(36) != 0 else { return nil }
        table.baseTableLength = header.u16(4)
        let bytes = try memory.read(at: GuestAddress(table.configurationTableAddress), count: Int(table.baseTableLength))
        guard MPChecksum.sum(bytes) == 0 else { return nil }
        table.entryCount = header.u16(34)
        table.oemID = String(decoding: header[8..<16], as: UTF8.self)
        table.productID = String(decoding: header[16..<28], as: UTF8.self)
        table.localAPICAddress = header.u32(36)
        var offset = 44
        var count = 0
        while offset < bytes.count {
            let entry = bytes[offset...]
            func interrupt() -> Interrupt {
                Interrupt(type: entry[offset + 1], flags: bytes.u16(offset + 2), sourceBus: entry[offset + 4],
                          sourceBusIRQ: entry[offset + 5], destination: entry[offset + 6], destinationPin: entry[offset + 7])
            }
            switch bytes[offset] {
            case 0:
                table.processors.append(.init(apicID: bytes[offset + 1], version: bytes[offset + 2], flags: bytes[offset + 3]))
                offset += 20
            case 1:
                table.buses.append(.init(id: bytes[offset + 1], type: String(decoding: bytes[(offset + 2)..<(offset + 8)], as: UTF8.self)))
                offset += 8
            case 2:
                table.ioapics.append(.init(id: bytes[offset + 1], version: bytes[offset + 2], flags: bytes[offset + 3],
                                           address: bytes.u32(offset + 4)))
                offset += 8
            case 3: table.interrupts.append(interrupt()); offset += 8
            case 4: table.localInterrupts.append(interrupt()); offset += 8
            default: return nil
            }
            count += 1
        }
        guard offset == bytes.count, count == Int(table.entryCount) else { return nil }
        return table
    }
}
