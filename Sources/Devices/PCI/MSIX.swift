// MSI-X (PCI Local Bus 3.0 §6.8.2): each interrupt vector of a function is a memory write the function performs —
// an address and a data value the OS programs into a table in one of the function's BARs. On x86 the address
// (0xFEEx_xxxx) selects the destination local APIC and the data the vector; KVM turns such a message into an
// interrupt either through a GSI routed as MSI (KVM_SET_GSI_ROUTING + irqfd) or directly (KVM_SIGNAL_MSI).
//
//   capability (config space)   +0 ID 0x11 | +1 next | +2 message control | +4 table offset/BIR | +8 PBA offset/BIR
//     message control           bits 10-0 table size - 1 (RO) | bit 14 function mask | bit 15 MSI-X enable
//   table entry n (16 bytes)    +0 message address low | +4 message address high | +8 message data | +12 vector control
//     vector control            bit 0 mask (set after reset) — all other bits reserved
//   PBA                         bit n: vector n fired while masked; read-only, one qword per 64 vectors
//
// A vector delivers only while MSI-X is enabled, the function mask is clear and its own mask bit is clear.
// Firing it otherwise sets its pending bit; when the masks clear with the bit set, the message goes out then and
// the bit clears (§6.8.2.9). Software reads and writes the table in dwords or qwords (§6.8.2): other widths and
// unaligned accesses are refused — writes ignored, reads all ones, like unclaimed memory.
//
// Threads and locks: the table is written from vCPU threads (BAR MMIO exits) and the control bits from
// configuration writes, while the device's worker threads fire vectors. All of it sits behind one Mutex, and
// `MSIXRouting` is called with that Mutex held so that a route change and a delivery can never cross (lock order:
// MSIXVectors → routing). Implementations must be quick (an ioctl or an eventfd write) and never call back.

import Synchronization

/// An MSI message: the memory write that is the interrupt.
public struct MSIMessage: Sendable, Equatable, CustomStringConvertible {
    public var address: UInt64
    public var data: UInt32

    public init(address: UInt64, data: UInt32) {
        self.address = address
        self.data = data
    }

    public var description: String { "MSI 0x\(String(address, radix: 16))/0x\(String(data, radix: 16))" }
}

/// Where a function's MSI-X vectors go: the VMM maps vector N to a KVM GSI (an MSI routing entry carrying the
/// vector's message, plus an irqfd for delivery) or signals the message directly.
public protocol MSIXRouting: Sendable {
    /// Vector `vector` now delivers `message`, or with nil cannot deliver (masked or MSI-X disabled) — the VMM
    /// may keep or drop its route. Called only on changes: when the vector becomes deliverable or stops being
    /// so, and when a deliverable vector's message is rewritten (masked entries are rewritten freely without
    /// calls; that is how drivers reprogram them).
    func routeChanged(vector: Int, message: MSIMessage?)
    /// Delivers `message` for `vector` now (write the vector's irqfd, or KVM_SIGNAL_MSI).
    func deliver(vector: Int, message: MSIMessage)
}

/// The MSI-X capability's place in configuration space, and the parts of it a device needs to read.
public struct MSIXCapability: Sendable, Equatable {
    /// Offset of the capability (its ID byte) in configuration space.
    public let offset: Int
    public let vectorCount: Int
    /// The BAR holding the table, and the table's offset in it.
    public let tableBAR: Int
    public let tableOffset: UInt64
    public let pbaBAR: Int
    public let pbaOffset: UInt64

    /// Offset of the message control register.
    public var messageControlOffset: Int { offset + 2 }

    /// The message control register as the guest last wrote it.
    public func messageControl(in configuration: PCIConfigurationSpace) -> UInt16 {
        configuration.value(at: messageControlOffset)
    }

    /// Whether a configuration write at `[offset, offset + width)` touched the message control register.
    public func isMessageControlWrite(offset: Int, width: Int) -> Bool {
        offset < messageControlOffset + 2 && messageControlOffset < offset + width
    }
}

/// Message control bits.
public enum MSIXControl {
    public static let functionMask: UInt16 = 1 << 14
    public static let enable: UInt16 = 1 << 15
}

