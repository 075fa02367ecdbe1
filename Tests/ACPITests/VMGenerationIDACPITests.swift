import ACPI
import GuestMemory
import Testing

/// The VM Generation ID as the guest finds it: a `VM_GEN_COUNTER` device whose ADDR method names 16 reserved bytes
/// inside the ACPI block, and a Generic Event Device whose `_EVT` notifies it — parsed back from the DSDT.
@Suite("VM Generation ID ACPI")
struct VMGenerationIDACPITests {
    func systemBus(_ image: ACPITableImage) throws -> [AMLNode] {
        let nodes = try AMLDecoder.decode(Array(try #require(image.table("DSDT"))[36...]))
        guard case let .scope("\\_SB_", devices) = nodes.last else {
            Issue.record("expected \\_SB_, got \(nodes)")
            return []
        }
        return devices
    }

    func configuration() -> ACPIConfiguration {
        var config = ACPIConfiguration(vcpuCount: 2)
        config.vmGenerationID = VMGenerationIDDescription()
        return config
    }

    @Test func theDeviceMatchesLinuxsDriverAndADDRPointsAtTheReservedID() throws {
        let base = ACPITables.defaultBase
        let image = try ACPITables.build(configuration(), at: base)
        let address = try #require(image.vmGenerationIDAddress)
        // Right after the 36-byte RSDP, 16-byte aligned, inside the block and overlapping no table.
        #expect(address == base.adding(48))
        #expect(address.rawValue % 16 == 0 && address.rawValue + 16 <= image.end.rawValue)
        for table in image.tables {
            let tableRange = table.address.rawValue..<(table.address.rawValue + UInt64(table.length))
            #expect(!tableRange.overlaps(address.rawValue..<(address.rawValue + 16)), "\(table.signature) overlaps the ID")
        }
        // The tables leave the ID zero: the VMM writes it.
        let offset = Int(address.rawValue - base.rawValue)
        #expect(image.bytes[offset..<(offset + 16)].allSatisfy { $0 == 0 })

        let devices = try systemBus(image)
        guard let vgen = devices.first(where: { if case .device("VGEN", _) = $0 { true } else { false } }),
              case let .device(_, terms) = vgen else {
            Issue.record("no VGEN device in \(devices)")
            return
        }
        #expect(terms.contains(.name("_CID", .string("VM_GEN_COUNTER"))))
        #expect(terms.contains(.name("_DDN", .string("VM_GEN_COUNTER"))))
        #expect(terms.contains { if case .name("_HID", .string(_)) = $0 { true } else { false } })
        // ADDR: a method without arguments returning Package () { low 32 bits, high 32 bits }.
        #expect(terms.contains(.method("ADDR", flags: 0, [
            .returnValue(.package([.integer(address.rawValue & 0xFFFF_FFFF), .integer(address.rawValue >> 32)])),
        ])))
    }

    @Test func aHighAddressIsSplitIntoTwoHalves() throws {
        let bytes = VMGenerationIDACPI.devices(VMGenerationIDDescription(), idAddress: GuestAddress(0x1_2345_6780))[0].amlBytes
        guard case let .device(_, terms) = try AMLDecoder.decode(bytes).first else {
            Issue.record("expected a device")
            return
        }
        #expect(terms.last == .method("ADDR", flags: 0, [.returnValue(.package([.integer(0x2345_6780), .integer(1)]))]))
    }

    @Test func theGenericEventDeviceNotifiesVGENOnItsInterrupt() throws {
        var config = configuration()
        config.vmGenerationID = VMGenerationIDDescription(gsi: 9)
        let devices = try systemBus(try ACPITables.build(config))
        guard let ged = devices.first(where: { if case .device("GED_", _) = $0 { true } else { false } }),
              case let .device(_, terms) = ged else {
            Issue.record("no GED_ device in \(devices)")
            return
        }
        #expect(terms.first == .name("_HID", .string("ACPI0013")))
        guard let crs = terms.first(where: { if case .name("_CRS", _) = $0 { true } else { false } }),
              case let .name(_, .buffer(template)) = crs else {
            Issue.record("no _CRS in \(terms)")
            return
        }
        #expect(try AMLDecoder.resourceItems(template) == [0x89, 0x78])
        // Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { 9 }.
        #expect(Array(template[0..<5]) == [0x89, 0x06, 0x00, 0x03, 0x01] && template.u32(5) == 9)
        // _EVT, one argument, Serialized: If (LEqual (Arg0, 9)) { Notify (\_SB_.VGEN, 0x80) }.
        #expect(terms.last == .method("_EVT", flags: 0x09, [
            .ifThen(.logicalEqual(.argument(0), .integer(9)), [.notify("\\_SB_.VGEN", .integer(0x80))]),
        ]))
    }

    @Test func withoutTheDescriptionThereIsNoDeviceAndNoSlot() throws {
        let image = try ACPITables.build(ACPIConfiguration(vcpuCount: 2))
        #expect(image.vmGenerationIDAddress == nil)
        let names = try systemBus(image).compactMap { node -> String? in if case let .device(name, _) = node { name } else { nil } }
        #expect(!names.contains("VGEN") && !names.contains("GED_"))
    }

    @Test func theTablesStayValidWithTheDevice() throws {
        let image = try ACPITables.build(configuration())
        for placed in image.tables where placed.signature != "RSD PTR " {
            let table = try #require(image.table(placed.signature))
            #expect(table.byteSum == 0, "\(placed.signature) checksum")
        }
        let rsdp = try #require(image.table("RSD PTR "))
        #expect(rsdp.byteSum == 0)
    }

    @Test func anInterruptBeyondTheIOAPICIsRefused() {
        var config = configuration()
        config.vmGenerationID = VMGenerationIDDescription(gsi: 24)
        #expect(throws: ACPIError.invalidInterrupt(field: "vmGenerationID.gsi", gsi: 24)) { try ACPITables.build(config) }
    }
}
