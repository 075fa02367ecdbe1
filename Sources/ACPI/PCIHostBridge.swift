/// The PCI host bridge as ACPI describes it to the OS: a PNP0A08 device in the DSDT whose `_CRS` lists the bus
/// numbers and address windows it forwards, whose `_PRT` maps each slot's INTx pins to GSIs, and the MCFG table
/// and motherboard-resource device that announce and reserve ECAM.
///
/// Values only; the Devices module's `PCILayout` is where they come from (the ACPI module does not depend on it):
///
///     let layout = root.layout
///     let description = PCIHostBridgeDescription(
///         ecamBase: layout.ecamBase, busRange: 0...UInt8(layout.busCount - 1),
///         memory32Window: UInt32(layout.memory32Window.lowerBound)...UInt32(layout.memory32Window.upperBound),
///         memory64Window: layout.memory64Window,
///         ioWindow: layout.ioWindow.map { UInt16($0.lowerBound)...UInt16($0.upperBound) },
///         intxRoutes: (0..<32).flatMap { device in
///             PCIInterruptPin.allCases.map { pin in
///                 PCIINTxRoute(device: UInt8(device), pin: UInt8(pin.index),
///                              gsi: layout.intxRouting.gsi(device: UInt8(device), pin: pin))
///             }
///         })
///     config.additionalDevices += PCIHostBridgeACPI.devices(description)
///     config.additionalTables.append(PCIHostBridgeACPI.mcfg(description, oem: config.oem))
public struct PCIHostBridgeDescription: Sendable, Equatable {
    /// PCI segment group (`_SEG`, the MCFG entry's segment); 0 on every PC.
    public var segment: UInt16
    /// Buses the bridge decodes (`_BBN` is the first; ECAM covers them all).
    public var busRange: ClosedRange<UInt8>
    /// Guest-physical address of bus 0's ECAM space (1 MiB per bus). The MCFG gives this base for bus 0 even
    /// when the range starts later, as Linux computes `base + (bus << 20)`.
    public var ecamBase: UInt64
    public var memory32Window: ClosedRange<UInt32>
    public var memory64Window: ClosedRange<UInt64>?
    /// Ports for I/O BARs, or nil.
    public var ioWindow: ClosedRange<UInt16>?
    /// INTx routing for `_PRT`; empty for none (then Linux only has MSI/MSI-X for these devices).
    public var intxRoutes: [PCIINTxRoute]

    public init(
        segment: UInt16 = 0, busRange: ClosedRange<UInt8> = 0...0, ecamBase: UInt64 = 0xE000_0000,
        memory32Window: ClosedRange<UInt32> = 0xC000_0000...0xDFFF_FFFF, memory64Window: ClosedRange<UInt64>? = nil,
        ioWindow: ClosedRange<UInt16>? = 0xC000...0xFFFF, intxRoutes: [PCIINTxRoute] = PCIINTxRoute.swizzled()
    ) {
        self.segment = segment
        self.busRange = busRange
        self.ecamBase = ecamBase
        self.memory32Window = memory32Window
        self.memory64Window = memory64Window
        self.ioWindow = ioWindow
        self.intxRoutes = intxRoutes
    }

    /// Bytes of ECAM from `ecamBase` up to the end of the last bus.
    public var ecamSize: UInt64 { (UInt64(busRange.upperBound) + 1) << 20 }
}

/// One `_PRT` entry: INTx pin `pin` (0 = INTA ... 3 = INTD) of every function of `device` on the bridge's
/// first bus raises global system interrupt `gsi` (a hard-wired I/O APIC input, no link device).
public struct PCIINTxRoute: Sendable, Equatable {
    public var device: UInt8
    public var pin: UInt8
    public var gsi: UInt32

    public init(device: UInt8, pin: UInt8, gsi: UInt32) {
        precondition(device < 32 && pin < 4, "a PCI device is 0-31 and its pins INTA-INTD (0-3)")
        self.device = device
        self.pin = pin
        self.gsi = gsi
    }

    /// Every pin of `devices`, spread over `gsiCount` GSIs from `firstGSI` as `(device + pin) % gsiCount` —
    /// the same formula as Devices' `PCIINTxRouting` defaults (GSIs 16-23).
    public static func swizzled(devices: Range<UInt8> = 0..<32, firstGSI: UInt32 = 16, gsiCount: UInt32 = 8)
        -> [PCIINTxRoute]
    {
        devices.flatMap { device in
            (0..<4).map { pin in
                PCIINTxRoute(device: device, pin: UInt8(pin), gsi: firstGSI + (UInt32(device) + UInt32(pin)) % gsiCount)
            }
        }
    }
}

