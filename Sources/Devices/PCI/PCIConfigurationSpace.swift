/// One function's configuration space: the bytes the guest reads, and per byte which bits it may change.
///
/// Every register is described by two masks, as real hardware is by its wiring:
/// - `writable`: bits a configuration write replaces (command bits, BAR address bits, interrupt line, ...);
///   all other bits keep their value — identification, BAR flag bits, capability pointers.
/// - `writeOneToClear`: status bits the function sets itself and software clears by writing 1 ("RW1C",
///   PCI Local Bus 3.0 §6.2.3); writing 0 leaves them alone.
/// BAR sizing needs nothing special: a BAR's address bits below its size are simply not writable, so after
/// writing all ones the guest reads back `~(size - 1) | flags` (§6.2.5.1).
///
/// Accesses the hardware cannot produce or that fall outside the space are survived, not trusted: a read with
/// a width other than 1, 2 or 4, not naturally aligned, or past the end answers all ones (what a master abort
/// returns), and such a write changes nothing. Configuration cycles are naturally aligned by construction on
/// both access paths (0xCFC + n, ECAM), so only a malformed access gets refused.
///
/// A value type: the owning device keeps it inside its own lock, next to the rest of its state.
public struct PCIConfigurationSpace: Sendable, Equatable {
    /// Conventional PCI: the 64-byte header and 192 bytes of capabilities.
    public static let standardSize = 256
    /// PCI Express extended configuration space, reachable through ECAM only.
    public static let extendedSize = 4096
    public static let barCount = 6

    public let size: Int
    private var bytes: [UInt8]
    private var writable: [UInt8]
    private var writeOneToClear: [UInt8]
    /// The BARs by first slot; the second slot of a 64-bit BAR stays nil.
    public private(set) var bars: [PCIBAR?] = Array(repeating: nil, count: barCount)
    /// Offset of the last capability in the list (whose next pointer a new one is linked from).
    private var lastCapability: Int?
    private var nextCapabilityOffset = PCIRegister.firstCapabilityOffset

    public init(identity: PCIIdentity, size: Int = PCIConfigurationSpace.standardSize) {
        precondition(size == PCIConfigurationSpace.standardSize || size == PCIConfigurationSpace.extendedSize,
                     "configuration space is 256 or 4096 bytes")
        self.size = size
        bytes = Array(repeating: 0, count: size)
        writable = Array(repeating: 0, count: size)
        writeOneToClear = Array(repeating: 0, count: size)

        set(identity.vendorID, at: PCIRegister.vendorID)
        set(identity.deviceID, at: PCIRegister.deviceID)
        set(identity.revisionID, at: PCIRegister.revisionID)
        set(identity.classCode.programmingInterface, at: PCIRegister.classProgrammingInterface)
        set(identity.classCode.subclass, at: PCIRegister.classSubclass)
        set(identity.classCode.baseClass, at: PCIRegister.classBase)
        // Header type 0 (a function, not a bridge); bit 7 announces functions 1-7.
        set(UInt8(identity.isMultifunction ? 0x80 : 0x00), at: PCIRegister.headerType)
        set(identity.subsystemVendorID, at: PCIRegister.subsystemVendorID)
        set(identity.subsystemID, at: PCIRegister.subsystemID)

        setWritableMask(PCICommand.writable, at: PCIRegister.command)
        setWriteOneToClearMask(PCIStatus.writeOneToClear, at: PCIRegister.status)
        // Cache line size is read/write storage Linux programs and reads back; the latency timer is hardwired
        // to 0 as PCI Express allows. Interrupt line is scratch storage for the OS (the function ignores it).
        setWritableMask(UInt8(0xFF), at: PCIRegister.cacheLineSize)
        setWritableMask(UInt8(0xFF), at: PCIRegister.interruptLine)
        // The expansion ROM BAR is hardwired to 0: no option ROM, and sizing it reads back 0 ("not implemented").
    }

    // MARK: - Guest accesses

