import GuestMemory

/// Boot page tables: an identity map of the first 4 GiB with 2 MiB pages (Intel SDM Vol. 3A, 4.5
/// "4-Level Paging"): one PML4 entry → one PDPT with four entries → four page directories of 512 entries.
///
/// Linux's 64-bit entry needs the kernel, the zero page and the command line identity-mapped (boot.rst);
/// mapping all of low memory covers wherever they are. The kernel builds its own tables right away.
public enum BootPageTables {
    // Entry bits (SDM Table 4-15 ff.).
    public static let present: UInt64 = 1 << 0
    public static let writable: UInt64 = 1 << 1
    /// U/S: CPL 3 may access the page (must be set at every level for user access).
    public static let user: UInt64 = 1 << 2
    /// PS in a page-directory entry: the entry maps a 2 MiB page instead of pointing to a page table.
    public static let pageSize: UInt64 = 1 << 7

    static let pageDirectoryCount = 4
    static let entriesPerTable = 512
    static let largePageSize: UInt64 = 2 << 20

    /// Writes PML4, PDPT and page directories at `BootLayout.pml4`, `.pdpt`, `.pageDirectories`.
    /// - Parameter userAccessible: set U/S everywhere, so code at CPL 3 can use the whole map.
    /// - Returns: the value for CR3.
    @discardableResult
    public static func write(to memory: GuestMemory, userAccessible: Bool = false) throws(BootError) -> UInt64 {
        let flags = present | writable | (userAccessible ? user : 0)
        var pml4 = [UInt8](repeating: 0, count: 4096)
        pml4.put(BootLayout.pdpt.rawValue | flags, at: 0)

        var pdpt = [UInt8](repeating: 0, count: 4096)
        var directories = [UInt8](repeating: 0, count: 4096 * pageDirectoryCount)
        for directory in 0..<pageDirectoryCount {
            let directoryAddress = BootLayout.pageDirectories.rawValue + UInt64(directory) * 4096
            pdpt.put(directoryAddress | flags, at: directory * 8)
            for entry in 0..<entriesPerTable {
                let page = UInt64(directory * entriesPerTable + entry) * largePageSize
                directories.put(page | flags | pageSize, at: (directory * entriesPerTable + entry) * 8)
            }
        }
        try writing("boot page tables") { () throws(GuestMemoryError) in
            try memory.write(pml4, at: BootLayout.pml4)
            try memory.write(pdpt, at: BootLayout.pdpt)
            try memory.write(directories, at: BootLayout.pageDirectories)
        }
        return BootLayout.pml4.rawValue
    }
}
