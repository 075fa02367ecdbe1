import ACPI
import Testing

// The expected bytes below were worked out by hand from ACPI 6.5 chapter 20 and §6.4, and checked against
// what `iasl` (ACPICA 20200925) compiles from the ASL quoted next to each test.

@Suite("AML encoding")
struct AMLTests {
    // MARK: Data objects

    @Test("integers take the shortest encoding: Zero, One, Byte/Word/DWord/QWord constants")
    func integers() {
        #expect(0.amlBytes == [0x00])
        #expect(1.amlBytes == [0x01])
        #expect(5.amlBytes == [0x0A, 0x05])
        #expect(0xFF.amlBytes == [0x0A, 0xFF])
        #expect(0x100.amlBytes == [0x0B, 0x00, 0x01])
        #expect(0x1234.amlBytes == [0x0B, 0x34, 0x12])
        #expect(0x1_0000.amlBytes == [0x0C, 0x00, 0x00, 0x01, 0x00])
        #expect(UInt64(0x1_0000_0000).amlBytes == [0x0E, 0, 0, 0, 0, 1, 0, 0, 0])
        #expect(true.amlBytes == [0x01])
        #expect(false.amlBytes == [0x00])
    }

    @Test("a string is StringPrefix, ASCII, NUL: Name (_HID, \"LNRO0005\")")
    func string() {
        #expect("LNRO0005".amlBytes == [0x0D] + name("LNRO0005") + [0x00])
    }

    @Test("EISAID compresses 3 letters and 4 hex digits into a DWord constant")
    func eisaID() {
        #expect(AML.EISAID("PNP0501").value == 0x0105_D041)
        #expect(AML.EISAID("PNP0501").amlBytes == hex("0C 41 D0 05 01"))
        #expect(AML.EISAID("PNP0B00").value == 0x000B_D041)
        #expect(AML.EISAID("PNP0A08").value == 0x080A_D041)
        #expect(AML.EISAID("PNP0303").value == 0x0303_D041)
    }

    // MARK: Names

    @Test("name strings: padding, root and parent prefixes, dual and multi-segment paths")
    func names() {
        #expect(AMLName("COM1").amlBytes == name("COM1"))
        #expect(AMLName("RTC").amlBytes == name("RTC_"))
        #expect(AMLName("_S5").amlBytes == name("_S5_"))
        #expect(AMLName("\\_SB_").amlBytes == [0x5C] + name("_SB_"))
        #expect(AMLName("\\_SB.COM1").amlBytes == [0x5C, 0x2E] + name("_SB_COM1"))
        #expect(AMLName("\\_SB.PCI0.VR00").amlBytes == [0x5C, 0x2F, 0x03] + name("_SB_PCI0VR00"))
        #expect(AMLName("^^CPU0").amlBytes == [0x5E, 0x5E] + name("CPU0"))
        #expect(AMLName("\\").amlBytes == [0x5C, 0x00])
        #expect(AMLName("\\_SB.COM1").description == "\\_SB_.COM1")
    }

    // MARK: PkgLength

    @Test("PkgLength counts its own bytes and grows from 1 to 2 and 3 bytes")
    func packageLength() {
        // Body of 4 bytes: one PkgLength byte, total 5.
        #expect(AML.Package([5, 0]).amlBytes == hex("12 05 02 0A 05 00"))
        // A buffer whose body (size constant + contents) is exactly 62 bytes still fits one byte (63).
        let oneByte = AML.Buffer([UInt8](repeating: 0xAA, count: 60)).amlBytes
        #expect(Array(oneByte.prefix(4)) == [0x11, 0x3F, 0x0A, 60])
        // One more content byte needs a 2-byte PkgLength: total = 1 + 2 + 2 + 61 = 65 = 0x041.
        let twoBytes = AML.Buffer([UInt8](repeating: 0xAA, count: 61)).amlBytes
        #expect(Array(twoBytes.prefix(5)) == [0x11, 0x41, 0x04, 0x0A, 61])
        // 4096 contents + 3-byte size constant = 4099, plus 3 PkgLength bytes: 4102 = 0x1006, 3 bytes.
        let threeBytes = AML.Buffer([UInt8](repeating: 0, count: 4096)).amlBytes
        #expect(Array(threeBytes.prefix(7)) == [0x11, 0x86, 0x00, 0x01, 0x0B, 0x00, 0x10])
        #expect(threeBytes.count == 1 + 4102)
    }

    // MARK: Named objects

    @Test("Name (\\_S5, Package () { 5, 0 }) — the soft-off sleep type package")
    func softOffPackage() {
        #expect(AML.Name("_S5_", AML.Package([5, 0])).amlBytes == hex("08 5F 53 35 5F 12 05 02 0A 05 00"))
        #expect(AML.Name("\\_S5_", AML.Package([5, 0])).amlBytes == hex("08 5C 5F 53 35 5F 12 05 02 0A 05 00"))
    }

    @Test("COM1: Device with _HID EISAID, _UID and a _CRS ResourceTemplate of IO and IRQNoFlags")
    func com1Device() {
        // Device (COM1) {
        //     Name (_HID, EisaId ("PNP0501"))
        //     Name (_UID, 0)
        //     Name (_CRS, ResourceTemplate () { IO (Decode16, 0x03F8, 0x03F8, 0x08, 0x08)  IRQNoFlags () {4} })
        // }
        let expected = hex("5B 82 2B") + name("COM1")
            + hex("08") + name("_HID") + hex("0C 41 D0 05 01")
            + hex("08") + name("_UID") + hex("00")
            + hex("08") + name("_CRS") + hex("11 10 0A 0D  47 01 F8 03 F8 03 08 08  22 10 00  79 00")
        #expect(LegacyDevices.serialPort(name: "COM1", uid: 0, ioBase: 0x3F8, irq: 4).amlBytes == expected)
    }

