import Testing

@testable import Devices

/// The root bus through both access mechanisms, as the guest drives them: ports 0xCF8/0xCFC and ECAM MMIO; and
/// BAR accesses through the windows, following the guest's BAR programming.
@Suite("PCI root bus")
struct PCIRootTests {
    /// A machine's worth of PCI: root, host bridge at 00:00.0, config ports, ECAM and the 32-bit memory and I/O
    /// windows on their buses.
    struct Machine {
        let root: PCIRoot
        var ports = PortIOBus()
        var mmio = MMIOBus()
        let changes = BARChangeRecorder()
        var mechanism1: ConfigMechanism1 { ConfigMechanism1(ports: ports) }

        init(layout: PCILayout = PCILayout()) throws {
            root = try PCIRoot(layout: layout, onBARChange: changes.callback)
            try root.attach(PCIHostBridge(), at: PCIAddress(device: 0))
            try ports.register(PCIConfigurationPorts(root: root), base: PCILayout.configAddressPort,
                               length: PCILayout.configPortCount, name: "PCI config")
            try mmio.register(PCIECAM(root: root), base: layout.ecamBase, length: layout.ecamSize, name: "ECAM")
            let window = layout.memory32Window
            try mmio.register(PCIBARWindow(root: root, space: .memory, base: window.lowerBound), base: window.lowerBound,
                              length: window.upperBound - window.lowerBound + 1, name: "PCI memory")
            if let io = layout.ioWindow {
                try ports.register(PCIBARWindow(root: root, space: .io, base: io.lowerBound), base: io.lowerBound,
                                   length: io.upperBound - io.lowerBound + 1, name: "PCI I/O")
            }
        }
    }

    let device3 = PCIAddress(device: 3)

    @Test("0xCFC + n returns byte n of the selected dword, at every width", arguments: [
        (0, 1, 0xF4), (1, 1, 0x1A), (2, 1, 0x42), (3, 1, 0x10), (0, 2, 0x1AF4), (2, 2, 0x1042), (0, 4, 0x1042_1AF4),
    ])
    func vendorIDAtEveryWidthAndOffset(offset: Int, width: Int, expected: UInt64) throws {
        let machine = try Machine()
        try machine.root.attach(TestPCIFunction(), at: device3)
        #expect(machine.mechanism1.read(device3, offset: offset, width: width) == expected)
    }

    @Test func hostBridgeIsAtZero() throws {
        let machine = try Machine()
        let bridge = PCIAddress(device: 0)
        #expect(machine.mechanism1.read(bridge, offset: 0x00, width: 4) == 0x0D57_8086)
        #expect(machine.mechanism1.read(bridge, offset: 0x08, width: 4) == 0x0600_0000)  // class 0x060000, rev 0
        #expect(machine.mechanism1.read(bridge, offset: 0x0E, width: 1) == 0x00)
    }

    @Test func absentFunctionsAndBusesReadAllOnes() throws {
        let machine = try Machine()
        #expect(machine.mechanism1.read(PCIAddress(device: 5), offset: 0, width: 4) == 0xFFFF_FFFF)
        #expect(machine.mechanism1.read(PCIAddress(device: 0, function: 1), offset: 0, width: 2) == 0xFFFF)
        #expect(machine.mechanism1.read(PCIAddress(bus: 1, device: 0), offset: 0, width: 4) == 0xFFFF_FFFF)
        // Writes there go nowhere (and do not trap).
        machine.mechanism1.write(PCIAddress(device: 5), offset: 4, width: 2, value: 0xFFFF)
        machine.mechanism1.write(PCIAddress(bus: 7, device: 0), offset: 4, width: 2, value: 0xFFFF)
    }

    @Test func configAddressRegister() throws {
        let machine = try Machine()
        // Linux's pci_check_type1: write 0x80000000 to 0xCF8, expect to read it back.
        machine.ports.write(address: 0xCF8, width: 4, value: 0x8000_0000)
        #expect(machine.ports.read(address: 0xCF8, width: 4) == 0x8000_0000)
        machine.ports.write(address: 0xCF8, width: 4, value: 0x8000_1803)  // bits 1-0 are reserved
        #expect(machine.ports.read(address: 0xCF8, width: 4) == 0x8000_1800)
        // Byte and word accesses to 0xCF8-0xCFB are not CONFIG_ADDRESS.
        machine.ports.write(address: 0xCFB, width: 1, value: 0x01)
        machine.ports.write(address: 0xCF8, width: 2, value: 0x1234)
        #expect(machine.ports.read(address: 0xCF8, width: 4) == 0x8000_1800)
        #expect(machine.ports.read(address: 0xCF9, width: 1) == 0xFF)
        #expect(machine.ports.read(address: 0xCF8, width: 2) == 0xFFFF)
    }

