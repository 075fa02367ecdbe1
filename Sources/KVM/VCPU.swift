import CKVM
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// One virtual CPU: its registers, CPUID, MSRs, local APIC, and KVM_RUN.
///
/// Threading: a vCPU is driven by one thread at a time (its vCPU thread). `requestImmediateExit` is the one
/// method other threads may call, to make a running or about-to-run KVM_RUN return.
public final class VCPU: @unchecked Sendable {
    public let id: UInt32
    let fd: FileDescriptor
    let runPage: RunPage

    init(id: UInt32, fd: FileDescriptor, runPage: RunPage) {
        self.id = id
        self.fd = fd
        self.runPage = runPage
    }

    deinit { try? fd.close() }

    // MARK: Running

    /// KVM_RUN until the next exit. EINTR (a kick) is reported as `.interrupted`, not retried: the caller
    /// decides whether to stop.
    @inline(__always)
    public func run() throws(KVMError) -> VCPUExit {
        if ckvm_ioctl_none(fd.rawValue, CKVM_RUN) < 0 {
            let error = Errno(rawValue: errno)
            if error == .interrupted || error == .resourceTemporarilyUnavailable { return .interrupted }
            throw .ioctlFailed(name: "KVM_RUN", errno: error)
        }
        return runPage.decodeExit()
    }

    /// Makes KVM_RUN return `.interrupted` at its next entry; pair with a signal to the vCPU thread to
    /// interrupt one already inside the guest.
    public func requestImmediateExit(_ on: Bool = true) { runPage.setImmediateExit(on) }

    /// Element `index` of the data of the current `.portOut` exit.
    @inline(__always)
    public func portOutValue(index: Int, size: Int) -> UInt64 { runPage.portOutValue(index: index, size: size) }

    /// Answers element `index` of the current `.portIn` exit.
    @inline(__always)
    public func setPortInValue(_ value: UInt64, index: Int, size: Int) { runPage.setPortInValue(value, index: index, size: size) }

    /// Answers the current `.mmioRead` exit.
    @inline(__always)
    public func setMMIOReadValue(_ value: UInt64, length: Int) { runPage.setMMIOReadValue(value, length: length) }

    // MARK: Registers

