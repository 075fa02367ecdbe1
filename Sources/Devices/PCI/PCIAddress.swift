/// Where a PCI function sits: bus, device (slot) and function — "BDF", written `00:03.0` as `lspci` does.
///
/// Both configuration access mechanisms encode the same triple, with different shifts:
///
///     0xCF8 CONFIG_ADDRESS  bit 31 enable | bits 23-16 bus | 15-11 device | 10-8 function | 7-2 register
///     ECAM offset           bits 27-20 bus | 19-15 device | 14-12 function | 11-0 register (4 KiB per function)
///
/// (PCI Local Bus 3.0 §3.2.2.3.2; PCI Express Base 4.0 §7.2.2, "Enhanced Configuration Access Mechanism".)
public struct PCIAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let devicesPerBus = 32
    public static let functionsPerDevice = 8

    public let bus: UInt8
    /// 0-31.
    public let device: UInt8
    /// 0-7.
    public let function: UInt8

    /// The VMM picks slots itself, so an out-of-range device or function is a programmer error and traps.
    public init(bus: UInt8 = 0, device: UInt8, function: UInt8 = 0) {
        precondition(Int(device) < PCIAddress.devicesPerBus, "PCI device number \(device) is not 0-31")
        precondition(Int(function) < PCIAddress.functionsPerDevice, "PCI function number \(function) is not 0-7")
        self.bus = bus
        self.device = device
        self.function = function
    }

    /// Device and function packed as one byte (`devfn` in Linux): device << 3 | function.
    public var deviceFunction: Int { Int(device) << 3 | Int(function) }

    /// Decodes a CONFIG_ADDRESS value: the function it selects and the dword-aligned register offset, or nil
    /// when the enable bit (31) is clear — then the data port does not reach configuration space at all.
    public static func decodeConfigAddress(_ value: UInt32) -> (address: PCIAddress, register: Int)? {
        guard value & 0x8000_0000 != 0 else { return nil }
        let address = PCIAddress(bus: UInt8(truncatingIfNeeded: value >> 16),
                                 device: UInt8(truncatingIfNeeded: value >> 11) & 0x1F,
                                 function: UInt8(truncatingIfNeeded: value >> 8) & 0x07)
        return (address, Int(value & 0xFC))
    }

    /// Decodes an offset into the ECAM window: the function and the register offset within its 4 KiB.
    public static func decodeECAMOffset(_ offset: UInt64) -> (address: PCIAddress, register: Int) {
        let address = PCIAddress(bus: UInt8(truncatingIfNeeded: offset >> 20),
                                 device: UInt8(truncatingIfNeeded: offset >> 15) & 0x1F,
                                 function: UInt8(truncatingIfNeeded: offset >> 12) & 0x07)
        return (address, Int(offset & 0xFFF))
    }

    /// The CONFIG_ADDRESS value a driver writes to reach `register` of this function.
    public func configAddress(register: Int) -> UInt32 {
        0x8000_0000 | UInt32(bus) << 16 | UInt32(device) << 11 | UInt32(function) << 8 | UInt32(register & 0xFC)
    }

    /// The offset into the ECAM window of `register` of this function.
    public func ecamOffset(register: Int = 0) -> UInt64 {
        UInt64(bus) << 20 | UInt64(device) << 15 | UInt64(function) << 12 | UInt64(register & 0xFFF)
    }

    public static func < (lhs: PCIAddress, rhs: PCIAddress) -> Bool {
        (lhs.bus, lhs.device, lhs.function) < (rhs.bus, rhs.device, rhs.function)
    }

    /// "00:03.0".
    public var description: String {
        func hex2(_ value: UInt8) -> String {
            let digits = String(value, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }
        return "\(hex2(bus)):\(hex2(device)).\(function)"
    }
}
