import CKVM
import SystemPackage

/// The get/set ioctl pairs that carry a vCPU's state in and out of KVM, one small method each
/// (Documentation/virt/kvm/api.rst, section 4), and the whole-vCPU save and restore built from them.
extension VCPU {
    // MARK: One method per ioctl

    /// KVM_GET_REGS, whole.
    public func registersState() throws(KVMError) -> RegistersState {
        var raw = kvm_regs()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_REGS, &raw, "KVM_GET_REGS")
        return RegistersState(raw)
    }

    /// KVM_SET_REGS, whole.
    public func setRegistersState(_ state: RegistersState) throws(KVMError) {
        var raw = state.raw
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_REGS, &raw, "KVM_SET_REGS")
    }

    /// KVM_GET_SREGS, whole (with the pending-interrupt bitmap the typed `SpecialRegisters` keeps internal).
    public func specialRegistersState() throws(KVMError) -> SpecialRegistersState {
        var raw = kvm_sregs()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_SREGS, &raw, "KVM_GET_SREGS")
        return SpecialRegistersState(raw)
    }

    /// KVM_SET_SREGS, whole.
    public func setSpecialRegistersState(_ state: SpecialRegistersState) throws(KVMError) {
        var raw = state.raw
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_SREGS, &raw, "KVM_SET_SREGS")
    }

    /// KVM_GET_FPU: x87, MMX and SSE state in FXSAVE's layout.
    public func fpu() throws(KVMError) -> FPUState {
        var raw = kvm_fpu()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_FPU, &raw, "KVM_GET_FPU")
        return FPUState(raw)
    }

    /// KVM_SET_FPU.
    public func setFPU(_ state: FPUState) throws(KVMError) {
        var raw = state.raw
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_FPU, &raw, "KVM_SET_FPU")
    }

    /// KVM_GET_XSAVE: the 4 KiB XSAVE area (x87, SSE, AVX, ... every component the guest's XCR0 enables).
    public func xsave() throws(KVMError) -> XSAVEState {
        var raw = kvm_xsave()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_XSAVE, &raw, "KVM_GET_XSAVE")
        return XSAVEState(raw)
    }

    /// KVM_SET_XSAVE.
    public func setXSAVE(_ state: XSAVEState) throws(KVMError) {
        var raw = state.raw
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_XSAVE, &raw, "KVM_SET_XSAVE")
    }

    /// KVM_GET_XCRS: the extended control registers (XCR0).
    public func xcrs() throws(KVMError) -> XCRsState {
        var raw = kvm_xcrs()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_XCRS, &raw, "KVM_GET_XCRS")
        return XCRsState(raw)
    }

    /// KVM_SET_XCRS.
    public func setXCRs(_ state: XCRsState) throws(KVMError) {
        var raw = state.raw
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_XCRS, &raw, "KVM_SET_XCRS")
    }

    /// KVM_GET_LAPIC: the in-kernel local APIC's 1 KiB register page (needs the in-kernel irqchip).
    public func lapic() throws(KVMError) -> LAPICState {
        var raw = kvm_lapic_state()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_LAPIC, &raw, "KVM_GET_LAPIC")
        return LAPICState(raw)
    }

    /// KVM_SET_LAPIC.
    public func setLAPIC(_ state: LAPICState) throws(KVMError) {
        var raw = state.raw
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_LAPIC, &raw, "KVM_SET_LAPIC")
    }

    /// KVM_GET_VCPU_EVENTS: pending or injected exception, interrupt and NMI, interrupt shadow, SMM state.
    public func vcpuEvents() throws(KVMError) -> VCPUEventsState {
        var raw = kvm_vcpu_events()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_VCPU_EVENTS, &raw, "KVM_GET_VCPU_EVENTS")
        return VCPUEventsState(raw)
    }

    /// KVM_SET_VCPU_EVENTS with the flags KVM reported (they say which of the optional fields are valid).
    public func setVCPUEvents(_ state: VCPUEventsState) throws(KVMError) {
        var raw = state.raw
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_VCPU_EVENTS, &raw, "KVM_SET_VCPU_EVENTS")
    }

    /// KVM_GET_DEBUGREGS: DR0-DR3, DR6, DR7.
    public func debugRegisters() throws(KVMError) -> DebugRegistersState {
        var raw = kvm_debugregs()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_DEBUGREGS, &raw, "KVM_GET_DEBUGREGS")
        return DebugRegistersState(raw)
    }

    /// KVM_SET_DEBUGREGS.
    public func setDebugRegisters(_ state: DebugRegistersState) throws(KVMError) {
        var raw = state.raw
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_DEBUGREGS, &raw, "KVM_SET_DEBUGREGS")
    }

    /// KVM_GET_MP_STATE: runnable (0), uninitialized (1, an AP waiting for INIT/SIPI), INIT received (2), halted (3), ...
    public func mpState() throws(KVMError) -> UInt32 {
        var raw = kvm_mp_state()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_MP_STATE, &raw, "KVM_GET_MP_STATE")
        return raw.mp_state
    }

    /// KVM_SET_MP_STATE.
    public func setMPState(_ state: UInt32) throws(KVMError) {
        var raw = kvm_mp_state(mp_state: state)
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_MP_STATE, &raw, "KVM_SET_MP_STATE")
    }

    /// KVM_GET_TSC_KHZ: the guest's TSC frequency.
    public func tscKHz() throws(KVMError) -> UInt32 {
        UInt32(truncatingIfNeeded: try Ioctl.none(fd.rawValue, CKVM_GET_TSC_KHZ, "KVM_GET_TSC_KHZ"))
    }

    /// KVM_SET_TSC_KHZ (TSC scaling; a host without it accepts only its own frequency).
    public func setTSCKHz(_ khz: UInt32) throws(KVMError) {
        _ = try Ioctl.value(fd.rawValue, CKVM_SET_TSC_KHZ, UInt(khz), "KVM_SET_TSC_KHZ")
    }

    /// KVM_GET_CPUID2: the CPUID table this vCPU was given.
    public func cpuid() throws(KVMError) -> [CPUIDEntry] {
        var table = ckvm_cpuid()
        table.nent = UInt32(CKVM_MAX_CPUID_ENTRIES)
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_CPUID2, &table, "KVM_GET_CPUID2")
        return CPUIDEntry.decode(table)
    }

    // MARK: The whole vCPU

    /// Reads every piece of state KVM gives for this vCPU (the vCPU must be outside KVM_RUN: paused).
    ///
    /// General and special registers are required; every other piece the host refuses (nested hosts refuse
    /// some) is left out and named in `refused`, with its errno. `msrIndices` is the host's saveable list
    /// (`KVMSystem.msrIndexList()`); MSRs KVM will not read are named there too. The LAPIC is read only with
    /// `inKernelIRQChip` (without one there is no LAPIC to read).
    public func saveState(msrIndices: [UInt32], inKernelIRQChip: Bool) throws(KVMError) -> VCPUState {
        var refused: [String] = []
        func optional<T>(_ read: () throws(KVMError) -> T) -> T? {
            do { return try read() } catch { refused.append(error.description); return nil }
        }
        // MP state first: KVM_GET_MP_STATE settles pending INIT/SIPI events the other pieces depend on.
        let mpState = optional { () throws(KVMError) in try self.mpState() }
        let state = VCPUState(
            registers: try registersState(),
            specialRegisters: try specialRegistersState(),
            fpu: optional { () throws(KVMError) in try fpu() },
            xsave: optional { () throws(KVMError) in try xsave() },
            xcrs: optional { () throws(KVMError) in try xcrs() },
            debugRegisters: optional { () throws(KVMError) in try debugRegisters() },
            lapic: inKernelIRQChip ? optional { () throws(KVMError) in try lapic() } : nil,
            events: optional { () throws(KVMError) in try vcpuEvents() },
            mpState: mpState,
            tscKHz: optional { () throws(KVMError) in try tscKHz() },
            cpuid: optional { () throws(KVMError) in try cpuid() } ?? [],
            msrs: readMSRs(msrIndices, refused: &refused),
            refused: refused)
        return state
    }

    /// Reads `indices` in batches (`walkMSRBatches`): an MSR KVM_GET_MSRS refuses is recorded and reading goes on
    /// after it; a batch whose call fails as a whole is recorded and skipped.
    private func readMSRs(_ indices: [UInt32], refused: inout [String]) -> [MSRValue] {
        var values: [MSRValue] = []
        var failures: [String] = []
        Self.walkMSRBatches(indices, handle: { batch in
            let read: [UInt32: UInt64]
            do throws(KVMError) { read = try msrs(Array(batch)) } catch {
                failures.append("\(error.description) for MSRs 0x\(String(batch[batch.startIndex], radix: 16))...")
                return batch.count
            }
            var taken = 0
            for index in batch {
                guard let value = read[index] else { break }
                values.append(MSRValue(index: index, value: value))
                taken += 1
            }
            return taken
        }, refused: { failures.append("MSR 0x\(String($0, radix: 16)) (KVM_GET_MSRS)") })
        refused += failures
        return values
    }

    /// Gives the vCPU the saved state, in the order KVM needs (Firecracker's): TSC frequency, MP state, registers,
    /// special registers, FPU/XSAVE, XCRs, debug registers, LAPIC, MSRs, then events last (they refer to the
    /// state before them). Set CPUID first (`setCPUID`). Returns what the host refused to set but the
    /// guest can live without (MSRs it does not know, a TSC frequency it cannot scale to); a refused register
    /// set throws.
    public func restoreState(_ state: VCPUState) throws(KVMError) -> [String] {
        var refused: [String] = []
        if let khz = state.tscKHz, (try? tscKHz()) != khz {
            do { try setTSCKHz(khz) } catch { refused.append(error.description) }
        }
        if let mpState = state.mpState { try setMPState(mpState) }
        try setRegistersState(state.registers)
        try setSpecialRegistersState(state.specialRegisters)
        if let fpu = state.fpu { try setFPU(fpu) }
        if let xsave = state.xsave { try setXSAVE(xsave) }
        if let xcrs = state.xcrs { try setXCRs(xcrs) }
        if let debug = state.debugRegisters { try setDebugRegisters(debug) }
        if let lapic = state.lapic { try setLAPIC(lapic) }
        // One refused MSR must not cost the rest.
        for index in try setMSRsSkippingRefused(state.msrs.map { ($0.index, $0.value) }) {
            refused.append("MSR 0x\(String(index, radix: 16)) (KVM_SET_MSRS)")
        }
        if let events = state.events { try setVCPUEvents(events) }
        return refused
    }
}