    /// What a configuration read of `width` bytes at `offset` returns (all ones when malformed, see above).
    public func read(offset: Int, width: Int) -> UInt32 {
        guard isWellFormed(offset: offset, width: width) else { return Self.allOnes(width: width) }
        var value: UInt32 = 0
        for index in 0..<width { value |= UInt32(bytes[offset + index]) << (8 * index) }
        return value
    }

    /// Applies a configuration write: writable bits take the new value, write-1-to-clear bits clear where the
    /// value has ones, everything else stays. Returns false (changing nothing) when the access is malformed.
    @discardableResult
    public mutating func write(offset: Int, width: Int, value: UInt32) -> Bool {
        guard isWellFormed(offset: offset, width: width) else { return false }
        for index in 0..<width {
            let position = offset + index
            let byte = UInt8(truncatingIfNeeded: value >> (8 * index))
            var new = (bytes[position] & ~writable[position]) | (byte & writable[position])
            new &= ~(byte & writeOneToClear[position])
            bytes[position] = new
        }
        return true
    }

    // MARK: - Snapshots

    /// Every register byte as the guest reads it, for a snapshot.
    public var registerBytes: [UInt8] { bytes }

    /// Restores a snapshot's register bytes, but only where the guest could have written them: identity,
    /// capability layout, BAR sizes and flags stay what this function's code built, so a forged snapshot can set
    /// no more than a guest could. Returns false (changing nothing) when the size differs.
    @discardableResult
    public mutating func restoreGuestWritableBits(from saved: [UInt8]) -> Bool {
        guard saved.count == size else { return false }
        for position in 0..<size {
            bytes[position] = (bytes[position] & ~writable[position]) | (saved[position] & writable[position])
        }
        return true
    }

    private func isWellFormed(offset: Int, width: Int) -> Bool {
        guard width == 1 || width == 2 || width == 4 else { return false }
        guard offset >= 0, offset % width == 0 else { return false }
        return offset <= size - width
    }

    /// The all-ones pattern of an access width (0xFFFF_FFFF for malformed widths).
    static func allOnes(width: Int) -> UInt32 {
        width == 1 ? 0xFF : width == 2 ? 0xFFFF : 0xFFFF_FFFF
    }

    // MARK: - The function's own side (bypasses the masks)

