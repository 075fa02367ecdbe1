import CKVM
import SystemPackage

/// The in-kernel interrupt controllers KVM_GET_IRQCHIP can read (struct kvm_irqchip's `chip_id`).
public enum IRQChipID: UInt32, Sendable, CaseIterable {
    case picMaster = 0
    case picSlave = 1
    case ioapic = 2

    public var name: String {
        switch self {
        case .picMaster: return "PIC master"
        case .picSlave: return "PIC slave"
        case .ioapic: return "IOAPIC"
        }
    }
}

/// The VM-wide state ioctls (Documentation/virt/kvm/api.rst, section 4), one small method each.
extension VirtualMachine {
    /// KVM_GET_IRQCHIP for one of the in-kernel 8259 PICs or the IOAPIC (needs KVM_CREATE_IRQCHIP).
    public func irqchip(_ chip: IRQChipID) throws(KVMError) -> IRQChipState {
        var raw = kvm_irqchip()
        raw.chip_id = chip.rawValue
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_IRQCHIP, &raw, "KVM_GET_IRQCHIP")
        return IRQChipState(raw)
    }

    /// KVM_SET_IRQCHIP; the chip is the one the state names (its `chip_id`), checked against `chip`.
    public func setIRQChip(_ chip: IRQChipID, _ state: IRQChipState) throws(KVMError) {
        var raw = state.raw
        guard raw.chip_id == chip.rawValue else {
            throw .invalidArgument("saved \(chip.name) state names chip \(raw.chip_id)")
        }
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_IRQCHIP, &raw, "KVM_SET_IRQCHIP")
    }

    /// KVM_GET_PIT2: the in-kernel 8254's three channels (needs KVM_CREATE_PIT2).
    public func pitState() throws(KVMError) -> PITState {
        var raw = kvm_pit_state2()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_PIT2, &raw, "KVM_GET_PIT2")
        return PITState(raw)
    }

    /// KVM_SET_PIT2.
    public func setPITState(_ state: PITState) throws(KVMError) {
        var raw = state.raw
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_PIT2, &raw, "KVM_SET_PIT2")
    }

    /// KVM_GET_CLOCK: the kvm-clock's current value (nanoseconds) and flags.
    public func clock() throws(KVMError) -> ClockState {
        var raw = kvm_clock_data()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_CLOCK, &raw, "KVM_GET_CLOCK")
        return ClockState(raw)
    }

    /// KVM_SET_CLOCK to the saved value plus `advance` nanoseconds (0: the guest's clock continues from where it was
    /// saved, as if no time had passed). The flags KVM reported (TSC_STABLE, REALTIME, HOST_TSC) are cleared: with
    /// KVM_CLOCK_REALTIME set KVM would advance the clock itself, and only hosts with a TSC clocksource report the
    /// wall time it needs, so the caller computes the advance instead.
    public func setClock(_ state: ClockState, advancedBy advance: UInt64 = 0) throws(KVMError) {
        var raw = state.raw
        raw.flags = 0
        raw.clock &+= advance
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_CLOCK, &raw, "KVM_SET_CLOCK")
    }

    /// The kvm-clock value a `ClockState` holds, in nanoseconds.
    public static func nanoseconds(of state: ClockState) -> UInt64 { state.raw.clock }
}

extension KVMSystem {
    /// KVM_GET_MSR_INDEX_LIST: the MSRs KVM can save and restore for a guest (the ones a snapshot carries).
    public func msrIndexList() throws(KVMError) -> [UInt32] {
        var list = ckvm_msr_list()
        list.nmsrs = UInt32(CKVM_MAX_MSR_INDICES)
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_MSR_INDEX_LIST, &list, "KVM_GET_MSR_INDEX_LIST")
        let count = min(Int(list.nmsrs), Int(CKVM_MAX_MSR_INDICES))
        return withUnsafeBytes(of: list.indices) { Array($0.bindMemory(to: UInt32.self).prefix(count)) }
    }
}
