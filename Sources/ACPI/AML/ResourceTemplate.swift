/// `ResourceTemplate () { ... }`: the Buffer a device's `_CRS` (current resource settings) returns — a list of
/// resource descriptors closed by an End Tag (ACPI 6.5 §6.4, "Resource Data Types for ACPI").
///
///     AML.Name("_CRS", ResourceTemplate([
///         .io(minimum: 0x3F8, maximum: 0x3F8, alignment: 8, length: 8),
///         .irqNoFlags([4]),
///     ]))
public struct ResourceTemplate: AMLEncodable, Equatable {
    public var descriptors: [ResourceDescriptor]

    public init(_ descriptors: [ResourceDescriptor]) { self.descriptors = descriptors }

    /// The descriptor bytes including the End Tag, i.e. the Buffer's contents.
    public var contents: [UInt8] {
        var bytes: [UInt8] = []
        for descriptor in descriptors { descriptor.encode(into: &bytes) }
        // End Tag (§6.4.2.9): small item 0x0F, length 1; a checksum byte of 0 means "treat as correct",
        // which is what iasl emits.
        bytes += [0x79, 0x00]
        return bytes
    }

    public func encodeAML(into bytes: inout [UInt8]) {
        AML.Buffer(contents).encodeAML(into: &bytes)
    }
}

/// One resource descriptor. Small descriptors (§6.4.2) start with a byte holding the item type in bits 3-6
/// and the body length in bits 0-2; large ones (§6.4.3) with bit 7 set, the item type in bits 0-6, and a
/// 16-bit little-endian body length.
public enum ResourceDescriptor: Sendable, Equatable {
    /// `IO (Decode16, minimum, maximum, alignment, length)` — I/O Port Descriptor (§6.4.2.5). For a fixed
    /// device `minimum == maximum` (COM1: 0x3F8, 0x3F8, 8, 8).
    case io(minimum: UInt16, maximum: UInt16, alignment: UInt8, length: UInt8)
    /// `IRQNoFlags () { irqs }` — IRQ Descriptor, 2-byte form (§6.4.2.1): ISA IRQs 0-15, implicitly
    /// edge-triggered, active-high, exclusive.
    case irqNoFlags([UInt8])
    /// `Memory32Fixed (ReadWrite|ReadOnly, base, length)` — 32-bit Fixed Memory Range Descriptor
    /// (§6.4.3.4), e.g. a virtio-mmio window.
    case memory32Fixed(base: UInt32, length: UInt32, writable: Bool)
    /// `Interrupt (ResourceConsumer, Edge|Level, ActiveHigh|ActiveLow, Exclusive|Shared) { gsis }` —
    /// Extended Interrupt Descriptor (§6.4.3.6): global system interrupts (IOAPIC pins), any number.
    case interrupt(gsis: [UInt32], edgeTriggered: Bool, activeLow: Bool, shared: Bool)
    /// `WordBusNumber`, `WordIO`, `DWordMemory`, `QWordMemory`, ... — Address Space Resource Descriptors
    /// (§6.4.3.5), used by a PCI host bridge's `_CRS`. See the static constructors below.
    case addressSpace(AddressSpaceDescriptor)

    func encode(into bytes: inout [UInt8]) {
        switch self {
        case let .io(minimum, maximum, alignment, length):
            // Small item type 0x08, length 7. Information bit 0: decodes 16 address bits (Decode16).
            bytes += [0x47, 0x01]
            bytes.appendLittleEndian(minimum)
            bytes.appendLittleEndian(maximum)
            bytes += [alignment, length]
        case let .irqNoFlags(irqs):
            // Small item type 0x04, length 2: a 16-bit mask with bit n set for IRQn.
            bytes.append(0x22)
            bytes.appendLittleEndian(ResourceDescriptor.irqMask(irqs))
        case let .memory32Fixed(base, length, writable):
            // Large item type 0x06, body 9 bytes: information (bit 0 = read-write), base, length.
            bytes.append(0x86)
            bytes.appendLittleEndian(UInt16(9))
            bytes.append(writable ? 0x01 : 0x00)
            bytes.appendLittleEndian(base)
            bytes.appendLittleEndian(length)
        case let .interrupt(gsis, edgeTriggered, activeLow, shared):
            precondition((1...255).contains(gsis.count), "an Interrupt descriptor lists 1-255 interrupts")
            // Large item type 0x09. Flags: bit 0 consumer, bit 1 edge (0 = level), bit 2 active-low,
            // bit 3 shared. Then a count byte and 32-bit interrupt numbers.
            bytes.append(0x89)
            bytes.appendLittleEndian(UInt16(2 + 4 * gsis.count))
            var flags: UInt8 = 0x01
            if edgeTriggered { flags |= 0x02 }
            if activeLow { flags |= 0x04 }
            if shared { flags |= 0x08 }
            bytes += [flags, UInt8(gsis.count)]
            for gsi in gsis { bytes.appendLittleEndian(gsi) }
        case let .addressSpace(descriptor):
            descriptor.encode(into: &bytes)
        }
    }

    static func irqMask(_ irqs: [UInt8]) -> UInt16 {
        var mask: UInt16 = 0
        for irq in irqs {
            precondition(irq < 16, "IRQ descriptors name ISA IRQs 0-15; got \(irq)")
            mask |= 1 << irq
        }
        return mask
    }
}

