/// Why KVM_RUN returned, decoded from the kvm_run page (Documentation/virt/kvm/api.rst, "The kvm_run structure").
/// The common cases carry only integers, so decoding them allocates nothing.
public enum VCPUExit: Equatable, Sendable {
    /// KVM_EXIT_IO, direction in: the guest read `size` bytes from `port`, `count` times (rep ins).
    /// Answer with `VCPU.setPortInValue` before the next run.
    case portIn(port: UInt16, size: Int, count: Int)
    /// KVM_EXIT_IO, direction out: values via `VCPU.portOutValue(index:)`.
    case portOut(port: UInt16, size: Int, count: Int)
    /// KVM_EXIT_MMIO read of `length` bytes; answer with `VCPU.setMMIOReadValue` before the next run.
    case mmioRead(address: UInt64, length: Int)
    /// KVM_EXIT_MMIO write; `value` holds the `length` bytes written, little-endian.
    case mmioWrite(address: UInt64, length: Int, value: UInt64)
    /// KVM_EXIT_HLT: only seen without an in-kernel local APIC (with one, KVM waits for the interrupt itself).
    case halt
    /// KVM_EXIT_SHUTDOWN: the vCPU triple-faulted (or otherwise entered the shutdown state).
    case shutdown
    /// KVM_EXIT_SYSTEM_EVENT: the guest asked for a power-off, reset or reported a crash (PSCI, Hyper-V, ...).
    case systemEvent(SystemEvent)
    /// KVM_EXIT_INTERNAL_ERROR: KVM could not continue (e.g. an instruction it cannot emulate).
    case internalError(InternalError)
    /// KVM_EXIT_FAIL_ENTRY: the hardware refused to enter the guest (invalid guest state).
    case failEntry(hardwareReason: UInt64, cpu: UInt32)
    /// KVM_RUN returned EINTR (a signal kicked this vCPU, or immediate_exit was set), or KVM_EXIT_INTR.
    case interrupted
    /// KVM_EXIT_DEBUG: a breakpoint or single step set with KVM_SET_GUEST_DEBUG.
    case debug(exception: UInt32, pc: UInt64)
    /// KVM_EXIT_UNKNOWN with the hardware's own exit reason.
    case unknown(hardwareReason: UInt64)
    /// Any exit reason this VMM does not decode, by number.
    case unhandled(reason: UInt32)

    public enum SystemEvent: Equatable, Sendable {
        case shutdown, reset, crash
        case other(UInt32)
    }

    public struct InternalError: Equatable, Sendable {
        /// KVM_INTERNAL_ERROR_EMULATION (1), _SIMUL_EX (2), _DELIVERY_EV (3), _UNEXPECTED_EXIT_REASON (4).
        public var suberror: UInt32
        /// The `internal.data` words KVM filled in.
        public var data: [UInt64]

        public init(suberror: UInt32, data: [UInt64]) { self.suberror = suberror; self.data = data }

        /// For an emulation failure with instruction bytes (data[0] bit 0 set): the bytes of the instruction
        /// KVM could not emulate. Layout: data[0] flags, then from byte 8 one length byte and up to 15 bytes.
        public var instructionBytes: [UInt8]? {
            guard suberror == 1, let flags = data.first, flags & 1 == 1, data.count >= 3 else { return nil }
            var bytes: [UInt8] = []
            for word in data.dropFirst() { for shift in stride(from: 0, to: 64, by: 8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) } }
            let length = Int(bytes[0])
            guard length > 0, length <= 15, length < bytes.count else { return nil }
            return Array(bytes[1...length])
        }
    }
}