public enum PCIHostBridgeACPI {
    /// Both DSDT objects for `\_SB_`: the host bridge and its ECAM reservation.
    public static func devices(_ description: PCIHostBridgeDescription) -> [any AMLEncodable] {
        [hostBridge(description), ecamReservation(description)]
    }

    /// The host bridge, in ASL:
    ///
    ///     Device (PCI0) {
    ///         Name (_HID, EisaId ("PNP0A08"))   // PCI Express root bridge ...
    ///         Name (_CID, EisaId ("PNP0A03"))   // ... compatible with a PCI root bridge
    ///         Name (_SEG, 0)  Name (_BBN, 0)  Name (_UID, 0)
    ///         Name (_CRS, ResourceTemplate () {
    ///             WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0, 0, 1)
    ///             IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)           // configuration mechanism #1
    ///             WordIO (..., 0xC000, 0xFFFF, ...)                   // I/O BARs
    ///             DWordMemory (..., 0xC0000000, 0xDFFFFFFF, ...)      // 32-bit BARs
    ///             QWordMemory (...)                                   // 64-bit BARs, if any
    ///         })
    ///         Name (_PRT, Package () { Package () { 0x0001FFFF, 0, 0, 17 }, ... })
    ///     }
    ///
    /// PNP0A08 makes Linux treat the bridge as PCI Express and reach extended configuration space through the
    /// MCFG's ECAM. Without `_OSC` Linux keeps native PCIe services off ("platform retains control"), which
    /// nothing here needs. The `_PRT` entries use no link devices (source 0): each names its GSI directly,
    /// and Linux programs such GSIs level-triggered, active low, as PCI interrupts are.
    public static func hostBridge(_ description: PCIHostBridgeDescription, name: AMLName = "PCI0") -> AML.Device {
        var resources: [ResourceDescriptor] = [
            .wordBusNumber(UInt16(description.busRange.lowerBound)...UInt16(description.busRange.upperBound)),
            .io(minimum: 0xCF8, maximum: 0xCF8, alignment: 1, length: 8),
        ]
        if let io = description.ioWindow { resources.append(.wordIO(io)) }
        resources.append(.dwordMemory(description.memory32Window))
        if let memory64 = description.memory64Window { resources.append(.qwordMemory(memory64)) }

        var terms: [any AMLEncodable] = [
            AML.Name("_HID", AML.EISAID("PNP0A08")),
            AML.Name("_CID", AML.EISAID("PNP0A03")),
            AML.Name("_SEG", Int(description.segment)),
            AML.Name("_BBN", Int(description.busRange.lowerBound)),
            AML.Name("_UID", Int(description.segment)),
            AML.Name("_CRS", ResourceTemplate(resources)),
        ]
        if !description.intxRoutes.isEmpty {
            terms.append(AML.Name("_PRT", AML.Package(description.intxRoutes.map { route in
                // Address: device in the high word, 0xFFFF = any function (ACPI 6.5 §6.2.13).
                AML.Package([UInt32(route.device) << 16 | 0xFFFF, Int(route.pin), 0, route.gsi])
            })))
        }
        return AML.Device(name, terms)
    }

    /// A motherboard-resources device (PNP0C02) claiming the ECAM range. Linux uses the MCFG's ECAM only if the
    /// range is reserved, either in the e820 map or by such a device ("PCI: MMCONFIG at [mem ...] reserved as
    /// ACPI motherboard resource"); otherwise it falls back to ports 0xCF8/0xCFC and loses extended space.
    public static func ecamReservation(_ description: PCIHostBridgeDescription, name: AMLName = "MBRD") -> AML.Device {
        let end = description.ecamBase + description.ecamSize - 1
        let resource: ResourceDescriptor = end <= 0xFFFF_FFFF
            ? .memory32Fixed(base: UInt32(description.ecamBase), length: UInt32(description.ecamSize), writable: true)
            : .addressSpace(AddressSpaceDescriptor(width: .qword, resource: .memory(.nonCacheable, writable: true),
                                                   range: description.ecamBase...end, isProducer: false))
        return AML.Device(name, [
            AML.Name("_HID", AML.EISAID("PNP0C02")),
            AML.Name("_UID", Int(description.segment)),
            AML.Name("_CRS", ResourceTemplate([resource])),
        ])
    }
}
