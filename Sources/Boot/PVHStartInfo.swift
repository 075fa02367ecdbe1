import GuestMemory

/// The structures a PVH kernel finds through EBX (Xen's public/arch-x86/hvm/start_info.h, version 1):
///
///     struct hvm_start_info {          // 56 bytes
///         u32 magic;                   // 0x336ec578
///         u32 version;                 // 1: memmap fields present
///         u32 flags;
///         u32 nr_modules;
///         u64 modlist_paddr;           // array of hvm_modlist_entry
///         u64 cmdline_paddr;
///         u64 rsdp_paddr;
///         u64 memmap_paddr;            // array of hvm_memmap_table_entry
///         u32 memmap_entries;
///         u32 reserved;
///     };
///     struct hvm_modlist_entry { u64 paddr; u64 size; u64 cmdline_paddr; u64 reserved; };   // 32 bytes
///     struct hvm_memmap_table_entry { u64 addr; u64 size; u32 type; u32 reserved; };       // 24 bytes
///
/// Linux (arch/x86/platform/pvh/enlighten.c) takes the first module as the initrd and the memory map
/// entries as e820 entries (same type numbers).
public enum PVHStartInfo {
    public static let magic: UInt32 = 0x336e_c578
    public static let size = 56
    public static let moduleEntrySize = 32
    public static let memoryMapEntrySize = 24

    public static func write(to memory: GuestMemory, commandLine: GuestAddress, initrd: (address: GuestAddress, size: UInt64)?,
                             rsdp: GuestAddress?, memoryMap: E820Map) throws(BootError) {
        var info = [UInt8](repeating: 0, count: size)
        info.put(magic, at: 0)
        info.put(UInt32(1), at: 4)
        info.put(UInt32(initrd == nil ? 0 : 1), at: 12)
        info.put(initrd == nil ? 0 : BootLayout.pvhModuleList.rawValue, at: 16)
        info.put(commandLine.rawValue, at: 24)
        info.put(rsdp?.rawValue ?? 0, at: 32)
        info.put(BootLayout.pvhMemoryMap.rawValue, at: 40)
        info.put(UInt32(memoryMap.entries.count), at: 48)

        var modules = [UInt8](repeating: 0, count: moduleEntrySize)
        if let initrd {
            modules.put(initrd.address.rawValue, at: 0)
            modules.put(initrd.size, at: 8)
        }

        var map = [UInt8](repeating: 0, count: memoryMap.entries.count * memoryMapEntrySize)
        for (index, entry) in memoryMap.entries.enumerated() {
            map.put(entry.address.rawValue, at: index * memoryMapEntrySize)
            map.put(entry.size, at: index * memoryMapEntrySize + 8)
            map.put(entry.type.rawValue, at: index * memoryMapEntrySize + 16)
        }
        // The memory map must end before the zero page's address (used by the 64-bit path): 128 entries fit.
        precondition(BootLayout.pvhMemoryMap.rawValue + UInt64(map.count) <= BootLayout.zeroPage.rawValue)

        try writing("PVH start info") { () throws(GuestMemoryError) in
            try memory.write(info, at: BootLayout.pvhStartInfo)
            try memory.write(modules, at: BootLayout.pvhModuleList)
            try memory.write(map, at: BootLayout.pvhMemoryMap)
        }
    }
}
