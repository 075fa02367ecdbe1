import Testing

@testable import Devices

/// The configuration space as a driver sees it: header fields, which bits writes can change, RW1C status bits,
/// the capability list, BAR sizing, and what happens to accesses hardware would never make.
@Suite("PCI configuration space")
struct PCIConfigurationSpaceTests {
    func makeSpace() -> PCIConfigurationSpace { PCIConfigurationSpace(identity: TestPCIFunction.identity) }

    @Test func headerFieldsReadAtEveryWidth() {
        let space = makeSpace()
        #expect(space.read(offset: 0x00, width: 4) == 0x1042_1AF4)  // device << 16 | vendor
        #expect(space.read(offset: 0x00, width: 2) == 0x1AF4)
        #expect(space.read(offset: 0x02, width: 2) == 0x1042)
        #expect(space.read(offset: 0x01, width: 1) == 0x1A)
        // Revision 1, class 0x010000 (mass storage, SCSI): the dword at 0x08 is class << 8 | revision.
        #expect(space.read(offset: 0x08, width: 4) == 0x0100_0001)
        #expect(space.read(offset: 0x0E, width: 1) == 0x00)  // header type 0, single function
        #expect(space.read(offset: 0x2C, width: 4) == 0x0002_1AF4)  // subsystem ID << 16 | subsystem vendor
        #expect(space.read(offset: 0x34, width: 1) == 0)  // no capabilities yet
    }

    @Test func readOnlyFieldsIgnoreWrites() {
        var space = makeSpace()
        for offset in stride(from: 0, to: 0x40, by: 4) where !(0x10..<0x28).contains(offset) && offset != 0x04 {
            let before = space.read(offset: offset, width: 4)
            space.write(offset: offset, width: 4, value: 0xFFFF_FFFF)
            let after = space.read(offset: offset, width: 4)
            switch offset {
            case 0x0C: #expect(after == before | 0xFF, "cache line size is the only writable byte at 0x0C")
            case 0x3C: #expect(after == before | 0xFF, "interrupt line is the only writable byte at 0x3C")
            default: #expect(after == before, "offset 0x\(String(offset, radix: 16)) changed")
            }
        }
    }

    @Test func commandRegisterKeepsOnlyImplementedBits() {
        var space = makeSpace()
        space.write(offset: 0x04, width: 2, value: 0xFFFF)
        // I/O, memory, bus master, parity error response, SERR#, interrupt disable.
        #expect(space.command == 0x0547)
        space.write(offset: 0x04, width: 2, value: 0)
        #expect(space.command == 0)
    }

    @Test func statusErrorBitsAreWriteOneToClear() {
        var space = makeSpace()
        space.raiseStatus(PCIStatus.writeOneToClear)  // the function reports every error
        space.interruptStatus = true
        #expect(space.status == 0xF908)

        space.write(offset: 0x06, width: 2, value: 0)  // writing zeros clears nothing
        #expect(space.status == 0xF908)
        space.write(offset: 0x06, width: 2, value: 0x2000)  // clears only "received master abort"
        #expect(space.status == 0xD908)
        space.write(offset: 0x06, width: 2, value: 0xFFFF)  // the interrupt status bit is read-only
        #expect(space.status == 0x0008)

        // A dword write of the command register carries the status half as zeros: nothing is cleared.
        space.raiseStatus(0x8000)
        space.write(offset: 0x04, width: 4, value: 0x0000_0002)
        #expect(space.status == 0x8008)
        #expect(space.command == 0x0002)
    }

    @Test("malformed accesses read all ones and write nothing", arguments: [
        (0x00, 3), (0x00, 8), (0x00, 0), (0x01, 2), (0x02, 4), (0x03, 4), (0xFF, 2), (0xFE, 4), (0x100, 1),
        (0x1000, 4), (-1, 1), (-4, 4),
    ])
    func malformedAccesses(offset: Int, width: Int) {
        var space = makeSpace()
        space.setBAR(0, .memory32(size: 0x1000))
        let before = space
        let expected: UInt32 = width == 1 ? 0xFF : width == 2 ? 0xFFFF : 0xFFFF_FFFF
        #expect(space.read(offset: offset, width: width) == expected)
        #expect(space.write(offset: offset, width: width, value: 0xFFFF_FFFF) == false)
        #expect(space == before)
    }

