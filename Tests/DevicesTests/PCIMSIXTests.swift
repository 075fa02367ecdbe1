import Testing

@testable import Devices

/// MSI-X as a driver programs it (Linux's msix_capability_init: enable with the function masked, write the
/// entries, clear the function mask, unmask vectors one by one) and as a device fires it.
@Suite("PCI MSI-X")
struct PCIMSIXTests {
    let address = PCIAddress(device: 4)
    let message0 = MSIMessage(address: 0xFEE0_1000, data: 0x4041)
    let message1 = MSIMessage(address: 0xFEE0_2000, data: 0x4052)

    struct Fixture {
        let routing = RecordingMSIXRouting()
        let function: TestPCIFunction
        let root: PCIRoot
        var capability: MSIXCapability { function.msix!.capability }
        var vectors: MSIXVectors { function.msix!.vectors }

        init(vectors: Int = 3) throws {
            function = TestPCIFunction(msixVectors: vectors, routing: routing) { space in
                space.setBAR(2, .memory32(size: 0x1000), address: 0xC000_0000)
            }
            root = try PCIRoot()
            try root.attach(function, at: PCIAddress(device: 4))
            root.writeConfiguration(PCIAddress(device: 4), offset: 4, width: 2, value: UInt32(PCICommand.memorySpace))
        }

        func control(_ value: UInt16) {
            root.writeConfiguration(PCIAddress(device: 4), offset: capability.messageControlOffset, width: 2,
                                    value: UInt32(value))
        }

        func writeEntry(_ vector: Int, _ message: MSIMessage) {
            let entry = 0xC000_0000 + UInt64(vector) * 16
            root.writeBAR(.memory, address: entry, width: 8, value: message.address)
            root.writeBAR(.memory, address: entry + 8, width: 4, value: UInt64(message.data))
        }

        func setVectorMask(_ vector: Int, _ masked: Bool) {
            root.writeBAR(.memory, address: 0xC000_0000 + UInt64(vector) * 16 + 12, width: 4, value: masked ? 1 : 0)
        }

        func pba() -> UInt64? { root.readBAR(.memory, address: 0xC000_0800, width: 8) }
    }

    @Test func capabilityLayout() throws {
        let fixture = try Fixture(vectors: 3)
        let offset = fixture.capability.offset
        let read = { (at: Int, width: Int) in fixture.root.readConfiguration(PCIAddress(device: 4), offset: at, width: width) }
        #expect(read(offset, 1) == 0x11)
        #expect(read(offset + 2, 2) == 0x0002)  // table size - 1, disabled, unmasked
        #expect(read(offset + 4, 4) == 0x0000_0002)  // table at offset 0 of BAR 2
        #expect(read(offset + 8, 4) == 0x0000_0802)  // PBA at 0x800 of BAR 2
        // Only enable and function mask are writable.
        fixture.control(0xFFFF)
        #expect(read(offset + 2, 2) == 0xC002)
        fixture.root.writeConfiguration(PCIAddress(device: 4), offset: offset + 4, width: 4, value: 0xFFFF_FFFF)
        #expect(read(offset + 4, 4) == 0x0000_0002)
    }

    @Test func tableResetStateAndAccessRules() throws {
        let fixture = try Fixture(vectors: 3)
        let root = fixture.root
        // Every vector starts masked with a zero message.
        for vector in 0..<3 {
            #expect(root.readBAR(.memory, address: 0xC000_0000 + UInt64(vector) * 16, width: 8) == 0)
            #expect(root.readBAR(.memory, address: 0xC000_000C + UInt64(vector) * 16, width: 4) == 1)
        }
        fixture.writeEntry(1, message1)
        #expect(root.readBAR(.memory, address: 0xC000_0010, width: 4) == 0xFEE0_2000)
        #expect(root.readBAR(.memory, address: 0xC000_0018, width: 8) == 0x0000_0001_0000_4052)  // data, control
        // Address bits 1-0 and reserved vector-control bits are hardwired to 0.
        root.writeBAR(.memory, address: 0xC000_0010, width: 4, value: 0xFEE0_2003)
        root.writeBAR(.memory, address: 0xC000_001C, width: 4, value: 0xFFFF_FFFE)
        #expect(root.readBAR(.memory, address: 0xC000_0010, width: 4) == 0xFEE0_2000)
        #expect(root.readBAR(.memory, address: 0xC000_001C, width: 4) == 0)
        // Byte, word and unaligned accesses are refused; beyond the last entry reads 0.
        root.writeBAR(.memory, address: 0xC000_0018, width: 1, value: 0xFF)
        root.writeBAR(.memory, address: 0xC000_0018, width: 2, value: 0xFFFF)
        root.writeBAR(.memory, address: 0xC000_0014, width: 8, value: .max)
        #expect(root.readBAR(.memory, address: 0xC000_0018, width: 4) == 0x4052)
        #expect(root.readBAR(.memory, address: 0xC000_0018, width: 2) == .max)
        #expect(root.readBAR(.memory, address: 0xC000_0014, width: 8) == .max)
        #expect(root.readBAR(.memory, address: 0xC000_0030, width: 4) == 0)
        root.writeBAR(.memory, address: 0xC000_0030, width: 4, value: 1)  // vector 3 does not exist: ignored
        // The PBA ignores writes.
        root.writeBAR(.memory, address: 0xC000_0800, width: 8, value: .max)
        #expect(fixture.pba() == 0)
        #expect(fixture.routing.log.isEmpty, "nothing became deliverable")
    }