extension PCIConfigurationSpace {
    /// Adds the MSI-X capability for `vectorCount` vectors (1-2048) whose table and PBA live at the given BAR
    /// offsets (8-byte aligned; the BARs themselves must be large enough — see `MSIXVectors.tableSize`).
    /// The guest may write only the enable and function-mask bits.
    public mutating func addMSIXCapability(
        vectorCount: Int, tableBAR: Int, tableOffset: UInt64, pbaBAR: Int, pbaOffset: UInt64
    ) -> MSIXCapability {
        precondition((1...2048).contains(vectorCount), "MSI-X supports 1 to 2048 vectors")
        precondition(tableOffset % 8 == 0 && pbaOffset % 8 == 0, "MSI-X table and PBA offsets are 8-byte aligned")
        precondition(tableOffset <= 0xFFFF_FFF8 && pbaOffset <= 0xFFFF_FFF8, "MSI-X offsets are 32-bit")
        precondition((0..<PCIConfigurationSpace.barCount).contains(tableBAR)
                     && (0..<PCIConfigurationSpace.barCount).contains(pbaBAR), "no such BAR")
        var body: [UInt8] = []
        body.appendLittleEndian(UInt16(vectorCount - 1))
        body.appendLittleEndian(UInt32(tableOffset) | UInt32(tableBAR))
        body.appendLittleEndian(UInt32(pbaOffset) | UInt32(pbaBAR))
        // Writable: bits 14 and 15 of message control (byte 1 of the body) only.
        let offset = addCapability(id: PCICapabilityID.msix, body: body, writableMask: [0x00, 0xC0])
        return MSIXCapability(offset: offset, vectorCount: vectorCount, tableBAR: tableBAR, tableOffset: tableOffset,
                              pbaBAR: pbaBAR, pbaOffset: pbaOffset)
    }
}

/// What happened to one firing of a vector.
public enum MSIXTrigger: Sendable, Equatable {
    /// The message went out.
    case delivered
    /// The vector (or the whole function) is masked: its pending bit is set and it goes out on unmask.
    case pending
    /// MSI-X is disabled, or there is no such vector: the device should use INTx instead.
    case notEnabled
}

/// A function's MSI-X table and pending bits, and the masking rules between them.
public final class MSIXVectors: Sendable {
    public static let entrySize: UInt64 = 16

    /// Bytes of BAR space the table of `vectorCount` vectors needs.
    public static func tableSize(vectorCount: Int) -> UInt64 { UInt64(vectorCount) * entrySize }
    /// Bytes of BAR space the PBA needs: one qword per 64 vectors.
    public static func pbaSize(vectorCount: Int) -> UInt64 { UInt64((vectorCount + 63) / 64) * 8 }

    struct Entry: Equatable {
        var addressLow: UInt32 = 0
        var addressHigh: UInt32 = 0
        var data: UInt32 = 0
        /// Bit 0 masks the vector; set at reset (§6.8.2.9).
        var vectorControl: UInt32 = 1

        var message: MSIMessage { MSIMessage(address: UInt64(addressHigh) << 32 | UInt64(addressLow), data: data) }
        var isMasked: Bool { vectorControl & 1 != 0 }
    }

    struct State {
        var entries: [Entry]
        var pending: [UInt64]
        var enabled = false
        var functionMasked = false

        func deliverable(_ vector: Int) -> Bool { enabled && !functionMasked && !entries[vector].isMasked }
        func isPending(_ vector: Int) -> Bool { pending[vector / 64] & (1 << UInt64(vector % 64)) != 0 }
        mutating func setPending(_ vector: Int, _ value: Bool) {
            if value { pending[vector / 64] |= 1 << UInt64(vector % 64) } else { pending[vector / 64] &= ~(1 << UInt64(vector % 64)) }
        }
    }

    public let vectorCount: Int
    let routing: any MSIXRouting
    let state: Mutex<State>

    public init(vectorCount: Int, routing: any MSIXRouting) {
        precondition((1...2048).contains(vectorCount), "MSI-X supports 1 to 2048 vectors")
        self.vectorCount = vectorCount
        self.routing = routing
        state = Mutex(State(entries: Array(repeating: Entry(), count: vectorCount),
                            pending: Array(repeating: 0, count: (vectorCount + 63) / 64)))
    }

    // MARK: - Configuration space side

    /// Applies the message control register's enable and function-mask bits (call after every configuration
    /// write that touched it; see `MSIXCapability.isMessageControlWrite`).
    public func setMessageControl(_ control: UInt16) {
        state.withLock { state in
            let before = (0..<vectorCount).map { state.deliverable($0) }
            state.enabled = control & MSIXControl.enable != 0
            state.functionMasked = control & MSIXControl.functionMask != 0
            for vector in 0..<vectorCount where before[vector] != state.deliverable(vector) {
                transitioned(vector, in: &state)
            }
        }
    }

    /// Whether MSI-X is enabled (the device then signals through vectors, not INTx).
    public var isEnabled: Bool { state.withLock { $0.enabled } }

