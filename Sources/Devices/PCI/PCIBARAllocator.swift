/// Places BARs in the layout's windows, as firmware does before the OS runs. Linux keeps an assignment that
/// lies inside a host-bridge window (`_CRS`) and only reassigns BARs left at 0 or outside every window, so
/// pre-placing them makes boot deterministic; relocation by the guest still works (see `PCIRoot`).
///
/// A bump allocator per window: each BAR is aligned to its size (PCI requires natural alignment) and to at
/// least a 4 KiB page for memory, so no two devices share a page and KVM can map or trap each one alone.
public struct PCIBARAllocator: Sendable, Equatable {
    struct Window: Sendable, Equatable {
        let name: String
        let range: ClosedRange<UInt64>
        var next: UInt64

        init(name: String, range: ClosedRange<UInt64>) {
            self.name = name
            self.range = range
            next = range.lowerBound
        }

        mutating func allocate(size: UInt64, alignment: UInt64) -> UInt64? {
            let align = max(size, alignment)
            let (bumped, overflow) = next.addingReportingOverflow(align - 1)
            guard !overflow else { return nil }
            let base = bumped & ~(align - 1)
            let (last, overflowLast) = base.addingReportingOverflow(size - 1)
            guard !overflowLast, last <= range.upperBound else { return nil }
            next = last &+ 1
            return base
        }
    }

    static let pageSize: UInt64 = 4096

    var memory32: Window
    var memory64: Window?
    var io: Window?

    public init(layout: PCILayout) {
        memory32 = Window(name: "32-bit memory", range: layout.memory32Window)
        memory64 = layout.memory64Window.map { Window(name: "64-bit memory", range: $0) }
        io = layout.ioWindow.map { Window(name: "I/O", range: $0) }
    }

    /// An address for `bar`. 64-bit BARs prefer the 64-bit window and fall back to the 32-bit one.
    public mutating func allocate(_ bar: PCIBAR) throws(PCIError) -> UInt64 {
        switch bar.kind {
        case .io:
            guard var window = io else { throw .windowExhausted(window: "I/O", size: bar.size) }
            defer { io = window }
            guard let base = window.allocate(size: bar.size, alignment: 4) else {
                throw .windowExhausted(window: window.name, size: bar.size)
            }
            return base
        case .memory64:
            if var window = memory64, let base = window.allocate(size: bar.size, alignment: Self.pageSize) {
                memory64 = window
                return base
            }
            fallthrough
        case .memory32:
            guard let base = memory32.allocate(size: bar.size, alignment: Self.pageSize) else {
                throw .windowExhausted(window: memory32.name, size: bar.size)
            }
            return base
        }
    }

    /// Places every declared BAR of `configuration`, in index order, and returns the addresses by index.
    @discardableResult
    public mutating func place(_ configuration: inout PCIConfigurationSpace) throws(PCIError) -> [Int: UInt64] {
        var placed: [Int: UInt64] = [:]
        for (index, bar) in configuration.bars.enumerated() {
            guard let bar else { continue }
            let base = try allocate(bar)
            configuration.setBARAddress(index, base)
            placed[index] = base
        }
        return placed
    }
}