    /// Stores `value` little-endian at `offset`, as the function's hardware does: read-only bits included.
    public mutating func set<T: FixedWidthInteger & UnsignedInteger>(_ value: T, at offset: Int) {
        precondition(offset >= 0 && offset + T.bitWidth / 8 <= size, "offset \(offset) outside configuration space")
        for index in 0..<(T.bitWidth / 8) { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index)) }
    }

    /// The little-endian value at `offset`.
    public func value<T: FixedWidthInteger & UnsignedInteger>(_ type: T.Type = T.self, at offset: Int) -> T {
        precondition(offset >= 0 && offset + T.bitWidth / 8 <= size, "offset \(offset) outside configuration space")
        var value: T = 0
        for index in 0..<(T.bitWidth / 8) { value |= T(bytes[offset + index]) << (8 * index) }
        return value
    }

    /// Makes the bits set in `mask` guest-writable (and the others read-only) at `offset`.
    public mutating func setWritableMask<T: FixedWidthInteger & UnsignedInteger>(_ mask: T, at offset: Int) {
        for index in 0..<(T.bitWidth / 8) { writable[offset + index] = UInt8(truncatingIfNeeded: mask >> (8 * index)) }
    }

    /// Makes the bits set in `mask` write-1-to-clear at `offset`.
    public mutating func setWriteOneToClearMask<T: FixedWidthInteger & UnsignedInteger>(_ mask: T, at offset: Int) {
        for index in 0..<(T.bitWidth / 8) {
            writeOneToClear[offset + index] = UInt8(truncatingIfNeeded: mask >> (8 * index))
        }
    }

    // MARK: - Header fields

    public var command: UInt16 { value(at: PCIRegister.command) }
    public var status: UInt16 { value(at: PCIRegister.status) }

    /// Sets status bits the function reports (e.g. a received master abort); the guest clears RW1C ones.
    public mutating func raiseStatus(_ bits: UInt16) { set(status | bits, at: PCIRegister.status) }

    /// The INTx pin this function uses (INTA-INTD), or nil for none. Read-only for the guest.
    public var interruptPin: PCIInterruptPin? {
        get { PCIInterruptPin(rawValue: value(at: PCIRegister.interruptPin)) }
        set { set(newValue?.rawValue ?? 0, at: PCIRegister.interruptPin) }
    }

    /// The interrupt line register: the OS's note of where INTx is routed. Preset to the GSI as firmware does.
    public var interruptLine: UInt8 {
        get { value(at: PCIRegister.interruptLine) }
        set { set(newValue, at: PCIRegister.interruptLine) }
    }

    /// Status bit 3, the function's INTx condition. The pin is asserted when this is set and the command
    /// register's interrupt-disable bit is clear (see `intxAsserted`).
    public var interruptStatus: Bool {
        get { status & PCIStatus.interrupt != 0 }
        set {
            let other = status & ~PCIStatus.interrupt
            set(newValue ? other | PCIStatus.interrupt : other, at: PCIRegister.status)
        }
    }

    /// Whether the INTx pin is driven: the condition is pending and software has not disabled INTx.
    public var intxAsserted: Bool { interruptStatus && command & PCICommand.interruptDisable == 0 }

    // MARK: - BARs

    /// Declares BAR `index` (a 64-bit BAR also takes `index + 1`), initially at `address` (0: unassigned).
    /// Layout is fixed by the VMM's code, so an overlapping or out-of-range declaration traps.
    public mutating func setBAR(_ index: Int, _ bar: PCIBAR, address: UInt64 = 0) {
        precondition((0...(PCIConfigurationSpace.barCount - bar.slotCount)).contains(index), "no BAR slot \(index)")
        for slot in index..<(index + bar.slotCount) {
            precondition(bars[slot] == nil && !isUpperHalf(slot), "BAR slot \(slot) is already in use")
        }
        if index > 0 { precondition(!(bars[index - 1]?.kind == .memory64), "BAR slot \(index) is already in use") }
        bars[index] = bar
        setWritableMask(bar.lowWritableMask, at: PCIRegister.bar(index))
        if bar.kind == .memory64 { setWritableMask(bar.highWritableMask, at: PCIRegister.bar(index + 1)) }
        setBARAddress(index, address)
    }

    /// Places BAR `index` at `address` (aligned down to its size), as firmware does before the OS runs.
    public mutating func setBARAddress(_ index: Int, _ address: UInt64) {
        guard let bar = bars[index] else { preconditionFailure("BAR \(index) is not declared") }
        let aligned = address & ~(bar.size - 1)
        set(UInt32(truncatingIfNeeded: aligned) & bar.lowWritableMask | bar.flags, at: PCIRegister.bar(index))
        if bar.kind == .memory64 {
            set(UInt32(truncatingIfNeeded: aligned >> 32) & bar.highWritableMask, at: PCIRegister.bar(index + 1))
        }
    }

    /// The address BAR `index` is programmed with, whether or not it decodes; nil when there is no such BAR.
    public func barAddress(_ index: Int) -> UInt64? {
        guard (0..<PCIConfigurationSpace.barCount).contains(index), let bar = bars[index] else { return nil }
        let low = UInt64(value(UInt32.self, at: PCIRegister.bar(index)) & bar.lowWritableMask)
        guard bar.kind == .memory64 else { return low }
        return UInt64(value(UInt32.self, at: PCIRegister.bar(index + 1))) << 32 | low
    }

    /// The BARs the function decodes now: memory BARs while the command register's memory-space bit is set,
    /// I/O BARs while its I/O-space bit is, each only at a usable address — not 0 (unassigned) and not running
    /// into the top of its address space (that is where the all-ones sizing pattern leaves it).
    public var decodedBARs: [PCIBARMapping] {
        var mappings: [PCIBARMapping] = []
        let command = self.command
        for (index, bar) in bars.enumerated() {
            guard let bar, let base = barAddress(index), base != 0 else { continue }
            let enabled = bar.kind == .io ? command & PCICommand.ioSpace != 0 : command & PCICommand.memorySpace != 0
            let (last, overflow) = base.addingReportingOverflow(bar.size - 1)
            guard enabled, !overflow, last < bar.addressSpaceLimit else { continue }
            mappings.append(PCIBARMapping(index: index, kind: bar.kind, base: base, size: bar.size))
        }
        return mappings
    }

    private func isUpperHalf(_ slot: Int) -> Bool { slot > 0 && bars[slot - 1]?.kind == .memory64 }

    // MARK: - Capabilities

    /// Appends a capability (PCI Local Bus 3.0 §6.7): its ID, a next pointer (0 until another one follows), and
    /// `body`, at the next free dword-aligned offset from 0x40. The capabilities-list status bit and pointer
    /// are set on the first one. `writableMask` (byte for byte over `body`) says which body bits the guest may
    /// write; IDs and next pointers stay read-only. Returns the capability's offset.
    ///
    /// Capabilities are fixed by the VMM's code, so running out of the 192 bytes traps.
    @discardableResult
    public mutating func addCapability(id: UInt8, body: [UInt8], writableMask: [UInt8] = []) -> Int {
        precondition(writableMask.count <= body.count, "writable mask longer than the capability body")
        let offset = nextCapabilityOffset
        precondition(offset + 2 + body.count <= PCIConfigurationSpace.standardSize,
                     "capability 0x\(String(id, radix: 16)) of \(body.count + 2) bytes does not fit below 0x100")
        set(id, at: offset)
        set(UInt8(0), at: offset + 1)
        for (index, byte) in body.enumerated() { set(byte, at: offset + 2 + index) }
        for (index, mask) in writableMask.enumerated() { writable[offset + 2 + index] = mask }
        if let lastCapability {
            set(UInt8(offset), at: lastCapability + 1)
        } else {
            set(UInt8(offset), at: PCIRegister.capabilitiesPointer)
            raiseStatus(PCIStatus.capabilitiesList)
        }
        lastCapability = offset
        nextCapabilityOffset = (offset + 2 + body.count + 3) & ~3
        return offset
    }

    /// Appends a vendor-specific capability (ID 0x09): ID, next, then the length byte (counting from the ID,
    /// as `cap_len` in virtio's `struct virtio_pci_cap`) and `payload`. Returns its offset.
    @discardableResult
    public mutating func addVendorSpecificCapability(payload: [UInt8], writableMask: [UInt8] = []) -> Int {
        precondition(3 + payload.count <= 0xFF, "vendor-specific capability too long")
        let mask = writableMask.isEmpty ? [] : [0] + writableMask
        return addCapability(id: PCICapabilityID.vendorSpecific, body: [UInt8(3 + payload.count)] + payload,
                             writableMask: mask)
    }

    /// The capability list as a driver walks it: (ID, offset) pairs from the capabilities pointer, stopping
    /// at a zero pointer, a pointer outside 0x40-0xFF, or a loop.
    public var capabilities: [(id: UInt8, offset: Int)] {
        guard status & PCIStatus.capabilitiesList != 0 else { return [] }
        var list: [(id: UInt8, offset: Int)] = []
        var offset = Int(value(UInt8.self, at: PCIRegister.capabilitiesPointer)) & ~3
        while offset >= PCIRegister.firstCapabilityOffset, offset < PCIConfigurationSpace.standardSize,
            list.count < 48
        {
            list.append((value(UInt8.self, at: offset), offset))
            offset = Int(value(UInt8.self, at: offset + 1)) & ~3
        }
        return list
    }
}
