import GuestMemory

/// Where the initrd goes: as high as possible in low RAM, page-aligned, so that it stays out of the way
/// of the kernel's early allocations (boot.rst: "it is recommended that the initrd be loaded as high in
/// memory as possible"), but no higher than the kernel allows (initrd_addr_max) and never over the kernel.
public enum InitrdPlacement {
    public static let alignment: UInt64 = 4096

    /// - Parameters:
    ///   - size: initrd size in bytes.
    ///   - lowRAMEnd: one past the last byte of the RAM that starts at 0.
    ///   - addressMax: the kernel's initrd_addr_max: the highest address the initrd's *last byte* may have.
    ///   - kernelEnd: one past the last byte the kernel occupies (or needs while it unpacks itself).
    /// - Returns: the initrd's start address.
    public static func address(size: UInt64, lowRAMEnd: GuestAddress, addressMax: UInt64,
                               kernelEnd: GuestAddress) throws(BootError) -> GuestAddress {
        // The initrd must end at or below this address.
        let ceiling = min(lowRAMEnd.rawValue, addressMax == UInt64.max ? UInt64.max : addressMax + 1)
        let floor = kernelEnd.alignedUp(to: alignment)?.rawValue ?? UInt64.max
        guard size <= ceiling else {
            throw .initrdDoesNotFit(size: size, limit: GuestAddress(ceiling), kernelEnd: kernelEnd)
        }
        let start = (ceiling - size) & ~(alignment - 1)
        guard start >= floor else {
            throw .initrdDoesNotFit(size: size, limit: GuestAddress(ceiling), kernelEnd: kernelEnd)
        }
        return GuestAddress(start)
    }
}