    /// Back to the reset state: disabled, every vector masked and zeroed, nothing pending.
    public func reset() {
        state.withLock { state in
            for vector in 0..<vectorCount where state.deliverable(vector) {
                routing.routeChanged(vector: vector, message: nil)
            }
            state = State(entries: Array(repeating: Entry(), count: vectorCount),
                          pending: Array(repeating: 0, count: state.pending.count))
        }
    }

    // MARK: - Device side

    /// Fires `vector`: delivers its message, or marks it pending while masked.
    @discardableResult
    public func trigger(vector: Int) -> MSIXTrigger {
        state.withLock { state in
            guard state.enabled, (0..<vectorCount).contains(vector) else { return .notEnabled }
            if state.deliverable(vector) {
                routing.deliver(vector: vector, message: state.entries[vector].message)
                return .delivered
            }
            state.setPending(vector, true)
            return .pending
        }
    }

    public func isPending(vector: Int) -> Bool { state.withLock { $0.isPending(vector) } }
    public func isMasked(vector: Int) -> Bool { state.withLock { !$0.deliverable(vector) } }
    /// The message vector `vector` holds now (whether or not it may deliver).
    public func message(vector: Int) -> MSIMessage { state.withLock { $0.entries[vector].message } }

    // MARK: - BAR side (offsets relative to the table / PBA start)

    /// A read of the table. Dword and qword accesses at their natural alignment only; others read all ones.
    /// Beyond the last entry reads 0.
    public func readTable(offset: UInt64, width: Int) -> UInt64 {
        guard (width == 4 || width == 8), offset % UInt64(width) == 0 else { return .max }
        return state.withLock { state in
            var value: UInt64 = 0
            for dword in 0..<(width / 4) {
                value |= UInt64(Self.tableDword(state, offset + UInt64(dword) * 4)) << (32 * UInt64(dword))
            }
            return value
        }
    }

    /// A write to the table (dword or qword, naturally aligned; anything else is ignored).
    public func writeTable(offset: UInt64, width: Int, value: UInt64) {
        guard (width == 4 || width == 8), offset % UInt64(width) == 0 else { return }
        state.withLock { state in
            for dword in 0..<(width / 4) {
                writeTableDword(&state, offset + UInt64(dword) * 4, UInt32(truncatingIfNeeded: value >> (32 * dword)))
            }
        }
    }

    /// A read of the pending bit array (read-only; writes are ignored, so there is no `writePBA`).
    public func readPBA(offset: UInt64, width: Int) -> UInt64 {
        guard (width == 4 || width == 8), offset % UInt64(width) == 0 else { return .max }
        return state.withLock { state in
            let qword = Int(offset / 8)
            guard qword < state.pending.count else { return 0 }
            let bits = state.pending[qword]
            return width == 8 ? bits : (bits >> (offset % 8 == 0 ? 0 : 32)) & 0xFFFF_FFFF
        }
    }

    private static func tableDword(_ state: State, _ offset: UInt64) -> UInt32 {
        let vector = Int(offset / entrySize)
        guard vector < state.entries.count else { return 0 }
        let entry = state.entries[vector]
        switch offset % entrySize {
        case 0: return entry.addressLow
        case 4: return entry.addressHigh
        case 8: return entry.data
        default: return entry.vectorControl
        }
    }

    private func writeTableDword(_ state: inout State, _ offset: UInt64, _ value: UInt32) {
        let vector = Int(offset / MSIXVectors.entrySize)
        guard vector < state.entries.count else { return }
        let wasDeliverable = state.deliverable(vector)
        let oldMessage = state.entries[vector].message
        switch offset % MSIXVectors.entrySize {
        // The message address is dword aligned: bits 1-0 are hardwired to 0.
        case 0: state.entries[vector].addressLow = value & ~0x3
        case 4: state.entries[vector].addressHigh = value
        case 8: state.entries[vector].data = value
        // Only the mask bit exists; the other bits are reserved and read 0.
        default: state.entries[vector].vectorControl = value & 1
        }
        if wasDeliverable != state.deliverable(vector) {
            transitioned(vector, in: &state)
        } else if wasDeliverable, oldMessage != state.entries[vector].message {
            routing.routeChanged(vector: vector, message: state.entries[vector].message)
        }
    }

    /// `vector` just became deliverable or stopped being so: tell the routing, and send a pending message.
    private func transitioned(_ vector: Int, in state: inout State) {
        guard state.deliverable(vector) else {
            routing.routeChanged(vector: vector, message: nil)
            return
        }
        let message = state.entries[vector].message
        routing.routeChanged(vector: vector, message: message)
        if state.isPending(vector) {
            state.setPending(vector, false)
            routing.deliver(vector: vector, message: message)
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        for index in 0..<(T.bitWidth / 8) { append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
    }
}