    @Test func linuxStyleSetupRoutesThenDelivers() throws {
        let fixture = try Fixture()
        #expect(fixture.vectors.trigger(vector: 0) == .notEnabled, "before MSI-X is enabled the device uses INTx")

        fixture.control(MSIXControl.enable | MSIXControl.functionMask)
        fixture.writeEntry(0, message0)
        fixture.writeEntry(1, message1)
        fixture.control(MSIXControl.enable)
        #expect(fixture.routing.log.isEmpty, "entries are still masked one by one")

        fixture.setVectorMask(0, false)
        fixture.setVectorMask(1, false)
        #expect(fixture.routing.log == [.route(vector: 0, message: message0), .route(vector: 1, message: message1)])
        #expect(fixture.vectors.isEnabled)

        fixture.routing.clear()
        #expect(fixture.vectors.trigger(vector: 1) == .delivered)
        #expect(fixture.vectors.trigger(vector: 2) == .pending, "vector 2 is still masked")
        #expect(fixture.vectors.trigger(vector: 9) == .notEnabled, "no such vector")
        #expect(fixture.routing.log == [.deliver(vector: 1, message: message1)])
        #expect(fixture.pba() == 0b100)
    }

    @Test func functionMaskHoldsMessagesAsPendingUntilCleared() throws {
        let fixture = try Fixture()
        fixture.control(MSIXControl.enable | MSIXControl.functionMask)
        fixture.writeEntry(0, message0)
        fixture.setVectorMask(0, false)
        #expect(fixture.vectors.trigger(vector: 0) == .pending)
        #expect(fixture.vectors.trigger(vector: 0) == .pending, "a second firing folds into the same pending bit")
        #expect(fixture.vectors.isPending(vector: 0))
        #expect(fixture.pba() == 1)
        #expect(fixture.routing.log.isEmpty)

        fixture.control(MSIXControl.enable)
        #expect(fixture.routing.log == [.route(vector: 0, message: message0), .deliver(vector: 0, message: message0)])
        #expect(fixture.pba() == 0)

        fixture.routing.clear()
        fixture.control(MSIXControl.enable | MSIXControl.functionMask)
        #expect(fixture.routing.log == [.route(vector: 0, message: nil)])
    }

    @Test func vectorMaskAndMessageRewrites() throws {
        let fixture = try Fixture()
        fixture.control(MSIXControl.enable)
        fixture.writeEntry(0, message0)
        fixture.setVectorMask(0, false)
        fixture.routing.clear()

        // Masking, firing, rewriting while masked (no route calls), unmasking: the new message goes out.
        fixture.setVectorMask(0, true)
        #expect(fixture.vectors.trigger(vector: 0) == .pending)
        fixture.writeEntry(0, message1)
        fixture.setVectorMask(0, false)
        #expect(fixture.routing.log == [
            .route(vector: 0, message: nil),
            .route(vector: 0, message: message1),
            .deliver(vector: 0, message: message1),
        ])

        // Rewriting the data of a live vector updates its route in place.
        fixture.routing.clear()
        fixture.root.writeBAR(.memory, address: 0xC000_0008, width: 4, value: 0x4099)
        #expect(fixture.routing.log == [.route(vector: 0, message: MSIMessage(address: 0xFEE0_2000, data: 0x4099))])

        // Disabling MSI-X drops the route; the device is back to INTx.
        fixture.routing.clear()
        fixture.control(0)
        #expect(fixture.routing.log == [.route(vector: 0, message: nil)])
        #expect(fixture.vectors.trigger(vector: 0) == .notEnabled)
    }

    @Test func resetMasksEverything() throws {
        let fixture = try Fixture()
        fixture.control(MSIXControl.enable)
        fixture.writeEntry(0, message0)
        fixture.setVectorMask(0, false)
        fixture.setVectorMask(1, true)
        _ = fixture.vectors.trigger(vector: 1)
        fixture.routing.clear()
        fixture.vectors.reset()
        #expect(fixture.routing.log == [.route(vector: 0, message: nil)])
        #expect(!fixture.vectors.isEnabled)
        #expect(fixture.pba() == 0)
        #expect(fixture.vectors.message(vector: 0) == MSIMessage(address: 0, data: 0))
        #expect(fixture.vectors.isMasked(vector: 0))
    }

    @Test func pbaCoversManyVectors() throws {
        let routing = RecordingMSIXRouting()
        let vectors = MSIXVectors(vectorCount: 100, routing: routing)
        #expect(MSIXVectors.tableSize(vectorCount: 100) == 1600)
        #expect(MSIXVectors.pbaSize(vectorCount: 100) == 16)
        vectors.setMessageControl(MSIXControl.enable)
        _ = vectors.trigger(vector: 99)
        _ = vectors.trigger(vector: 31)
        _ = vectors.trigger(vector: 32)
        #expect(vectors.readPBA(offset: 8, width: 8) == 1 << 35)
        #expect(vectors.readPBA(offset: 0, width: 4) == 1 << 31)
        #expect(vectors.readPBA(offset: 4, width: 4) == 1)
        #expect(vectors.readPBA(offset: 16, width: 8) == 0)
        #expect(vectors.readPBA(offset: 2, width: 4) == .max)
    }
}