/// An Address Space Resource Descriptor (ACPI 6.5 §6.4.3.5): a window of memory, I/O ports or bus numbers,
/// as a PCI host bridge declares for the ranges it forwards to its bus (it *produces* them).
///
/// Layout after the large-item header: resource type, general flags, type-specific flags, then granularity,
/// minimum, maximum, translation offset and length, each 2, 4 or 8 bytes wide (Word/DWord/QWord form).
public struct AddressSpaceDescriptor: Sendable, Equatable {
    public enum Width: Sendable, Equatable {
        case word, dword, qword

        var byteCount: Int { self == .word ? 2 : self == .dword ? 4 : 8 }
        /// Large item type byte: WordAddressSpace 0x88, DWordAddressSpace 0x87, QWordAddressSpace 0x8A.
        var itemTag: UInt8 { self == .word ? 0x88 : self == .dword ? 0x87 : 0x8A }
    }

    /// The memory attribute in a memory range's type-specific flags (bits 1-2, `_MEM`).
    public enum Cacheability: UInt8, Sendable {
        case nonCacheable = 0, cacheable = 1, writeCombining = 2, prefetchable = 3
    }

    public enum Resource: Sendable, Equatable {
        case memory(Cacheability, writable: Bool)
        /// I/O ports; type-specific flags `_RNG` = 3 (EntireRange: both ISA and non-ISA ranges).
        case io
        case busNumber

        var typeByte: UInt8 {
            switch self {
            case .memory: return 0
            case .io: return 1
            case .busNumber: return 2
            }
        }

        var typeSpecificFlags: UInt8 {
            switch self {
            case let .memory(cacheability, writable): return cacheability.rawValue << 1 | (writable ? 1 : 0)
            case .io: return 0x03
            case .busNumber: return 0
            }
        }
    }

    public var width: Width
    public var resource: Resource
    public var minimum: UInt64
    public var maximum: UInt64
    public var translationOffset: UInt64 = 0
    /// True for ResourceProducer (a bridge forwarding the range), false for ResourceConsumer.
    public var isProducer: Bool = true

    public init(
        width: Width, resource: Resource, range: ClosedRange<UInt64>, translationOffset: UInt64 = 0, isProducer: Bool = true
    ) {
        // Every field, the length (maximum - minimum + 1) included, must fit the descriptor's width: a Word
        // descriptor cannot say 0x0000-0xFFFF (length 0x10000); such windows are split, as ASL does.
        let widest: UInt64 = width == .word ? 0xFFFF : width == .dword ? 0xFFFF_FFFF : .max
        precondition(range.upperBound <= widest && range.upperBound - range.lowerBound < widest,
                     "range \(range) does not fit a \(width) descriptor")
        self.width = width
        self.resource = resource
        self.minimum = range.lowerBound
        self.maximum = range.upperBound
        self.translationOffset = translationOffset
        self.isProducer = isProducer
    }

    func encode(into bytes: inout [UInt8]) {
        bytes.append(width.itemTag)
        bytes.appendLittleEndian(UInt16(3 + 5 * width.byteCount))
        bytes.append(resource.typeByte)
        // General flags: bit 0 consumer, bit 1 subtractive decode (0: positive), bit 2 minimum fixed,
        // bit 3 maximum fixed. A fixed window (MinFixed, MaxFixed) is what a host bridge declares.
        bytes.append((isProducer ? 0 : 0x01) | 0x04 | 0x08)
        bytes.append(resource.typeSpecificFlags)
        // Granularity 0: for a fixed-size window (MinFixed, MaxFixed) it carries no information; the usual
        // host-bridge ASL writes 0 there, and so does this writer.
        let length = maximum - minimum + 1
        for value in [0, minimum, maximum, translationOffset, length] {
            for index in 0..<width.byteCount { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
        }
    }
}

extension ResourceDescriptor {
    /// `WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, length)`.
    public static func wordBusNumber(_ range: ClosedRange<UInt16>) -> ResourceDescriptor {
        .addressSpace(AddressSpaceDescriptor(width: .word, resource: .busNumber, range: widened(range)))
    }

    /// `WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, length)`.
    public static func wordIO(_ range: ClosedRange<UInt16>) -> ResourceDescriptor {
        .addressSpace(AddressSpaceDescriptor(width: .word, resource: .io, range: widened(range)))
    }

    /// `DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, cacheability, ReadWrite|ReadOnly,
    /// 0, min, max, 0, length)`.
    public static func dwordMemory(
        _ range: ClosedRange<UInt32>, cacheability: AddressSpaceDescriptor.Cacheability = .nonCacheable, writable: Bool = true
    ) -> ResourceDescriptor {
        let resource = AddressSpaceDescriptor.Resource.memory(cacheability, writable: writable)
        return .addressSpace(AddressSpaceDescriptor(width: .dword, resource: resource, range: widened(range)))
    }

    /// `QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, cacheability, ReadWrite|ReadOnly,
    /// 0, min, max, 0, length)`.
    public static func qwordMemory(
        _ range: ClosedRange<UInt64>, cacheability: AddressSpaceDescriptor.Cacheability = .nonCacheable, writable: Bool = true
    ) -> ResourceDescriptor {
        let resource = AddressSpaceDescriptor.Resource.memory(cacheability, writable: writable)
        return .addressSpace(AddressSpaceDescriptor(width: .qword, resource: resource, range: range))
    }

    private static func widened<T: FixedWidthInteger & UnsignedInteger>(_ range: ClosedRange<T>) -> ClosedRange<UInt64> {
        UInt64(range.lowerBound)...UInt64(range.upperBound)
    }
}
