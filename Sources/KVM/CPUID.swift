import CKVM

/// One CPUID leaf/subleaf as KVM describes it (struct kvm_cpuid_entry2).
public struct CPUIDEntry: Equatable, Sendable {
    public var function: UInt32
    public var index: UInt32
    /// KVM_CPUID_FLAG_SIGNIFCANT_INDEX (1) when `index` selects a subleaf.
    public var flags: UInt32
    public var eax: UInt32
    public var ebx: UInt32
    public var ecx: UInt32
    public var edx: UInt32

    public init(function: UInt32, index: UInt32 = 0, flags: UInt32 = 0, eax: UInt32 = 0, ebx: UInt32 = 0, ecx: UInt32 = 0, edx: UInt32 = 0) {
        self.function = function; self.index = index; self.flags = flags
        self.eax = eax; self.ebx = ebx; self.ecx = ecx; self.edx = edx
    }

    static func decode(_ table: ckvm_cpuid) -> [CPUIDEntry] {
        let count = min(Int(table.nent), Int(CKVM_MAX_CPUID_ENTRIES))
        return withUnsafeBytes(of: table.entries) { raw in
            let entries = raw.bindMemory(to: kvm_cpuid_entry2.self)
            return (0..<count).map { i in
                let e = entries[i]
                return CPUIDEntry(function: e.function, index: e.index, flags: e.flags, eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx)
            }
        }
    }

    static func encode(_ entries: [CPUIDEntry]) throws(KVMError) -> ckvm_cpuid {
        guard entries.count <= Int(CKVM_MAX_CPUID_ENTRIES) else {
            throw .invalidArgument("\(entries.count) CPUID entries exceed the limit of \(CKVM_MAX_CPUID_ENTRIES)")
        }
        var table = ckvm_cpuid()
        table.nent = UInt32(entries.count)
        withUnsafeMutableBytes(of: &table.entries) { raw in
            let slots = raw.bindMemory(to: kvm_cpuid_entry2.self)
            for (i, e) in entries.enumerated() {
                var c = kvm_cpuid_entry2()
                c.function = e.function; c.index = e.index; c.flags = e.flags
                c.eax = e.eax; c.ebx = e.ebx; c.ecx = e.ecx; c.edx = e.edx
                slots[i] = c
            }
        }
        return table
    }
}
