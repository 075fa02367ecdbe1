/// Model-specific registers set on every vCPU before it first runs, as firmware would leave them.
enum BootMSRs {
    static let sysenterCS: UInt32 = 0x174, sysenterESP: UInt32 = 0x175, sysenterEIP: UInt32 = 0x176
    static let star: UInt32 = 0xC000_0081, lstar: UInt32 = 0xC000_0082, cstar: UInt32 = 0xC000_0083
    static let syscallMask: UInt32 = 0xC000_0084, kernelGSBase: UInt32 = 0xC000_0102
    static let tsc: UInt32 = 0x10
    static let miscEnable: UInt32 = 0x1A0
    static let mtrrDefType: UInt32 = 0x2FF

    /// IA32_MISC_ENABLE bit 0: fast string operations, which Linux expects firmware to have turned on.
    static let fastStrings: UInt64 = 1
    /// MTRRdefType: MTRRs enabled (bit 11), default memory type write-back (6). Without it Linux maps all RAM
    /// uncached and runs far slower.
    static let mtrrWriteBackDefault: UInt64 = (1 << 11) | 6

    static var entries: [(index: UInt32, value: UInt64)] {
        [(sysenterCS, 0), (sysenterESP, 0), (sysenterEIP, 0), (star, 0), (lstar, 0), (cstar, 0), (syscallMask, 0),
         (kernelGSBase, 0), (tsc, 0), (miscEnable, fastStrings), (mtrrDefType, mtrrWriteBackDefault)]
    }
}
