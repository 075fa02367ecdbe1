/// The register state a vCPU must start in, in Boot's own types. The fields mirror KVM's `kvm_segment`,
/// `kvm_dtable`, `kvm_regs` and `kvm_sregs` one to one, so the VMM translates without interpretation;
/// Boot itself knows nothing about KVM.

/// One segment register with its hidden descriptor cache (kvm_segment). Flag fields are 0 or 1, except
/// `dpl` (0–3) and `type` (the 4-bit descriptor type).
public struct SegmentState: Equatable, Sendable {
    public var base: UInt64
    public var limit: UInt32
    public var selector: UInt16
    public var type: UInt8
    public var present: UInt8
    public var dpl: UInt8
    /// D/B: 32-bit default operand size (code) or 32-bit stack (data).
    public var db: UInt8
    /// 1 for code/data, 0 for system segments (TSS, LDT).
    public var s: UInt8
    /// 64-bit code segment.
    public var l: UInt8
    /// Granularity: the limit counts 4 KiB pages.
    public var g: UInt8
    public var avl: UInt8
    /// KVM's "unusable" flag (a null selector loaded, or an LDT that is not there).
    public var unusable: UInt8

    public init(base: UInt64, limit: UInt32, selector: UInt16, type: UInt8, present: UInt8, dpl: UInt8,
                db: UInt8, s: UInt8, l: UInt8, g: UInt8, avl: UInt8, unusable: UInt8 = 0) {
        self.base = base
        self.limit = limit
        self.selector = selector
        self.type = type
        self.present = present
        self.dpl = dpl
        self.db = db
        self.s = s
        self.l = l
        self.g = g
        self.avl = avl
        self.unusable = unusable
    }

    /// No LDT: selector 0, marked unusable (VM entry then skips the LDTR checks).
    public static let noLDT = SegmentState(base: 0, limit: 0, selector: 0, type: 2, present: 0, dpl: 0,
                                           db: 0, s: 0, l: 0, g: 0, avl: 0, unusable: 1)
}

/// GDTR or IDTR (kvm_dtable).
public struct DescriptorTableState: Equatable, Sendable {
    public var base: UInt64
    public var limit: UInt16

    public init(base: UInt64, limit: UInt16) {
        self.base = base
        self.limit = limit
    }
}

/// Everything the VMM sets before the first KVM_RUN. General-purpose registers not listed are 0.
public struct InitialCPUState: Equatable, Sendable {
    public var rip: UInt64
    public var rsp: UInt64
    /// Linux 64-bit entry: the zero page.
    public var rsi: UInt64
    /// PVH entry: the hvm_start_info structure.
    public var rbx: UInt64
    public var rflags: UInt64
    public var cr0: UInt64
    public var cr3: UInt64
    public var cr4: UInt64
    public var efer: UInt64
    public var cs: SegmentState
    public var ds: SegmentState
    public var es: SegmentState
    public var fs: SegmentState
    public var gs: SegmentState
    public var ss: SegmentState
    public var tr: SegmentState
    public var ldt: SegmentState
    public var gdt: DescriptorTableState
    public var idt: DescriptorTableState

    public init(rip: UInt64, rsp: UInt64, rsi: UInt64, rbx: UInt64, rflags: UInt64, cr0: UInt64, cr3: UInt64, cr4: UInt64,
                efer: UInt64, cs: SegmentState, ds: SegmentState, es: SegmentState, fs: SegmentState, gs: SegmentState,
                ss: SegmentState, tr: SegmentState, ldt: SegmentState, gdt: DescriptorTableState, idt: DescriptorTableState) {
        self.rip = rip; self.rsp = rsp; self.rsi = rsi; self.rbx = rbx; self.rflags = rflags
        self.cr0 = cr0; self.cr3 = cr3; self.cr4 = cr4; self.efer = efer
        self.cs = cs; self.ds = ds; self.es = es; self.fs = fs; self.gs = gs; self.ss = ss; self.tr = tr; self.ldt = ldt
        self.gdt = gdt; self.idt = idt
    }
}

/// Control register and MSR bits (Intel SDM Vol. 3A, 2.5 "Control Registers"; EFER: 2.2.1).
public enum X86 {
    public enum CR0 {
        public static let pe: UInt64 = 1 << 0     // protected mode
        public static let mp: UInt64 = 1 << 1
        public static let et: UInt64 = 1 << 4     // hard-wired to 1 since the 486; set so the value reads true
        public static let ne: UInt64 = 1 << 5     // x87 errors as #MF, not through the legacy IRQ 13
        public static let wp: UInt64 = 1 << 16
        public static let nw: UInt64 = 1 << 29
        public static let cd: UInt64 = 1 << 30
        public static let pg: UInt64 = 1 << 31    // paging
    }

    public enum CR4 {
        public static let pae: UInt64 = 1 << 5
    }

    public enum EFER {
        public static let sce: UInt64 = 1 << 0
        public static let lme: UInt64 = 1 << 8    // long mode enable
        public static let lma: UInt64 = 1 << 10   // long mode active (what the CPU would set once PG is on)
        public static let nxe: UInt64 = 1 << 11
    }

    public enum RFLAGS {
        /// Bit 1 always reads as 1.
        public static let reserved1: UInt64 = 1 << 1
        public static let interrupt: UInt64 = 1 << 9
        /// I/O privilege level 3: `in`/`out`/`cli`/`sti` allowed at any CPL.
        public static let iopl3: UInt64 = 3 << 12
    }
}
