import CKVM

/// General-purpose registers (struct kvm_regs), as plain Swift values.
public struct Registers: Equatable, Sendable {
    public var rax: UInt64 = 0, rbx: UInt64 = 0, rcx: UInt64 = 0, rdx: UInt64 = 0
    public var rsi: UInt64 = 0, rdi: UInt64 = 0, rsp: UInt64 = 0, rbp: UInt64 = 0
    public var r8: UInt64 = 0, r9: UInt64 = 0, r10: UInt64 = 0, r11: UInt64 = 0
    public var r12: UInt64 = 0, r13: UInt64 = 0, r14: UInt64 = 0, r15: UInt64 = 0
    public var rip: UInt64 = 0
    /// Bit 1 is reserved and must be set.
    public var rflags: UInt64 = 2

    public init() {}

    init(_ r: kvm_regs) {
        rax = r.rax; rbx = r.rbx; rcx = r.rcx; rdx = r.rdx; rsi = r.rsi; rdi = r.rdi; rsp = r.rsp; rbp = r.rbp
        r8 = r.r8; r9 = r.r9; r10 = r.r10; r11 = r.r11; r12 = r.r12; r13 = r.r13; r14 = r.r14; r15 = r.r15
        rip = r.rip; rflags = r.rflags
    }

    var kvm: kvm_regs {
        kvm_regs(rax: rax, rbx: rbx, rcx: rcx, rdx: rdx, rsi: rsi, rdi: rdi, rsp: rsp, rbp: rbp,
                 r8: r8, r9: r9, r10: r10, r11: r11, r12: r12, r13: r13, r14: r14, r15: r15, rip: rip, rflags: rflags)
    }
}

/// A segment register's hidden state (struct kvm_segment).
public struct Segment: Equatable, Sendable {
    public var base: UInt64 = 0
    public var limit: UInt32 = 0
    public var selector: UInt16 = 0
    public var type: UInt8 = 0
    public var present: UInt8 = 0, dpl: UInt8 = 0, db: UInt8 = 0, s: UInt8 = 0, l: UInt8 = 0, g: UInt8 = 0, avl: UInt8 = 0
    public var unusable: UInt8 = 0

    public init(base: UInt64 = 0, limit: UInt32 = 0, selector: UInt16 = 0, type: UInt8 = 0, present: UInt8 = 0, dpl: UInt8 = 0,
                db: UInt8 = 0, s: UInt8 = 0, l: UInt8 = 0, g: UInt8 = 0, avl: UInt8 = 0, unusable: UInt8 = 0) {
        self.base = base; self.limit = limit; self.selector = selector; self.type = type; self.present = present
        self.dpl = dpl; self.db = db; self.s = s; self.l = l; self.g = g; self.avl = avl; self.unusable = unusable
    }

    init(_ s: kvm_segment) {
        self.init(base: s.base, limit: s.limit, selector: s.selector, type: s.type, present: s.present, dpl: s.dpl,
                  db: s.db, s: s.s, l: s.l, g: s.g, avl: s.avl, unusable: s.unusable)
    }

    var kvm: kvm_segment {
        kvm_segment(base: base, limit: limit, selector: selector, type: type, present: present, dpl: dpl, db: db,
                    s: s, l: l, g: g, avl: avl, unusable: unusable, padding: 0)
    }
}

/// A descriptor-table register (GDTR/IDTR).
public struct DescriptorTable: Equatable, Sendable {
    public var base: UInt64 = 0
    public var limit: UInt16 = 0
    public init(base: UInt64 = 0, limit: UInt16 = 0) { self.base = base; self.limit = limit }
}

/// Segment, control and descriptor-table registers (struct kvm_sregs).
public struct SpecialRegisters: Equatable, Sendable {
    public var cs = Segment(), ds = Segment(), es = Segment(), fs = Segment(), gs = Segment(), ss = Segment()
    public var tr = Segment(), ldt = Segment()
    public var gdt = DescriptorTable(), idt = DescriptorTable()
    public var cr0: UInt64 = 0, cr2: UInt64 = 0, cr3: UInt64 = 0, cr4: UInt64 = 0, cr8: UInt64 = 0
    public var efer: UInt64 = 0
    public var apicBase: UInt64 = 0
    /// Pending external interrupt bitmap; preserved as KVM reported it.
    var interruptBitmap: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public init() {}

    init(_ r: kvm_sregs) {
        cs = Segment(r.cs); ds = Segment(r.ds); es = Segment(r.es); fs = Segment(r.fs); gs = Segment(r.gs); ss = Segment(r.ss)
        tr = Segment(r.tr); ldt = Segment(r.ldt)
        gdt = DescriptorTable(base: r.gdt.base, limit: r.gdt.limit)
        idt = DescriptorTable(base: r.idt.base, limit: r.idt.limit)
        cr0 = r.cr0; cr2 = r.cr2; cr3 = r.cr3; cr4 = r.cr4; cr8 = r.cr8; efer = r.efer; apicBase = r.apic_base
        interruptBitmap = r.interrupt_bitmap
    }

    var kvm: kvm_sregs {
        var r = kvm_sregs()
        r.cs = cs.kvm; r.ds = ds.kvm; r.es = es.kvm; r.fs = fs.kvm; r.gs = gs.kvm; r.ss = ss.kvm; r.tr = tr.kvm; r.ldt = ldt.kvm
        r.gdt.base = gdt.base; r.gdt.limit = gdt.limit
        r.idt.base = idt.base; r.idt.limit = idt.limit
        r.cr0 = cr0; r.cr2 = cr2; r.cr3 = cr3; r.cr4 = cr4; r.cr8 = cr8; r.efer = efer; r.apic_base = apicBase
        r.interrupt_bitmap = interruptBitmap
        return r
    }

    public static func == (a: SpecialRegisters, b: SpecialRegisters) -> Bool {
        a.cs == b.cs && a.ds == b.ds && a.es == b.es && a.fs == b.fs && a.gs == b.gs && a.ss == b.ss && a.tr == b.tr
            && a.ldt == b.ldt && a.gdt == b.gdt && a.idt == b.idt && a.cr0 == b.cr0 && a.cr2 == b.cr2 && a.cr3 == b.cr3
            && a.cr4 == b.cr4 && a.cr8 == b.cr8 && a.efer == b.efer && a.apicBase == b.apicBase
    }
}

/// Pending exception/interrupt/NMI state (struct kvm_vcpu_events), reduced to what the VMM injects.
public struct ExceptionInjection: Equatable, Sendable {
    public var vector: UInt8
    public var errorCode: UInt32?
    public init(vector: UInt8, errorCode: UInt32? = nil) { self.vector = vector; self.errorCode = errorCode }
}