    @Test func clearedEnableBitReachesNothing() throws {
        let machine = try Machine()
        let function = TestPCIFunction()
        try machine.root.attach(function, at: device3)
        // The same address without bit 31.
        machine.ports.write(address: 0xCF8, width: 4, value: UInt64(device3.configAddress(register: 4) & 0x7FFF_FFFF))
        #expect(machine.ports.read(address: 0xCFC, width: 4) == 0xFFFF_FFFF)
        machine.ports.write(address: 0xCFC, width: 2, value: 0x0002)
        #expect(function.configuration.command == 0)
        // With bit 31 it works.
        machine.mechanism1.write(device3, offset: 4, width: 2, value: 0x0002)
        #expect(function.configuration.command == 0x0002)
    }

    @Test func dataPortAccessesPastItsEndAreUnclaimed() throws {
        let machine = try Machine()
        machine.mechanism1.select(PCIAddress(device: 0), register: 0)
        // A dword at 0xCFD would run to 0xD00, a word at 0xCFF to 0xD00: the bus refuses both.
        #expect(machine.ports.read(address: 0xCFD, width: 4) == nil)
        #expect(machine.ports.read(address: 0xCFF, width: 2) == nil)
        #expect(machine.ports.read(address: 0xCFF, width: 1) == 0x0D)  // top byte of the device ID 0x0D57
    }

