import ACPI
import Testing

/// The virtio-mmio devices' DSDT objects (`LNRO0005`, what Linux's virtio_mmio driver matches), parsed back.
@Suite("virtio-mmio ACPI")
struct VirtioMMIOACPITests {
    @Test func eachWindowIsAnLNRO0005DeviceWithItsMemoryAndInterrupt() throws {
        let descriptions = [
            VirtioMMIODescription(base: 0xE800_0000, length: 0x1000, gsi: 5),
            VirtioMMIODescription(base: 0xE800_1000, length: 0x1000, gsi: 16),
        ]
        let devices = VirtioMMIOACPI.devices(descriptions)
        #expect(devices.count == 2)
        for (index, device) in devices.enumerated() {
            let nodes = try AMLDecoder.decode(device.amlBytes)
            guard case let .device(name, terms) = nodes.first else {
                Issue.record("expected a Device, got \(nodes)")
                continue
            }
            #expect(name == "VR0\(index)")
            #expect(terms.prefix(2) == [.name("_HID", .string("LNRO0005")), .name("_UID", .integer(UInt64(index)))])
            guard terms.count == 3, case let .name("_CRS", .buffer(template)) = terms[2] else {
                Issue.record("expected _CRS, got \(terms)")
                continue
            }
            // Memory32Fixed, Interrupt, End Tag.
            #expect(try AMLDecoder.resourceItems(template) == [0x86, 0x89, 0x78])
            // Memory32Fixed (ReadWrite, base, length).
            #expect(Array(template[0..<4]) == [0x86, 0x09, 0x00, 0x01])
            #expect(template.u32(4) == descriptions[index].base && template.u32(8) == 0x1000)
            // Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { gsi }: flags 0b0011, one interrupt.
            #expect(Array(template[12..<17]) == [0x89, 0x06, 0x00, 0x03, 0x01])
            #expect(template.u32(17) == descriptions[index].gsi)
        }
    }

    @Test func theDSDTCarriesThemInsideTheSystemBus() throws {
        var config = ACPIConfiguration(vcpuCount: 1)
        config.additionalDevices = VirtioMMIOACPI.devices([VirtioMMIODescription(base: 0xE800_0000, length: 0x1000, gsi: 5)])
        let image = try ACPITables.build(config)
        let dsdt = try #require(image.table("DSDT"))
        let body = Array(dsdt[36...])
        let text = String(decoding: body.map { (0x20...0x7E).contains($0) ? $0 : 0x2E }, as: UTF8.self)
        #expect(text.contains("VR00") && text.contains("LNRO0005"))
    }
}
