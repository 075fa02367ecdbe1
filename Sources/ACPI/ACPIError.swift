import GuestMemory

/// Everything that can go wrong while building or placing the ACPI tables. All are host-side problems (a bad
/// configuration, not enough room): the guest has not run yet.
public enum ACPIError: Error, Equatable, CustomStringConvertible {
    /// `vcpuCount` is outside 1...255: xAPIC IDs are 8 bits and 0xFF is the broadcast ID, so an MADT of
    /// Processor Local APIC entries describes at most 255 processors (IDs 0-254).
    case vcpuCountOutOfRange(Int)
    /// An MMIO address the MADT stores in a 32-bit field (local APIC, I/O APIC) is above 4 GiB.
    case addressAbove4GiB(field: String, address: GuestAddress)
    /// An OEM string is empty, longer than its field, or not printable ASCII.
    case invalidIdentifier(field: String, value: String, width: Int)
    /// The power-register block would start at port 0 or run past port 0xFFFF.
    case invalidPowerRegisterPort(UInt16)
    /// A device's interrupt is not one of the I/O APIC's 24 inputs.
    case invalidInterrupt(field: String, gsi: UInt32)
    /// The RSDP must sit on a 16-byte boundary: that is where the guest scans for it.
    case misalignedBase(GuestAddress)
    /// The tables need `size` bytes from `base`, past `limit` (the end of the BIOS area the e820 map reserves).
    case tablesDoNotFit(base: GuestAddress, size: UInt64, limit: GuestAddress)
    /// Writing the tables into guest memory failed (the range is not RAM).
    case guestMemory(GuestMemoryError)

    public var description: String {
        switch self {
        case let .vcpuCountOutOfRange(count):
            return "ACPI: \(count) vCPUs cannot be described; the MADT supports 1 to 255 (APIC IDs 0-254)"
        case let .addressAbove4GiB(field, address):
            return "ACPI: \(field) \(address) does not fit the MADT's 32-bit address field"
        case let .invalidIdentifier(field, value, width):
            return "ACPI: \(field) '\(value)' must be 1 to \(width) printable ASCII characters"
        case let .invalidPowerRegisterPort(port):
            return "ACPI: power register block at port 0x\(String(port, radix: 16)) must be non-zero and end by 0xFFFF"
        case let .invalidInterrupt(field, gsi):
            return "ACPI: \(field) \(gsi) is not an I/O APIC input (0-23)"
        case let .misalignedBase(base):
            return "ACPI: tables base \(base) is not 16-byte aligned (the RSDP must be)"
        case let .tablesDoNotFit(base, size, limit):
            return "ACPI: tables need \(size) bytes at \(base), past the limit \(limit)"
        case let .guestMemory(error):
            return "ACPI: writing tables failed: \(error)"
        }
    }
}
