// The root complex: bus 0 with up to 32 devices (8 functions each), the configuration accesses both access
// mechanisms (PCIConfigurationPorts, PCIECAM) turn into, and the routing of BAR accesses to the function whose
// BAR currently decodes the address (PCIBARWindow).
//
// BARs move. The guest may reprogram any BAR and flips decoding on and off through the command register (Linux
// disables decoding while it sizes BARs and while it rewrites a 64-bit one). The buses are fixed arrays built
// before the vCPUs start, so instead of re-registering devices, the VMM registers one PCIBARWindow over each
// whole window of the layout and the root looks the address up in its table of decoded BARs. After every
// configuration write that touched a command register or a BAR, the root asks the function for its decoded BARs
// and, when they changed, rebuilds that table and reports each change through `onBARChange` — the hook for
// what the VMM keeps at guest addresses itself (ioeventfds on virtio notify registers).
//
// Threads and locks: any vCPU thread may make any access. Configuration accesses are serialized by the root's
// configuration lock, held while the device handles the access and while `onBARChange` runs (so reported
// changes arrive in the order the guest made them); the callback must not make configuration accesses.
// BAR accesses take only the short lock on the mapping table to find the function, then call it without any root
// lock. Lock order: configuration → device, configuration → mapping table; mapping table → nothing.

import Logging
import Synchronization

/// One BAR that started or stopped decoding, or moved.
public struct PCIBARChange: Sendable, Equatable, CustomStringConvertible {
    public var device: PCIAddress
    public var index: Int
    /// Where it decoded before, or nil.
    public var old: PCIBARMapping?
    /// Where it decodes now, or nil.
    public var new: PCIBARMapping?

    public init(device: PCIAddress, index: Int, old: PCIBARMapping?, new: PCIBARMapping?) {
        self.device = device
        self.index = index
        self.old = old
        self.new = new
    }

    public var description: String {
        "\(device) BAR\(index): \(old.map { "\($0)" } ?? "off") -> \(new.map { "\($0)" } ?? "off")"
    }
}

/// Port I/O or memory: which BARs a window serves.
public enum PCIBARSpace: Sendable, Equatable {
    case memory, io
}

public final class PCIRoot: Sendable {
    struct Attached {
        var address: PCIAddress
        var device: any PCIDevice
        var decoded: [PCIBARMapping]
    }

    struct ConfigurationState {
        /// Bus 0's functions by devfn.
        var functions: [Attached?] = Array(repeating: nil, count: 256)
    }

    /// One decoded BAR in the lookup table.
    struct MappedBAR {
        var base: UInt64
        var last: UInt64
        var index: Int
        var device: any PCIDevice
    }

    struct MappingTable {
        var memory: [MappedBAR] = []
        var io: [MappedBAR] = []
    }

    public let layout: PCILayout
    private let configuration = Mutex(ConfigurationState())
    private let mappings = Mutex(MappingTable())
    private let onBARChange: (@Sendable (PCIBARChange) -> Void)?
    private let logger: Logger

    /// - Parameters:
    ///   - onBARChange: called for every BAR that starts or stops decoding or moves, on the vCPU thread whose
    ///     configuration write caused it, with the configuration lock held (see the file comment).
    public init(
        layout: PCILayout = PCILayout(),
        logger: Logger = Logger(label: "swiftlet.devices.pci"),
        onBARChange: (@Sendable (PCIBARChange) -> Void)? = nil
    ) throws(PCIError) {
        try layout.validate()
        self.layout = layout
        self.logger = logger
        self.onBARChange = onBARChange
    }

    // MARK: - Topology

    /// Attaches `device` at `address` (bus 0). BARs it already decodes are entered into the lookup table.
    public func attach(_ device: any PCIDevice, at address: PCIAddress) throws(PCIError) {
        guard address.bus == 0 else { throw .busNotPresent(address) }
        try configuration.withLock { (state) throws(PCIError) in
            guard state.functions[address.deviceFunction] == nil else { throw .addressInUse(address) }
            state.functions[address.deviceFunction] = Attached(address: address, device: device,
                                                               decoded: device.decodedBARs)
            rebuildMappings(state)
        }
    }

    /// Attaches `device` as function 0 of the lowest free device number and returns its address.
    @discardableResult
    public func attach(_ device: any PCIDevice) throws(PCIError) -> PCIAddress {
        let free = configuration.withLock { state in
            (0..<PCIAddress.devicesPerBus).first { number in
                (0..<PCIAddress.functionsPerDevice).allSatisfy { state.functions[number << 3 | $0] == nil }
            }
        }
        guard let free else { throw .noFreeDevice }
        let address = PCIAddress(device: UInt8(free))
        try attach(device, at: address)
        return address
    }

    /// The attached functions in address order.
    public var devices: [(address: PCIAddress, device: any PCIDevice)] {
        configuration.withLock { state in state.functions.compactMap { $0.map { ($0.address, $0.device) } } }
    }

    // MARK: - Configuration accesses (from PCIConfigurationPorts and PCIECAM)

