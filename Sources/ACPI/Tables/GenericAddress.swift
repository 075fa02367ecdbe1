/// Generic Address Structure (ACPI 6.5 §5.2.3.2), 12 bytes: how the FADT points at a register.
///
/// Layout: Address Space ID u8 @0 (0 system memory, 1 system I/O), Register Bit Width u8 @1, Register Bit
/// Offset u8 @2, Access Size u8 @3 (1 byte, 2 word, 3 dword, 4 qword access), Address u64 @4.
struct GenericAddress: Equatable {
    static let length = 12

    enum AddressSpace: UInt8 {
        case systemMemory = 0
        case systemIO = 1
    }

    var addressSpace: AddressSpace
    var bitWidth: UInt8
    var bitOffset: UInt8 = 0
    var accessSize: UInt8
    var address: UInt64

    /// A one-byte I/O port accessed with byte accesses — the form of all of Swiftlet's power registers.
    /// (Linux's ACPICA checks bit width + offset fit the access width before it touches the register.)
    static func ioPort8(_ port: UInt16) -> GenericAddress {
        GenericAddress(addressSpace: .systemIO, bitWidth: 8, accessSize: 1, address: UInt64(port))
    }

    var bytes: [UInt8] {
        var bytes: [UInt8] = [addressSpace.rawValue, bitWidth, bitOffset, accessSize]
        bytes.appendLittleEndian(address)
        return bytes
    }
}
