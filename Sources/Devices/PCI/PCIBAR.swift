/// A Base Address Register: a window of memory or I/O space the function decodes, whose size the function
/// fixes and whose address the guest chooses (PCI Local Bus 3.0 §6.2.5.1).
///
/// The low bits of the register are read-only flags: bit 0 is 1 for I/O, 0 for memory; for memory, bits 2-1
/// are the type (00 32-bit, 10 64-bit, in which case the next BAR holds address bits 63-32) and bit 3 says
/// prefetchable. The address bits below the size are hardwired to 0, which is what makes sizing work: software
/// writes all ones, reads back, and the lowest set address bit is the size.
public struct PCIBAR: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Memory anywhere below 4 GiB.
        case memory32
        /// Memory anywhere in the 64-bit space; takes two BAR slots.
        case memory64
        /// x86 port I/O (16-bit port numbers).
        case io
    }

    public var kind: Kind
    /// Bytes; a power of two (memory: at least 16, at most 2 GiB for 32-bit; I/O: 4 to 256).
    public var size: UInt64
    /// Reads have no side effects, so the CPU may prefetch and merge (memory BARs only).
    public var isPrefetchable: Bool

    public init(kind: Kind, size: UInt64, prefetchable: Bool = false) {
        precondition(size.nonzeroBitCount == 1, "a BAR's size must be a power of two; got \(size)")
        switch kind {
        case .memory32: precondition((16...(1 << 31)).contains(size), "a 32-bit memory BAR is 16 B to 2 GiB")
        case .memory64: precondition(size >= 16, "a memory BAR is at least 16 bytes")
        case .io:
            precondition((4...256).contains(size), "an I/O BAR is 4 to 256 ports (PCI 3.0 §6.2.5.1)")
            precondition(!prefetchable, "I/O BARs are never prefetchable")
        }
        self.kind = kind
        self.size = size
        self.isPrefetchable = prefetchable
    }

    public static func memory32(size: UInt64, prefetchable: Bool = false) -> PCIBAR {
        PCIBAR(kind: .memory32, size: size, prefetchable: prefetchable)
    }

    public static func memory64(size: UInt64, prefetchable: Bool = false) -> PCIBAR {
        PCIBAR(kind: .memory64, size: size, prefetchable: prefetchable)
    }

    public static func io(size: UInt64) -> PCIBAR { PCIBAR(kind: .io, size: size) }

    /// Register slots the BAR occupies.
    public var slotCount: Int { kind == .memory64 ? 2 : 1 }

    /// The read-only flag bits in the low dword.
    var flags: UInt32 {
        switch kind {
        case .io: return 0x1
        case .memory32: return isPrefetchable ? 0x8 : 0x0
        case .memory64: return 0x4 | (isPrefetchable ? 0x8 : 0x0)
        }
    }

    /// Which low-dword bits the guest may write: the address bits at and above the size.
    var lowWritableMask: UInt32 {
        let addressBits: UInt32 = kind == .io ? 0xFFFF_FFFC : 0xFFFF_FFF0
        return UInt32(truncatingIfNeeded: ~(size - 1)) & addressBits
    }

    /// Which high-dword bits (64-bit BARs) the guest may write.
    var highWritableMask: UInt32 { UInt32(truncatingIfNeeded: ~(size - 1) >> 32) }

    /// The highest address the BAR's address space has: a decoded range must end below it (a range ending
    /// exactly at it is the all-ones sizing pattern, not a placement).
    var addressSpaceLimit: UInt64 {
        switch kind {
        case .io: return 0x1_0000
        case .memory32: return 0xFFFF_FFFF
        case .memory64: return .max
        }
    }
}

/// A BAR as the function decodes it right now: enabled in the command register and placed at a usable address.
public struct PCIBARMapping: Sendable, Equatable, CustomStringConvertible {
    /// The BAR's index (its first slot, for 64-bit BARs).
    public var index: Int
    public var kind: PCIBAR.Kind
    public var base: UInt64
    public var size: UInt64

    public init(index: Int, kind: PCIBAR.Kind, base: UInt64, size: UInt64) {
        self.index = index
        self.kind = kind
        self.base = base
        self.size = size
    }

    /// Inclusive end.
    public var last: UInt64 { base + (size - 1) }

    public var isIO: Bool { kind == .io }

    public var description: String {
        "BAR\(index) \(isIO ? "io" : "mem") 0x\(String(base, radix: 16))-0x\(String(last, radix: 16))"
    }
}
