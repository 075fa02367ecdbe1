/// Where the PCI host bridge lives in the guest's address spaces. The same values feed the devices (`PCIRoot`,
/// the window devices on the buses), the ACPI description (DSDT `_CRS`, MCFG) and the e820 map.
///
/// The default, inside the 32-bit MMIO hole (X86MemoryLayout: 0xC000_0000-0xFFFF_FFFF):
///
///     0xC000_0000-0xDFFF_FFFF   32-bit memory window: BARs are placed here (512 MiB)
///     0xE000_0000-0xE00F_FFFF   ECAM for bus 0 (1 MiB: 32 devices x 8 functions x 4 KiB)
///     0xFEC0_0000 ...           I/O APIC, local APIC (KVM's, untouched)
///     ports 0xCF8-0xCFF         configuration mechanism #1
///     ports 0xC000-0xFFFF       I/O window for I/O BARs
public struct PCILayout: Sendable, Equatable {
    public static let configAddressPort: UInt64 = 0xCF8
    /// CONFIG_ADDRESS (0xCF8-0xCFB) and CONFIG_DATA (0xCFC-0xCFF).
    public static let configPortCount: UInt64 = 8
    /// ECAM gives each bus 1 MiB.
    public static let ecamBytesPerBus: UInt64 = 1 << 20

    /// ECAM base; 1 MiB aligned (the MCFG requires the base of bus 0 to be).
    public var ecamBase: UInt64 = 0xE000_0000
    /// Buses 0..<busCount are covered by ECAM. Only bus 0 has devices, but Linux is happy with more.
    public var busCount: Int = 1
    public var memory32Window: ClosedRange<UInt64> = 0xC000_0000...0xDFFF_FFFF
    /// Above 4 GiB for large 64-bit BARs; it must lie above the guest's RAM and below its physical address
    /// width. Nil: 64-bit BARs go to the 32-bit window.
    public var memory64Window: ClosedRange<UInt64>?
    /// Ports for I/O BARs; nil for none.
    public var ioWindow: ClosedRange<UInt64>? = 0xC000...0xFFFF
    public var intxRouting = PCIINTxRouting()

    public init() {}

    public var ecamSize: UInt64 { UInt64(busCount) * PCILayout.ecamBytesPerBus }
    /// The ECAM range, inclusive.
    public var ecamRange: ClosedRange<UInt64> { ecamBase...(ecamBase + ecamSize - 1) }

    public func validate() throws(PCIError) {
        guard (1...256).contains(busCount) else { throw .invalidLayout("bus count \(busCount) is not 1-256") }
        guard ecamBase % PCILayout.ecamBytesPerBus == 0 else {
            throw .invalidLayout("ECAM base 0x\(String(ecamBase, radix: 16)) is not 1 MiB aligned")
        }
        guard ecamBase.addingReportingOverflow(ecamSize).overflow == false else {
            throw .invalidLayout("ECAM wraps past 2^64")
        }
        guard memory32Window.upperBound <= 0xFFFF_FFFF else {
            throw .invalidLayout("the 32-bit memory window ends above 4 GiB")
        }
        var ranges = [("ECAM", ecamRange), ("32-bit memory", memory32Window)]
        if let memory64Window { ranges.append(("64-bit memory", memory64Window)) }
        for (index, (name, range)) in ranges.enumerated() {
            for (otherName, other) in ranges[(index + 1)...] where range.overlaps(other) {
                throw .invalidLayout("the \(name) window overlaps the \(otherName) window")
            }
        }
        if let ioWindow {
            guard ioWindow.upperBound <= 0xFFFF else { throw .invalidLayout("the I/O window ends above port 0xFFFF") }
            let config = PCILayout.configAddressPort...(PCILayout.configAddressPort + PCILayout.configPortCount - 1)
            guard !ioWindow.overlaps(config) else { throw .invalidLayout("the I/O window overlaps ports 0xCF8-0xCFF") }
        }
    }
}
