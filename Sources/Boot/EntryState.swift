import GuestMemory

extension InitialCPUState {
    /// CR0 for the 64-bit entries: protected mode and paging, ET (hard-wired anyway) and NE (native x87
    /// error reporting, what Linux sets itself). CD and NW stay clear: caches on. (Firecracker ORs PE|PG into
    /// KVM's reset value and so keeps CD|NW set until the kernel rewrites CR0; we start from a clean value.)
    public static let longModeCR0 = X86.CR0.pe | X86.CR0.et | X86.CR0.ne | X86.CR0.pg

    /// 64-bit mode with paging on, as the Linux 64-bit boot protocol and tiny test guests want it: GDT,
    /// empty IDT, TSS and identity-mapping page tables written at their `BootLayout` addresses.
    ///
    /// With `userMode`, the guest starts at CPL 3: CS = 0x43 and SS/DS/ES/FS/GS = 0x3b (DPL 3 descriptors),
    /// every page-table level has U/S set, and RFLAGS.IOPL = 3 so that `in`/`out` still reach the VMM as
    /// port I/O exits (without it they would fault, as the TSS has no I/O permission bitmap). The TSS's
    /// RSP0 (`BootLayout.ring0StackTop`) gives an exception at CPL 3 a stack; since the IDT is empty, such an
    /// exception still ends in a triple fault (a shutdown exit) — which is what a test wants to see.
    /// On this project's PVM hosts CPL 3 code runs natively, while CPL 0 code is emulated.
    public static func longModeState(entry: GuestAddress, stack: GuestAddress, in memory: GuestMemory,
                                     userMode: Bool) throws(BootError) -> InitialCPUState {
        try BootGDT.write(to: memory)
        let cr3 = try BootPageTables.write(to: memory, userAccessible: userMode)
        let code = userMode ? BootGDT.userCode64.segmentState(selector: BootGDT.userCodeSelector)
                            : BootGDT.code64.segmentState(selector: BootGDT.bootCodeSelector)
        let data = userMode ? BootGDT.userData.segmentState(selector: BootGDT.userDataSelector)
                            : BootGDT.data.segmentState(selector: BootGDT.bootDataSelector)
        return InitialCPUState(
            rip: entry.rawValue, rsp: stack.rawValue, rsi: 0, rbx: 0,
            rflags: X86.RFLAGS.reserved1 | (userMode ? X86.RFLAGS.iopl3 : 0),
            cr0: longModeCR0, cr3: cr3, cr4: X86.CR4.pae, efer: X86.EFER.lme | X86.EFER.lma,
            cs: code, ds: data, es: data, fs: data, gs: data, ss: data,
            tr: BootGDT.tss.segmentState(selector: BootGDT.tssSelector), ldt: .noLDT,
            gdt: BootGDT.gdtr, idt: BootGDT.idtr)
    }

    /// The Linux 64-bit boot protocol (boot.rst, "64-bit BOOT PROTOCOL"): long mode, paging on with the
    /// kernel, zero page and command line identity-mapped, CS = __BOOT_CS (0x10), DS/ES/SS = __BOOT_DS
    /// (0x18), interrupts off, RSI = the zero page. `entry` is startup_64: a vmlinux's ELF entry, or a
    /// bzImage's load address + 0x200.
    public static func linux64(entry: GuestAddress, zeroPage: GuestAddress = BootLayout.zeroPage,
                               in memory: GuestMemory) throws(BootError) -> InitialCPUState {
        var state = try longModeState(entry: entry, stack: BootLayout.bootStackTop, in: memory, userMode: false)
        state.rsi = zeroPage.rawValue
        return state
    }

    /// The PVH entry (Xen's docs/misc/pvh.pandoc, which Linux's pvh_start_xen follows): 32-bit protected
    /// mode, paging off; CS a flat 32-bit execute/read segment, DS/ES/SS flat read/write, TR a 32-bit TSS;
    /// CR0 = PE (ET reads as 1), CR4 = 0, EFER = 0; EBX = the hvm_start_info address; interrupts off.
    public static func pvh32(entry: GuestAddress, startInfo: GuestAddress = BootLayout.pvhStartInfo,
                             in memory: GuestMemory) throws(BootError) -> InitialCPUState {
        try BootGDT.write(to: memory)
        let code = BootGDT.code32.segmentState(selector: BootGDT.code32Selector)
        let data = BootGDT.data.segmentState(selector: BootGDT.bootDataSelector)
        return InitialCPUState(
            rip: entry.rawValue, rsp: 0, rsi: 0, rbx: startInfo.rawValue, rflags: X86.RFLAGS.reserved1,
            cr0: X86.CR0.pe | X86.CR0.et, cr3: 0, cr4: 0, efer: 0,
            cs: code, ds: data, es: data, fs: data, gs: data, ss: data,
            tr: BootGDT.tss.segmentState(selector: BootGDT.tssSelector), ldt: .noLDT,
            gdt: BootGDT.gdtr, idt: BootGDT.idtr)
    }
}
