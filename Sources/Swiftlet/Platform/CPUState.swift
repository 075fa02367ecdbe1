import Boot
import KVM

/// Translates the loader's entry state (Boot's own value types, which know nothing of KVM) into KVM's
/// register structures, field by field.
enum CPUState {
    static func apply(_ state: InitialCPUState, to vcpu: VCPU) throws(KVMError) {
        var sregs = try vcpu.specialRegisters()
        sregs.cs = segment(state.cs); sregs.ds = segment(state.ds); sregs.es = segment(state.es)
        sregs.fs = segment(state.fs); sregs.gs = segment(state.gs); sregs.ss = segment(state.ss)
        sregs.tr = segment(state.tr); sregs.ldt = segment(state.ldt)
        sregs.gdt = DescriptorTable(base: state.gdt.base, limit: state.gdt.limit)
        sregs.idt = DescriptorTable(base: state.idt.base, limit: state.idt.limit)
        sregs.cr0 = state.cr0; sregs.cr3 = state.cr3; sregs.cr4 = state.cr4; sregs.efer = state.efer
        try vcpu.setSpecialRegisters(sregs)

        var regs = Registers()
        regs.rip = state.rip; regs.rsp = state.rsp; regs.rsi = state.rsi; regs.rbx = state.rbx
        regs.rflags = state.rflags | 2
        try vcpu.setRegisters(regs)
    }

    private static func segment(_ s: SegmentState) -> Segment {
        Segment(base: s.base, limit: s.limit, selector: s.selector, type: s.type, present: s.present, dpl: s.dpl,
                db: s.db, s: s.s, l: s.l, g: s.g, avl: s.avl, unusable: s.unusable)
    }

    /// 16-bit real mode with CS = DS = ES = SS = 0, entered at `rip`: where a raw test image starts.
    static func realMode(rip: UInt64, stack: UInt64) -> InitialCPUState {
        // Real-mode segments: base = selector << 4, 64 KiB limit, present, read/write (data 0x3, code 0xb).
        let code = SegmentState(base: 0, limit: 0xFFFF, selector: 0, type: 0xB, present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0)
        let data = SegmentState(base: 0, limit: 0xFFFF, selector: 0, type: 0x3, present: 1, dpl: 0, db: 0, s: 1, l: 0, g: 0, avl: 0)
        let tss = SegmentState(base: 0, limit: 0xFFFF, selector: 0, type: 0xB, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0)
        let ldt = SegmentState(base: 0, limit: 0xFFFF, selector: 0, type: 0x2, present: 1, dpl: 0, db: 0, s: 0, l: 0, g: 0, avl: 0)
        return InitialCPUState(rip: rip, rsp: stack, rsi: 0, rbx: 0, rflags: 2, cr0: 0x6000_0010, cr3: 0, cr4: 0, efer: 0,
                               cs: code, ds: data, es: data, fs: data, gs: data, ss: data, tr: tss, ldt: ldt,
                               gdt: DescriptorTableState(base: 0, limit: 0xFFFF), idt: DescriptorTableState(base: 0, limit: 0x3FF))
    }
}
