import Testing

@testable import Devices

@Suite("Bus registration")
struct BusRegistrationTests {
    @Test func overlappingRangesAreRejectedNamingBothDevices() throws {
        var bus = PortIOBus()
        try bus.register(RecordingDevice(), base: 0x3F8, length: 8, name: "com1")

        // 0x3FF is com1's last port, so a device starting there overlaps it by one port.
        let error = #expect(throws: BusError.self) {
            try bus.register(RecordingDevice(), base: 0x3FF, length: 2, name: "intruder")
        }
        #expect(
            error
                == .overlap(
                    BusRange(name: "intruder", base: 0x3FF, length: 2),
                    existing: BusRange(name: "com1", base: 0x3F8, length: 8)))
        let message = error?.description ?? ""
        #expect(message.contains("intruder [0x3ff...0x400]"))
        #expect(message.contains("com1 [0x3f8...0x3ff]"))

        // An overlap from below, and a range that swallows an existing one entirely.
        #expect(throws: BusError.self) { try bus.register(RecordingDevice(), base: 0x3F0, length: 9, name: "low") }
        #expect(throws: BusError.self) { try bus.register(RecordingDevice(), base: 0, length: 0x1000, name: "all") }
        #expect(bus.ranges.map(\.name) == ["com1"])
    }

    @Test func adjacentRangesAreFine() throws {
        var bus = PortIOBus()
        try bus.register(RecordingDevice(), base: 0x3F8, length: 8, name: "com1")
        try bus.register(RecordingDevice(), base: 0x3F0, length: 8, name: "below")
        try bus.register(RecordingDevice(), base: 0x400, length: 1, name: "above")
        #expect(bus.ranges.map(\.name) == ["below", "com1", "above"])
    }

    @Test func emptyWrappingAndOutOfSpaceRangesAreRejected() throws {
        var pio = PortIOBus()
        #expect(throws: BusError.zeroLength(BusRange(name: "empty", base: 0x80, length: 0))) {
            try pio.register(RecordingDevice(), base: 0x80, length: 0, name: "empty")
        }
        // Port I/O ends at 0xFFFF.
        #expect(throws: BusError.self) { try pio.register(RecordingDevice(), base: 0xFFFF, length: 2, name: "big") }
        try pio.register(RecordingDevice(), base: 0xFFFF, length: 1, name: "last-port")

        var mmio = MMIOBus()
        #expect(throws: BusError.wrapsAround(BusRange(name: "wrap", base: .max, length: 2))) {
            try mmio.register(RecordingDevice(), base: .max, length: 2, name: "wrap")
        }
        // A range ending exactly at the top of the 64-bit space is valid.
        try mmio.register(RecordingDevice(), base: .max - 0xFFF, length: 0x1000, name: "top-page")
    }
}

@Suite("Bus dispatch")
struct BusDispatchTests {
    let device = RecordingDevice(readValue: 0x1122_3344_5566_7788)
    let bus: MMIOBus

    init() throws {
        var bus = MMIOBus()
        try bus.register(RecordingDevice(), base: 0x0, length: 0x1000, name: "low")
        try bus.register(device, base: 0xD000_0000, length: 0x100, name: "dev")
        try bus.register(RecordingDevice(), base: 0xE000_0000, length: 0x1000, name: "high")
        self.bus = bus
    }

    @Test func firstAndLastByteOfARangeReachTheDeviceAtOffsetsRelativeToItsBase() {
        #expect(bus.read(address: 0xD000_0000, width: 1) == 0x88)
        #expect(bus.write(address: 0xD000_00FF, width: 1, value: 0xAB))
        #expect(bus.read(address: 0xD000_00F8, width: 8) == 0x1122_3344_5566_7788)
        #expect(
            device.log == [
                .init(isWrite: false, offset: 0, width: 1, value: 0x1122_3344_5566_7788),
                .init(isWrite: true, offset: 0xFF, width: 1, value: 0xAB),
                .init(isWrite: false, offset: 0xF8, width: 8, value: 0x1122_3344_5566_7788),
            ])
    }

    @Test func readsAreMaskedToTheAccessWidthAndWritesCarryOnlyTheirBytes() {
        #expect(bus.read(address: 0xD000_0010, width: 2) == 0x7788)
        #expect(bus.read(address: 0xD000_0010, width: 4) == 0x5566_7788)
        bus.write(address: 0xD000_0010, width: 2, value: 0xFFFF_1234)
        #expect(device.log.last == .init(isWrite: true, offset: 0x10, width: 2, value: 0x1234))
    }

    @Test func anAccessStraddlingTheEndOfARangeIsUnclaimed() {
        // Starts on the device's last byte but its second byte lies outside: the device must never see it.
        #expect(bus.read(address: 0xD000_00FF, width: 2) == nil)
        #expect(bus.write(address: 0xD000_00FC, width: 8, value: 0) == false)
        #expect(device.log.isEmpty)
    }

    @Test func addressesOutsideEveryRangeAreUnclaimed() {
        #expect(bus.read(address: 0xD000_0100, width: 1) == nil)  // one past the end
        #expect(bus.read(address: 0xCFFF_FFFF, width: 1) == nil)  // one before the start
        #expect(bus.read(address: .max, width: 1) == nil)
        #expect(bus.write(address: 0x2000, width: 4, value: 1) == false)
        #expect(MMIOBus().read(address: 0, width: 1) == nil)  // an empty bus claims nothing
    }

    @Test(arguments: [0, 3, 5, 6, 7, 16, -1, Int.max])
    func oddWidthsAreUnclaimedRatherThanTrusted(width: Int) {
        #expect(bus.read(address: 0xD000_0000, width: width) == nil)
        #expect(bus.write(address: 0xD000_0000, width: width, value: 0) == false)
        #expect(device.log.isEmpty)
    }

    @Test func anAccessWrappingPastTheTopOfTheAddressSpaceIsUnclaimed() throws {
        var bus = MMIOBus()
        try bus.register(device, base: .max - 3, length: 4, name: "top")
        #expect(bus.read(address: .max - 3, width: 4) != nil)
        #expect(bus.read(address: .max - 1, width: 4) == nil)
        #expect(bus.read(address: .max, width: 8) == nil)
    }

    @Test func portIOAndMMIOAreSeparateSpaces() throws {
        var pio = PortIOBus()
        try pio.register(device, base: 0x3F8, length: 8, name: "com1")
        var mmio = MMIOBus()
        try mmio.register(RecordingDevice(), base: 0xD000_0000, length: 0x100, name: "dev")
        // Port 0x3F8 and guest-physical address 0x3F8 are different places entirely.
        #expect(mmio.read(address: 0x3F8, width: 1) == nil)
        #expect(pio.read(address: 0x3F8, width: 1) == 0x88)
        #expect(pio.device(at: 0x3FF) === device)
        #expect(pio.device(at: 0x400) == nil)
    }
}