    @Test func theLastBytesAreReachable() {
        var space = makeSpace()
        #expect(space.read(offset: 0xFC, width: 4) == 0)
        #expect(space.read(offset: 0xFF, width: 1) == 0)
        var extended = PCIConfigurationSpace(identity: TestPCIFunction.identity, size: 4096)
        #expect(extended.read(offset: 0xFFC, width: 4) == 0)
        space.setWritableMask(UInt8(0xFF), at: 0xFF)
        space.write(offset: 0xFF, width: 1, value: 0x5A)
        #expect(space.read(offset: 0xFC, width: 4) == 0x5A00_0000)
        extended.setWritableMask(UInt32.max, at: 0xFFC)
        extended.write(offset: 0xFFC, width: 4, value: 0x1234_5678)
        #expect(extended.read(offset: 0xFFE, width: 2) == 0x1234)
    }

    @Test func capabilityListIsWalkable() {
        var space = makeSpace()
        let common = space.addVirtioCapability(VirtioPCICapability(type: .common, bar: 4, offset: 0, length: 0x38))
        let notify = space.addVirtioCapability(.notify(bar: 4, offset: 0x3000, length: 0x1000, multiplier: 4))
        space.setBAR(2, .memory32(size: 0x1000))
        let msix = space.addMSIXCapability(vectorCount: 3, tableBAR: 2, tableOffset: 0, pbaBAR: 2, pbaOffset: 0x800)

        #expect(space.status & PCIStatus.capabilitiesList != 0)
        #expect(space.read(offset: 0x34, width: 1) == 0x40)
        // virtio_pci_cap is 16 bytes (dword aligned, so the next starts right after); the notify one has 20.
        #expect(common == 0x40 && notify == 0x50 && msix.offset == 0x64)
        #expect(space.capabilities.map(\.id) == [0x09, 0x09, 0x11])
        #expect(space.capabilities.map(\.offset) == [0x40, 0x50, 0x64])
        #expect(space.read(offset: 0x41, width: 1) == 0x50)  // cap_next
        #expect(space.read(offset: 0x65, width: 1) == 0x00)  // the list ends

        // struct virtio_pci_cap: vndr, next, len, cfg_type, bar, id, padding, offset, length.
        #expect(space.read(offset: 0x40, width: 4) == 0x0110_5009)  // cfg_type 1, len 16, next 0x50, vndr 9
        #expect(space.read(offset: 0x44, width: 4) == 0x0000_0004)  // bar 4, id 0
        #expect(space.read(offset: 0x48, width: 4) == 0)
        #expect(space.read(offset: 0x4C, width: 4) == 0x38)
        #expect(space.read(offset: 0x52, width: 1) == 20)  // notify cap_len includes notify_off_multiplier
        #expect(space.read(offset: 0x60, width: 4) == 4)

        // IDs, next pointers and the read-only payload ignore writes.
        let before = space
        for offset in stride(from: 0x40, to: 0x64, by: 4) { space.write(offset: offset, width: 4, value: 0xFFFF_FFFF) }
        space.write(offset: 0x34, width: 1, value: 0x80)
        #expect(space == before)
    }

    @Test func capabilityWalkSurvivesALoop() {
        var space = makeSpace()
        space.addCapability(id: 0x09, body: [4, 0])
        space.set(UInt8(0x40), at: 0x41)  // next points at itself
        #expect(space.capabilities.count == 48)  // bounded, no hang
    }

    @Test func interruptPinAndINTxDisable() {
        var space = makeSpace()
        space.interruptPin = .intA
        space.interruptLine = 17
        #expect(space.read(offset: 0x3C, width: 2) == 0x0111)
        #expect(!space.intxAsserted)
        space.interruptStatus = true
        #expect(space.intxAsserted)
        space.write(offset: 0x04, width: 2, value: UInt32(PCICommand.interruptDisable))
        #expect(!space.intxAsserted)
        #expect(space.interruptStatus, "interrupt status still shows the condition while INTx is disabled")

        let line = RecordingInterruptLine()
        var intx = PCIINTxLine(line)
        intx.update(from: space)
        space.write(offset: 0x04, width: 2, value: 0)
        intx.update(from: space)
        intx.update(from: space)
        space.interruptStatus = false
        intx.update(from: space)
        #expect(line.history == [true, false])
    }

    @Test func intxRoutingRotatesPinsWithSlots() {
        let routing = PCIINTxRouting()
        #expect(routing.gsi(device: 0, pin: .intA) == 16)
        #expect(routing.gsi(device: 1, pin: .intA) == 17)
        #expect(routing.gsi(device: 1, pin: .intD) == 20)
        #expect(routing.gsi(device: 7, pin: .intB) == 16)
        #expect(routing.gsi(device: 31, pin: .intA) == 23)
    }
}