    @Test("RTC: PNP0B00 with IO 0x70-0x71 and IRQ 8")
    func rtcDevice() {
        // Device (RTC) { Name (_HID, EisaId ("PNP0B00"))
        //     Name (_CRS, ResourceTemplate () { IO (Decode16, 0x0070, 0x0070, 0x01, 0x02)  IRQNoFlags () {8} }) }
        let expected = hex("5B 82 25") + name("RTC_")
            + hex("08") + name("_HID") + hex("0C 41 D0 0B 00")
            + hex("08") + name("_CRS") + hex("11 10 0A 0D  47 01 70 00 70 00 01 02  22 00 01  79 00")
        #expect(LegacyDevices.cmosRTC().amlBytes == expected)
    }

    @Test("a virtio-mmio device: string _HID, Memory32Fixed and an extended Interrupt")
    func virtioMMIODevice() {
        // Device (VR00) { Name (_HID, "LNRO0005")  Name (_UID, 0x1234)  Name (_CCA, One)
        //     Name (_CRS, ResourceTemplate () { Memory32Fixed (ReadWrite, 0xD0000000, 0x00000200)
        //                                       Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) {5} }) }
        let device = AML.Device("VR00", [
            AML.Name("_HID", "LNRO0005"),
            AML.Name("_UID", 0x1234),
            AML.Name("_CCA", true),
            AML.Name("_CRS", ResourceTemplate([
                .memory32Fixed(base: 0xD000_0000, length: 0x200, writable: true),
                .interrupt(gsis: [5], edgeTriggered: true, activeLow: false, shared: false),
            ])),
        ])
        let expected = hex("5B 82 43 04") + name("VR00")
            + hex("08") + name("_HID") + hex("0D") + name("LNRO0005") + hex("00")
            + hex("08") + name("_UID") + hex("0B 34 12")
            + hex("08") + name("_CCA") + hex("01")
            + hex("08") + name("_CRS") + hex("11 1A 0A 17")
            + hex("86 09 00 01 00 00 00 D0 00 02 00 00")
            + hex("89 06 00 03 01 05 00 00 00")
            + hex("79 00")
        #expect(device.amlBytes == expected)
    }

    @Test("Method (TEST, 1, Serialized) { Return (0x12345678) }")
    func method() {
        let method = AML.Method("TEST", argumentCount: 1, serialized: true, [AML.Return(0x1234_5678)])
        #expect(method.amlBytes == hex("14 0C") + name("TEST") + hex("09 A4 0C 78 56 34 12"))
        #expect(AML.Return(AML.Arg(0)).amlBytes == [0xA4, 0x68])
        #expect(AML.Return(AML.Local(7)).amlBytes == [0xA4, 0x67])
    }

    @Test("Scope (\\_SB) wraps its terms in a PkgLength")
    func scope() {
        let scope = AML.Scope("\\_SB_", [AML.Name("X", 1)])
        #expect(scope.amlBytes == hex("10 0C 5C") + name("_SB_") + hex("08") + name("X___") + hex("01"))
    }

    // MARK: Resource descriptors for a PCI host bridge

    @Test("address space descriptors match iasl's WordBusNumber, WordIO, DWordMemory, QWordMemory")
    func addressSpaceDescriptors() {
        // WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0x0000, 0x0000, 0x00FF, 0x0000, 0x0100)
        #expect(ResourceTemplate([.wordBusNumber(0...0xFF)]).contents
            == hex("88 0D 00 02 0C 00  00 00  00 00  FF 00  00 00  00 01  79 00"))
        // WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0x0000, 0x1000, 0xFFFF, 0x0000, 0xF000)
        #expect(ResourceTemplate([.wordIO(0x1000...0xFFFF)]).contents
            == hex("88 0D 00 01 0C 03  00 00  00 10  FF FF  00 00  00 F0  79 00"))
        // DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
        //              0x00000000, 0xC0000000, 0xFEBFFFFF, 0x00000000, 0x3EC00000)
        #expect(ResourceTemplate([.dwordMemory(0xC000_0000...0xFEBF_FFFF)]).contents
            == hex("87 17 00 00 0C 01  00 00 00 00  00 00 00 C0  FF FF BF FE  00 00 00 00  00 00 C0 3E  79 00"))
        // QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,
        //               0x0, 0x100000000, 0x8FFFFFFFF, 0x0, 0x800000000)
        #expect(ResourceTemplate([.qwordMemory(0x1_0000_0000...0x8_FFFF_FFFF, cacheability: .cacheable)]).contents
            == hex("8A 2B 00 00 0C 03") + hex("00 00 00 00 00 00 00 00") + hex("00 00 00 00 01 00 00 00")
            + hex("FF FF FF FF 08 00 00 00") + hex("00 00 00 00 00 00 00 00") + hex("00 00 00 00 08 00 00 00")
            + hex("79 00"))
    }

    @Test("Interrupt (ResourceConsumer, Level, ActiveLow, Shared) {16, 17}")
    func sharedLevelInterrupts() {
        #expect(ResourceTemplate([.interrupt(gsis: [16, 17], edgeTriggered: false, activeLow: true, shared: true)]).contents
            == hex("89 0A 00 0D 02 10 00 00 00 11 00 00 00 79 00"))
    }
}
