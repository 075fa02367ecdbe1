import ACPI
import Foundation
import Testing

/// The PCI host bridge's DSDT objects and the MCFG table: their bytes, parsed back by the test AML decoder, and
/// (when installed) by ACPICA's iasl, whose parser is the one Linux uses.
@Suite("PCI host bridge ACPI")
struct PCIHostBridgeTests {
    @Test func mcfgLayout() {
        let table = PCIHostBridgeACPI.mcfg(PCIHostBridgeDescription(busRange: 0...3, ecamBase: 0xE000_0000))
        let bytes = table.bytes
        #expect(table.signature == "MCFG")
        #expect(bytes.count == 60)  // header 36 + reserved 8 + one 16-byte allocation
        #expect(bytes.u32(4) == 60)
        #expect(bytes.u8(8) == 1)  // revision
        #expect(bytes.byteSum == 0)
        #expect(bytes[36..<44].allSatisfy { $0 == 0 })
        #expect(bytes.u64(44) == 0xE000_0000)
        #expect(bytes.u16(52) == 0)  // segment
        #expect(bytes.u8(54) == 0 && bytes.u8(55) == 3)  // buses 0-3
        #expect(bytes.u32(56) == 0)
    }

    @Test func hostBridgeDecodes() throws {
        let description = PCIHostBridgeDescription()
        let nodes = try AMLDecoder.decode(PCIHostBridgeACPI.hostBridge(description).amlBytes)
        guard case let .device("PCI0", terms) = nodes.first else {
            Issue.record("expected Device (PCI0), got \(nodes)")
            return
        }
        #expect(terms.prefix(5) == [
            .name("_HID", .integer(UInt64(AML.EISAID("PNP0A08").value))),
            .name("_CID", .integer(UInt64(AML.EISAID("PNP0A03").value))),
            .name("_SEG", .integer(0)),
            .name("_BBN", .integer(0)),
            .name("_UID", .integer(0)),
        ])
        guard case let .name("_CRS", .buffer(template)) = terms[5] else {
            Issue.record("expected _CRS, got \(terms[5])")
            return
        }
        // WordBusNumber, IO, WordIO, DWordMemory, End Tag.
        #expect(try AMLDecoder.resourceItems(template) == [0x88, 0x40, 0x88, 0x87, 0x78])
        // WordBusNumber: type 2, producer/MinFixed/MaxFixed, min 0, max 0, length 1.
        #expect(Array(template[0..<16]) == [0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0])
        // IO (Decode16, 0xCF8, 0xCF8, 1, 8).
        #expect(Array(template[16..<24]) == [0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08])
        // DWordMemory (after WordBusNumber 16, IO 8, WordIO 16 bytes): minimum and maximum.
        #expect(template.u32(40 + 10) == 0xC000_0000 && template.u32(40 + 14) == 0xDFFF_FFFF)

        guard case let .name("_PRT", .package(entries)) = terms[6] else {
            Issue.record("expected _PRT, got \(terms[6])")
            return
        }
        #expect(entries.count == 128)
        #expect(entries[0] == .package([.integer(0xFFFF), .integer(0), .integer(0), .integer(16)]))
        // Device 1, INTD: (1 + 3) % 8 → GSI 20.
        #expect(entries[7] == .package([.integer(0x1_FFFF), .integer(3), .integer(0), .integer(20)]))
    }

    @Test func optionalWindows() throws {
        var description = PCIHostBridgeDescription(memory64Window: 0x40_0000_0000...0x7F_FFFF_FFFF, ioWindow: nil,
                                                   intxRoutes: [])
        description.busRange = 0...15
        let nodes = try AMLDecoder.decode(PCIHostBridgeACPI.hostBridge(description).amlBytes)
        guard case let .device(_, terms) = nodes.first, case let .name("_CRS", .buffer(template)) = terms[5] else {
            Issue.record("no _CRS")
            return
        }
        #expect(try AMLDecoder.resourceItems(template) == [0x88, 0x40, 0x87, 0x8A, 0x78])
        #expect(terms.count == 6, "no _PRT without routes")
    }

    @Test func ecamIsReservedAsAMotherboardResource() throws {
        let below = PCIHostBridgeACPI.ecamReservation(PCIHostBridgeDescription(busRange: 0...0))
        let nodes = try AMLDecoder.decode(below.amlBytes)
        guard case let .device("MBRD", terms) = nodes.first, case let .name("_CRS", .buffer(template)) = terms[2] else {
            Issue.record("expected MBRD with _CRS, got \(nodes)")
            return
        }
        #expect(terms[0] == .name("_HID", .integer(UInt64(AML.EISAID("PNP0C02").value))))
        // Memory32Fixed (ReadWrite, 0xE0000000, 0x00100000).
        #expect(template == [0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xE0, 0x00, 0x00, 0x10, 0x00, 0x79, 0x00])

        let above = PCIHostBridgeACPI.ecamReservation(PCIHostBridgeDescription(busRange: 0...255, ecamBase: 0x80_0000_0000))
        guard case let .device(_, aboveTerms) = try AMLDecoder.decode(above.amlBytes).first,
            case let .name("_CRS", .buffer(aboveTemplate)) = aboveTerms[2]
        else {
            Issue.record("no _CRS")
            return
        }
        #expect(try AMLDecoder.resourceItems(aboveTemplate) == [0x8A, 0x78])
        #expect(aboveTemplate[4] & 0x01 == 0x01, "a consumer, not a window")
    }

    @Test("iasl disassembles the DSDT with the host bridge and the MCFG cleanly",
          .enabled(if: IASL.path != nil, "iasl (acpica-tools) is not installed"))
    func iaslAcceptsThem() throws {
        var config = ACPIConfiguration(vcpuCount: 2)
        let description = PCIHostBridgeDescription(memory64Window: 0x40_0000_0000...0x7F_FFFF_FFFF)
        config.additionalDevices += PCIHostBridgeACPI.devices(description)
        config.additionalTables.append(PCIHostBridgeACPI.mcfg(description, oem: config.oem))
        let image = try ACPITables.build(config)
        #expect(image.tables.map(\.signature).contains("MCFG"))

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-pci-acpi-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        for signature in ["DSDT", "MCFG"] {
            let bytes = try #require(image.table(signature))
            try Data(bytes).write(to: directory.appendingPathComponent("\(signature).dat"))
            let (status, output) = try IASL.run(["-d", "\(signature).dat"], in: directory)
            let listing = (try? String(contentsOf: directory.appendingPathComponent("\(signature).dsl"), encoding: .utf8)) ?? ""
            if let dump = ProcessInfo.processInfo.environment["SWIFTLET_ACPI_DUMP"] {
                try? listing.write(toFile: "\(dump)/PCI-\(signature).dsl", atomically: true, encoding: .utf8)
            }
            #expect(status == 0, "iasl -d \(signature): \(output)")
            for line in (output + listing).split(separator: "\n") {
                let lowered = line.lowercased()
                #expect(!lowered.contains("error") || lowered.contains("0 errors"), "\(signature): \(line)")
                #expect(!lowered.contains("warning") || lowered.contains("0 warnings"), "\(signature): \(line)")
                #expect(!lowered.contains("invalid"), "\(signature): \(line)")
            }
            switch signature {
            case "DSDT":
                #expect(listing.contains("Device (PCI0)") && listing.contains("EisaId (\"PNP0A08\")"))
                #expect(listing.contains("WordBusNumber") && listing.contains("QWordMemory"))
                #expect(listing.contains("Name (_PRT, Package (0x80)"))
                #expect(listing.contains("Memory32Fixed (ReadWrite,") && listing.contains("0xE0000000"))
                let (status, output) = try IASL.run(["-p", "recompiled", "DSDT.dsl"], in: directory)
                #expect(status == 0 && output.contains("0 Errors, 0 Warnings"), "iasl DSDT.dsl: \(output)")
            default:
                #expect(listing.contains("Base Address : 00000000E0000000"))
                #expect(listing.contains("End Bus Number : 00"))
            }
        }
    }
}