    @Test func ecamReachesTheSameSpace() throws {
        let machine = try Machine()
        let function = TestPCIFunction()
        try machine.root.attach(function, at: device3)
        let base = machine.root.layout.ecamBase + device3.ecamOffset()
        #expect(machine.mmio.read(address: base, width: 4) == 0x1042_1AF4)
        #expect(machine.mmio.read(address: base + 2, width: 2) == 0x1042)
        #expect(machine.mmio.read(address: base + 0x0B, width: 1) == 0x01)
        machine.mmio.write(address: base + 4, width: 2, value: 0x0006)
        #expect(machine.mechanism1.read(device3, offset: 4, width: 2) == 0x0006)
        // Absent functions, and the extended space of a conventional (256-byte) function, read all ones.
        #expect(machine.mmio.read(address: machine.root.layout.ecamBase + PCIAddress(device: 9).ecamOffset(), width: 4)
                == 0xFFFF_FFFF)
        #expect(machine.mmio.read(address: base + 0x100, width: 4) == 0xFFFF_FFFF)
        // Bus 0's ECAM is 1 MiB; bus 1 is not mapped at all.
        #expect(machine.mmio.read(address: machine.root.layout.ecamBase + (1 << 20), width: 4) == nil)
    }

    @Test func ecamReachesExtendedSpace() throws {
        let machine = try Machine()
        try machine.root.attach(TestPCIFunction(size: 4096), at: device3)
        let base = machine.root.layout.ecamBase + device3.ecamOffset()
        #expect(machine.mmio.read(address: base + 0x100, width: 4) == 0)  // no extended capabilities
        #expect(machine.mmio.read(address: base + 0xFFC, width: 4) == 0)
    }

    @Test("malformed ECAM accesses are survived", arguments: [(0, 8), (1, 2), (2, 4), (3, 4), (0xFFF, 2)])
    func malformedECAM(offset: UInt64, width: Int) throws {
        let machine = try Machine()
        let function = TestPCIFunction()
        try machine.root.attach(function, at: device3)
        let address = machine.root.layout.ecamBase + device3.ecamOffset() + offset
        let read = machine.mmio.read(address: address, width: width)
        #expect(read == (width == 8 ? UInt64.max : (1 << (8 * UInt64(width))) - 1))
        let before = function.configuration
        machine.mmio.write(address: address, width: width, value: .max)
        #expect(function.configuration == before)
    }

    @Test func attachRules() throws {
        let machine = try Machine()
        #expect(throws: PCIError.addressInUse(PCIAddress(device: 0))) {
            try machine.root.attach(TestPCIFunction(), at: PCIAddress(device: 0))
        }
        #expect(throws: PCIError.busNotPresent(PCIAddress(bus: 1, device: 0))) {
            try machine.root.attach(TestPCIFunction(), at: PCIAddress(bus: 1, device: 0))
        }
        try machine.root.attach(TestPCIFunction(), at: PCIAddress(device: 2))
        #expect(try machine.root.attach(TestPCIFunction()) == PCIAddress(device: 1))
        #expect(try machine.root.attach(TestPCIFunction()) == PCIAddress(device: 3))
        #expect(machine.root.devices.map(\.address.description) == ["00:00.0", "00:01.0", "00:02.0", "00:03.0"])
        for _ in 4..<32 { try machine.root.attach(TestPCIFunction()) }
        #expect(throws: PCIError.noFreeDevice) { try machine.root.attach(TestPCIFunction()) }
    }

    // MARK: - BARs through the windows

    @Test func barAccessesFollowTheGuestsProgramming() throws {
        let machine = try Machine()
        let function = TestPCIFunction { space in
            space.setBAR(0, .memory32(size: 0x1000), address: 0xC000_0000)
        }
        try machine.root.attach(function, at: device3)
        let mech = machine.mechanism1

        // Decoding is off until the driver enables memory space.
        #expect(machine.mmio.read(address: 0xC000_0010, width: 4) == 0xFFFF_FFFF)
        #expect(function.barLog.isEmpty)
        mech.write(device3, offset: 4, width: 2, value: UInt64(PCICommand.memorySpace))
        let at0 = PCIBARMapping(index: 0, kind: .memory32, base: 0xC000_0000, size: 0x1000)
        #expect(machine.changes.log == [PCIBARChange(device: device3, index: 0, old: nil, new: at0)])
        #expect(machine.mmio.read(address: 0xC000_0010, width: 4) == 0x5566_7788)
        machine.mmio.write(address: 0xC000_0FF8, width: 8, value: 0xAB)
        #expect(function.barLog == [
            .init(isWrite: false, index: 0, offset: 0x10, width: 4, value: 0),
            .init(isWrite: true, index: 0, offset: 0xFF8, width: 8, value: 0xAB),
        ])
        // An access running past the BAR's end reaches nothing.
        #expect(machine.mmio.read(address: 0xC000_0FFC, width: 8) == .max)

        // Linux sizes with decoding off: one change off, one back on, none for the sizing itself.
        machine.changes.clear()
        mech.write(device3, offset: 4, width: 2, value: 0)
        mech.write(device3, offset: 0x10, width: 4, value: 0xFFFF_FFFF)
        #expect(mech.read(device3, offset: 0x10, width: 4) == 0xFFFF_F000)
        mech.write(device3, offset: 0x10, width: 4, value: 0xC000_0000)
        mech.write(device3, offset: 4, width: 2, value: UInt64(PCICommand.memorySpace))
        #expect(machine.changes.log == [
            PCIBARChange(device: device3, index: 0, old: at0, new: nil),
            PCIBARChange(device: device3, index: 0, old: nil, new: at0),
        ])

        // The guest moves the BAR: the old address goes dead, the new one answers.
        machine.changes.clear()
        mech.write(device3, offset: 0x10, width: 4, value: 0xC020_0000)
        let moved = PCIBARMapping(index: 0, kind: .memory32, base: 0xC020_0000, size: 0x1000)
        #expect(machine.changes.log == [PCIBARChange(device: device3, index: 0, old: at0, new: moved)])
        #expect(machine.mmio.read(address: 0xC000_0010, width: 4) == 0xFFFF_FFFF)
        #expect(machine.mmio.read(address: 0xC020_0010, width: 4) == 0x5566_7788)

        // Writes elsewhere in configuration space report nothing.
        machine.changes.clear()
        mech.write(device3, offset: 0x3C, width: 1, value: 11)
        #expect(machine.changes.log.isEmpty)
    }

    @Test func ioBARsAnswerOnThePortWindow() throws {
        let machine = try Machine()
        let function = TestPCIFunction(barReadValue: 0xA5) { space in space.setBAR(1, .io(size: 0x20), address: 0xC020) }
        try machine.root.attach(function, at: device3)
        #expect(machine.ports.read(address: 0xC024, width: 1) == 0xFF)
        machine.mechanism1.write(device3, offset: 4, width: 2, value: UInt64(PCICommand.ioSpace))
        #expect(machine.ports.read(address: 0xC024, width: 1) == 0xA5)
        #expect(function.barLog.last == .init(isWrite: false, index: 1, offset: 4, width: 1, value: 0))
        #expect(machine.changes.log.map(\.new) == [PCIBARMapping(index: 1, kind: .io, base: 0xC020, size: 0x20)])
    }

    @Test func sixtyFourBitBARMovesWithBothHalves() throws {
        let machine = try Machine()
        let function = TestPCIFunction { space in space.setBAR(2, .memory64(size: 0x4000), address: 0xC000_4000) }
        try machine.root.attach(function, at: device3)
        let mech = machine.mechanism1
        mech.write(device3, offset: 4, width: 2, value: UInt64(PCICommand.memorySpace))
        #expect(machine.mmio.read(address: 0xC000_4000, width: 4) == 0x5566_7788)
        // As Linux's pci_std_update_resource: decoding off, low, high, decoding on.
        machine.changes.clear()
        mech.write(device3, offset: 4, width: 2, value: 0)
        mech.write(device3, offset: 0x18, width: 4, value: 0x0000_8000)
        mech.write(device3, offset: 0x1C, width: 4, value: 0x10)
        mech.write(device3, offset: 4, width: 2, value: UInt64(PCICommand.memorySpace))
        #expect(machine.changes.log.map(\.new) == [nil, PCIBARMapping(index: 2, kind: .memory64, base: 0x10_0000_8000, size: 0x4000)])
        #expect(machine.root.readBAR(.memory, address: 0x10_0000_8008, width: 8) == 0x1122_3344_5566_7788)
        #expect(machine.mmio.read(address: 0xC000_4000, width: 4) == 0xFFFF_FFFF)
    }
}