    /// A configuration read. A function that does not exist answers all ones — a master abort, which is how
    /// enumeration finds empty slots (vendor ID 0xFFFF). So does a malformed access: a width other than 1, 2 or
    /// 4, an offset not aligned to the width, or one past the 4 KiB of a function.
    public func readConfiguration(_ address: PCIAddress, offset: Int, width: Int) -> UInt32 {
        guard Self.isWellFormed(address, offset: offset, width: width) else {
            return PCIConfigurationSpace.allOnes(width: width)
        }
        return configuration.withLock { state in
            guard let function = state.functions[address.deviceFunction] else {
                return PCIConfigurationSpace.allOnes(width: width)
            }
            let value = function.device.readConfiguration(offset: offset, width: width)
            return width == 4 ? value : value & ((1 << (8 * UInt32(width))) - 1)
        }
    }

    /// A configuration write; dropped for absent functions and malformed accesses (as `readConfiguration`).
    public func writeConfiguration(_ address: PCIAddress, offset: Int, width: Int, value: UInt32) {
        guard Self.isWellFormed(address, offset: offset, width: width) else { return }
        configuration.withLock { state in
            guard var function = state.functions[address.deviceFunction] else { return }
            function.device.writeConfiguration(offset: offset, width: width, value: value)
            // Decoding depends only on the command register and the BARs.
            let touchesCommand = offset < PCIRegister.command + 2 && PCIRegister.command < offset + width
            let touchesBARs = offset < PCIRegister.bar(6) && PCIRegister.bar0 < offset + width
            guard touchesCommand || touchesBARs else { return }
            updateDecoding(of: &function, in: &state)
        }
    }

    /// Reads the function's decoded BARs again; when they changed, rebuilds the lookup table and reports each
    /// change. Runs with the configuration lock held.
    private func updateDecoding(of function: inout Attached, in state: inout ConfigurationState) {
        let decoded = function.device.decodedBARs
        guard decoded != function.decoded else { return }
        let changes = Self.changes(at: function.address, from: function.decoded, to: decoded)
        function.decoded = decoded
        state.functions[function.address.deviceFunction] = function
        rebuildMappings(state)
        for change in changes {
            logger.debug("PCI BAR change", metadata: ["change": "\(change)"])
            onBARChange?(change)
        }
    }

    /// The function at `address` changed its registers other than through a configuration write (a snapshot
    /// restored them): its decoded BARs are read again and every change reported through `onBARChange`, as after a
    /// guest's write.
    public func refreshDecoding(at address: PCIAddress) {
        configuration.withLock { state in
            guard address.bus == 0, var function = state.functions[address.deviceFunction] else { return }
            updateDecoding(of: &function, in: &state)
        }
    }

    private static func isWellFormed(_ address: PCIAddress, offset: Int, width: Int) -> Bool {
        guard address.bus == 0, width == 1 || width == 2 || width == 4 else { return false }
        return offset >= 0 && offset % width == 0 && offset + width <= PCIConfigurationSpace.extendedSize
    }

    /// BAR by BAR, what differs between two decoded sets.
    static func changes(at address: PCIAddress, from old: [PCIBARMapping], to new: [PCIBARMapping]) -> [PCIBARChange] {
        var changes: [PCIBARChange] = []
        for index in 0..<PCIConfigurationSpace.barCount {
            let before = old.first { $0.index == index }
            let after = new.first { $0.index == index }
            if before != after { changes.append(PCIBARChange(device: address, index: index, old: before, new: after)) }
        }
        return changes
    }

    private func rebuildMappings(_ state: ConfigurationState) {
        var table = MappingTable()
        for function in state.functions {
            guard let function else { continue }
            for mapping in function.decoded {
                let entry = MappedBAR(base: mapping.base, last: mapping.last, index: mapping.index,
                                      device: function.device)
                if mapping.isIO { table.io.append(entry) } else { table.memory.append(entry) }
            }
        }
        mappings.withLock { $0 = table }
    }

    // MARK: - BAR accesses (from PCIBARWindow)

    /// A read at guest address `address` in `space`, or nil when no decoded BAR holds the whole access.
    /// Overlapping BARs (a guest programming error) resolve to the one attached first.
    public func readBAR(_ space: PCIBARSpace, address: UInt64, width: Int) -> UInt64? {
        guard let (device, index, offset) = lookUp(space, address: address, width: width) else { return nil }
        return device.readBAR(index, offset: offset, width: width)
    }

    /// A write at guest address `address` in `space`; false when no decoded BAR holds the whole access.
    @discardableResult
    public func writeBAR(_ space: PCIBARSpace, address: UInt64, width: Int, value: UInt64) -> Bool {
        guard let (device, index, offset) = lookUp(space, address: address, width: width) else { return false }
        device.writeBAR(index, offset: offset, width: width, value: value)
        return true
    }

    /// A linear scan: a VM has a handful of BARs, and the table is short and contiguous.
    private func lookUp(_ space: PCIBARSpace, address: UInt64, width: Int) -> (any PCIDevice, Int, UInt64)? {
        guard width == 1 || width == 2 || width == 4 || width == 8 else { return nil }
        let (lastByte, overflow) = address.addingReportingOverflow(UInt64(width - 1))
        guard !overflow else { return nil }
        return mappings.withLock { table in
            for entry in space == .memory ? table.memory : table.io
            where entry.base <= address && lastByte <= entry.last {
                return (entry.device, entry.index, address - entry.base)
            }
            return nil
        }
    }
}