    public func registers() throws(KVMError) -> Registers {
        var regs = kvm_regs()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_REGS, &regs, "KVM_GET_REGS")
        return Registers(regs)
    }

    public func setRegisters(_ registers: Registers) throws(KVMError) {
        var regs = registers.kvm
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_REGS, &regs, "KVM_SET_REGS")
    }

    public func specialRegisters() throws(KVMError) -> SpecialRegisters {
        var sregs = kvm_sregs()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_SREGS, &sregs, "KVM_GET_SREGS")
        return SpecialRegisters(sregs)
    }

    public func setSpecialRegisters(_ registers: SpecialRegisters) throws(KVMError) {
        var sregs = registers.kvm
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_SREGS, &sregs, "KVM_SET_SREGS")
    }

    /// KVM_SET_CPUID2.
    public func setCPUID(_ entries: [CPUIDEntry]) throws(KVMError) {
        var table = try CPUIDEntry.encode(entries)
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_CPUID2, &table, "KVM_SET_CPUID2")
    }

    /// Sets every MSR the host takes and returns the indices it refused, in order.
    public func setMSRsSkippingRefused(_ msrs: [(index: UInt32, value: UInt64)]) throws(KVMError) -> [UInt32] {
        var refused: [UInt32] = []
        try Self.walkMSRBatches(msrs, handle: { (batch) throws(KVMError) in try setLeadingMSRs(batch) },
                                refused: { refused.append($0.index) })
        return refused
    }

    /// KVM_GET_MSRS and KVM_SET_MSRS work through their list in order, stop at the first MSR they refuse and say how
    /// many came before it. This walks `items` in batches of at most CKVM_MAX_MSR_ENTRIES: `handle` does one call
    /// and returns how many items from the batch's start it got through; the item after those is given to `refused`
    /// and skipped, and the walk goes on after it. One call more per refused MSR (nested hosts refuse a few), not
    /// one call per MSR.
    static func walkMSRBatches<Item, Failure: Error>(_ items: [Item], handle: (ArraySlice<Item>) throws(Failure) -> Int,
                                                     refused: (Item) -> Void) throws(Failure) {
        var rest = items[...]
        while !rest.isEmpty {
            let batch = rest.prefix(Int(CKVM_MAX_MSR_ENTRIES))
            let done = min(max(try handle(batch), 0), batch.count)
            rest = rest.dropFirst(done)
            if done < batch.count, let first = rest.first {
                refused(first)
                rest = rest.dropFirst()
            }
        }
    }

    /// One KVM_SET_MSRS of up to CKVM_MAX_MSR_ENTRIES entries; returns how many KVM set, from the first on.
    private func setLeadingMSRs(_ msrs: ArraySlice<(index: UInt32, value: UInt64)>) throws(KVMError) -> Int {
        guard msrs.count <= Int(CKVM_MAX_MSR_ENTRIES) else { throw .invalidArgument("too many MSRs (\(msrs.count))") }
        var list = ckvm_msrs()
        list.nmsrs = UInt32(msrs.count)
        withUnsafeMutableBytes(of: &list.entries) { raw in
            let slots = raw.bindMemory(to: kvm_msr_entry.self)
            for (i, msr) in msrs.enumerated() { slots[i] = kvm_msr_entry(index: msr.index, reserved: 0, data: msr.value) }
        }
        let written = try Ioctl.pointer(fd.rawValue, CKVM_SET_MSRS, &list, "KVM_SET_MSRS")
        return min(max(Int(written), 0), msrs.count)
    }

    /// KVM_GET_MSRS for the given indices; MSRs KVM does not know are left out of the result.
    public func msrs(_ indices: [UInt32]) throws(KVMError) -> [UInt32: UInt64] {
        guard indices.count <= Int(CKVM_MAX_MSR_ENTRIES) else { throw .invalidArgument("too many MSRs (\(indices.count))") }
        var list = ckvm_msrs()
        list.nmsrs = UInt32(indices.count)
        withUnsafeMutableBytes(of: &list.entries) { raw in
            let slots = raw.bindMemory(to: kvm_msr_entry.self)
            for (i, index) in indices.enumerated() { slots[i] = kvm_msr_entry(index: index, reserved: 0, data: 0) }
        }
        let read = Int(try Ioctl.pointer(fd.rawValue, CKVM_GET_MSRS, &list, "KVM_GET_MSRS"))
        var result: [UInt32: UInt64] = [:]
        withUnsafeBytes(of: list.entries) { raw in
            let slots = raw.bindMemory(to: kvm_msr_entry.self)
            for i in 0..<min(read, indices.count) { result[slots[i].index] = slots[i].data }
        }
        return result
    }

    /// KVM_SET_FPU with the x87 control word and MXCSR a CPU has after reset (FNINIT state: 0x37F, 0x1F80).
    public func resetFPU() throws(KVMError) {
        var fpu = kvm_fpu()
        fpu.fcw = 0x37F
        fpu.mxcsr = 0x1F80
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_FPU, &fpu, "KVM_SET_FPU")
    }

    /// Programs the local APIC's LINT0 as ExtINT (the 8259 PIC's output) and LINT1 as NMI, as a PC BIOS
    /// leaves them: Linux relies on this "virtual wire" mode until it sets up the IOAPIC.
    public func configureLocalInterruptPins() throws(KVMError) {
        var lapic = kvm_lapic_state()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_LAPIC, &lapic, "KVM_GET_LAPIC")
        let lvtLINT0 = 0x350, lvtLINT1 = 0x360
        let extINT: UInt32 = 0x7 << 8, nmi: UInt32 = 0x4 << 8
        withUnsafeMutableBytes(of: &lapic.regs) { raw in
            for (offset, mode) in [(lvtLINT0, extINT), (lvtLINT1, nmi)] {
                let current = raw.load(fromByteOffset: offset, as: UInt32.self)
                // Delivery mode is bits 8-10; keep the rest (mask bit, vector) as KVM initialised it.
                raw.storeBytes(of: (current & ~0x700) | mode, toByteOffset: offset, as: UInt32.self)
            }
        }
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_LAPIC, &lapic, "KVM_SET_LAPIC")
    }

    /// Injects an exception on the next entry (KVM_SET_VCPU_EVENTS), e.g. #BP after completing an int3.
    public func inject(_ exception: ExceptionInjection) throws(KVMError) {
        var events = kvm_vcpu_events()
        _ = try Ioctl.pointer(fd.rawValue, CKVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS")
        events.exception.injected = 1
        events.exception.nr = exception.vector
        events.exception.has_error_code = exception.errorCode == nil ? 0 : 1
        events.exception.error_code = exception.errorCode ?? 0
        events.flags = 0
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_VCPU_EVENTS, &events, "KVM_SET_VCPU_EVENTS")
    }

    /// KVM_TRANSLATE: guest-virtual to guest-physical through the vCPU's current page tables.
    public func translate(_ linearAddress: UInt64) throws(KVMError) -> UInt64? {
        var request = kvm_translation()
        request.linear_address = linearAddress
        _ = try Ioctl.pointer(fd.rawValue, CKVM_TRANSLATE, &request, "KVM_TRANSLATE")
        return request.valid != 0 ? request.physical_address : nil
    }
}