/// One model-specific register and its value.
public struct MSRValue: Sendable, Equatable {
    public var index: UInt32
    public var value: UInt64
    public init(index: UInt32, value: UInt64) { self.index = index; self.value = value }
}

/// Everything KVM holds for one vCPU, as saved by `VCPU.saveState`. Optional pieces are nil when the host
/// refused them (`refused` says why) or, for the LAPIC, when there is no in-kernel irqchip.
public struct VCPUState: Sendable, Equatable {
    public var registers: RegistersState
    public var specialRegisters: SpecialRegistersState
    public var fpu: FPUState?
    public var xsave: XSAVEState?
    public var xcrs: XCRsState?
    public var debugRegisters: DebugRegistersState?
    public var lapic: LAPICState?
    public var events: VCPUEventsState?
    public var mpState: UInt32?
    public var tscKHz: UInt32?
    public var cpuid: [CPUIDEntry]
    public var msrs: [MSRValue]
    /// What the host refused while saving: "KVM_GET_XSAVE failed: ... (errno 95)".
    public var refused: [String]

    public init(registers: RegistersState, specialRegisters: SpecialRegistersState, fpu: FPUState?, xsave: XSAVEState?,
                xcrs: XCRsState?, debugRegisters: DebugRegistersState?, lapic: LAPICState?, events: VCPUEventsState?,
                mpState: UInt32?, tscKHz: UInt32?, cpuid: [CPUIDEntry], msrs: [MSRValue], refused: [String]) {
        self.registers = registers; self.specialRegisters = specialRegisters; self.fpu = fpu; self.xsave = xsave
        self.xcrs = xcrs; self.debugRegisters = debugRegisters; self.lapic = lapic; self.events = events
        self.mpState = mpState; self.tscKHz = tscKHz; self.cpuid = cpuid; self.msrs = msrs; self.refused = refused
    }
}
