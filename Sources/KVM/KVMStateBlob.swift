import CKVM

/// A kind of KVM state struct carried whole, as its bytes: `Raw` is the <linux/kvm.h> struct the get/set ioctl pair
/// reads and writes.
public protocol KVMStateKind {
    associatedtype Raw
    /// The C struct's name, for messages ("kvm_xsave").
    static var structName: String { get }
}

/// One KVM state struct as bytes (the host ABI of <linux/kvm.h>), for snapshots.
///
/// The state KVM hands out for saving (XSAVE area, LAPIC registers, PIC/IOAPIC/PIT state, ...) is meant to be
/// given back unchanged, so the VMM keeps it opaque and checks only its size: bytes of the wrong length (a file
/// from another host ABI, or a corrupted one) are refused by `init(bytes:)`, before any ioctl sees them.
///
/// AUDITED UNSAFE FILE: the only place that turns bytes into a kernel struct and back. `Raw` is a plain C struct
/// (no references; Swift does not infer BitwiseCopyable for those with unions or flexible arrays, so it is not
/// spelled as a constraint) and the byte count is proven equal to its size before a load.
public struct KVMStateBlob<Kind: KVMStateKind>: Sendable, Equatable {
    public let bytes: [UInt8]

    /// Bytes from a snapshot; throws unless there are exactly `MemoryLayout<Kind.Raw>.size` of them.
    public init(bytes: [UInt8]) throws(KVMError) {
        guard bytes.count == Self.size else {
            throw .invalidArgument("saved \(Kind.structName) is \(bytes.count) bytes; this host's is \(Self.size)")
        }
        self.bytes = bytes
    }

    init(_ raw: Kind.Raw) {
        // SAFETY: `raw` is a live value of a plain C struct; its bytes are read once, within the closure.
        bytes = withUnsafeBytes(of: raw) { Array($0) }
    }

    /// The size of the kernel struct on this host.
    public static var size: Int { MemoryLayout<Kind.Raw>.size }

    var raw: Kind.Raw {
        // SAFETY: `init(bytes:)` and `init(_:)` guarantee bytes.count == MemoryLayout<Raw>.size. The bytes are
        // copied into storage aligned for Raw, then loaded; Raw is a plain C struct, so any bit pattern is valid.
        let storage = UnsafeMutableRawPointer.allocate(byteCount: Self.size, alignment: MemoryLayout<Kind.Raw>.alignment)
        defer { storage.deallocate() }
        bytes.withUnsafeBytes { storage.copyMemory(from: $0.baseAddress!, byteCount: Self.size) }
        return storage.load(as: Kind.Raw.self)
    }
}

// The kinds: one per get/set ioctl pair.
public enum RegistersKind: KVMStateKind { public typealias Raw = kvm_regs; public static let structName = "kvm_regs" }
public enum SpecialRegistersKind: KVMStateKind { public typealias Raw = kvm_sregs; public static let structName = "kvm_sregs" }
public enum FPUKind: KVMStateKind { public typealias Raw = kvm_fpu; public static let structName = "kvm_fpu" }
public enum XSAVEKind: KVMStateKind { public typealias Raw = kvm_xsave; public static let structName = "kvm_xsave" }
public enum XCRsKind: KVMStateKind { public typealias Raw = kvm_xcrs; public static let structName = "kvm_xcrs" }
public enum LAPICKind: KVMStateKind { public typealias Raw = kvm_lapic_state; public static let structName = "kvm_lapic_state" }
public enum VCPUEventsKind: KVMStateKind { public typealias Raw = kvm_vcpu_events; public static let structName = "kvm_vcpu_events" }
public enum DebugRegistersKind: KVMStateKind { public typealias Raw = kvm_debugregs; public static let structName = "kvm_debugregs" }
public enum IRQChipKind: KVMStateKind { public typealias Raw = kvm_irqchip; public static let structName = "kvm_irqchip" }
public enum PITKind: KVMStateKind { public typealias Raw = kvm_pit_state2; public static let structName = "kvm_pit_state2" }
public enum ClockKind: KVMStateKind { public typealias Raw = kvm_clock_data; public static let structName = "kvm_clock_data" }

public typealias RegistersState = KVMStateBlob<RegistersKind>
public typealias SpecialRegistersState = KVMStateBlob<SpecialRegistersKind>
public typealias FPUState = KVMStateBlob<FPUKind>
public typealias XSAVEState = KVMStateBlob<XSAVEKind>
public typealias XCRsState = KVMStateBlob<XCRsKind>
public typealias LAPICState = KVMStateBlob<LAPICKind>
public typealias VCPUEventsState = KVMStateBlob<VCPUEventsKind>
public typealias DebugRegistersState = KVMStateBlob<DebugRegistersKind>
public typealias IRQChipState = KVMStateBlob<IRQChipKind>
public typealias PITState = KVMStateBlob<PITKind>
public typealias ClockState = KVMStateBlob<ClockKind>
