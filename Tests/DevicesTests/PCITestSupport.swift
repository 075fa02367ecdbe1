import Synchronization

@testable import Devices

/// A PCI function for tests: a configuration space with whatever BARs and capabilities a test declares, MSI-X
/// when asked for, and BAR accesses recorded (reads answer `barReadValue`, or the MSI-X table / PBA).
final class TestPCIFunction: PCIDevice {
    struct BARAccess: Equatable {
        var isWrite: Bool
        var index: Int
        var offset: UInt64
        var width: Int
        var value: UInt64
    }

    private let space: Mutex<PCIConfigurationSpace>
    private let accesses = Mutex<[BARAccess]>([])
    let msix: (capability: MSIXCapability, vectors: MSIXVectors)?
    let barReadValue: UInt64

    init(
        identity: PCIIdentity = TestPCIFunction.identity,
        size: Int = PCIConfigurationSpace.standardSize,
        barReadValue: UInt64 = 0x1122_3344_5566_7788,
        msixVectors: Int? = nil,
        routing: (any MSIXRouting)? = nil,
        configure: (inout PCIConfigurationSpace) -> Void = { _ in }
    ) {
        var space = PCIConfigurationSpace(identity: identity, size: size)
        configure(&space)
        if let msixVectors, let routing {
            // Table at 0 of BAR 2 and PBA at 0x800 of the same BAR (declared by `configure`).
            let capability = space.addMSIXCapability(vectorCount: msixVectors, tableBAR: 2, tableOffset: 0,
                                                     pbaBAR: 2, pbaOffset: 0x800)
            msix = (capability, MSIXVectors(vectorCount: msixVectors, routing: routing))
        } else {
            msix = nil
        }
        self.space = Mutex(space)
        self.barReadValue = barReadValue
    }

    /// virtio-blk's IDs, just to have something real-looking.
    static let identity = PCIIdentity(vendorID: 0x1AF4, deviceID: 0x1042, revisionID: 1, classCode: .massStorageSCSI,
                                      subsystemVendorID: 0x1AF4, subsystemID: 0x0002)

    var configuration: PCIConfigurationSpace { space.withLock { $0 } }
    var barLog: [BARAccess] { accesses.withLock { $0 } }

    func readConfiguration(offset: Int, width: Int) -> UInt32 {
        space.withLock { $0.read(offset: offset, width: width) }
    }

    func writeConfiguration(offset: Int, width: Int, value: UInt32) {
        space.withLock { space in
            space.write(offset: offset, width: width, value: value)
            if let msix, msix.capability.isMessageControlWrite(offset: offset, width: width) {
                msix.vectors.setMessageControl(msix.capability.messageControl(in: space))
            }
        }
    }

    var decodedBARs: [PCIBARMapping] { space.withLock { $0.decodedBARs } }

    func readBAR(_ index: Int, offset: UInt64, width: Int) -> UInt64 {
        accesses.withLock { $0.append(BARAccess(isWrite: false, index: index, offset: offset, width: width, value: 0)) }
        if let msix, index == msix.capability.tableBAR {
            return offset >= msix.capability.pbaOffset
                ? msix.vectors.readPBA(offset: offset - msix.capability.pbaOffset, width: width)
                : msix.vectors.readTable(offset: offset, width: width)
        }
        return barReadValue
    }

    func writeBAR(_ index: Int, offset: UInt64, width: Int, value: UInt64) {
        accesses.withLock { $0.append(BARAccess(isWrite: true, index: index, offset: offset, width: width, value: value)) }
        if let msix, index == msix.capability.tableBAR, offset < msix.capability.pbaOffset {
            msix.vectors.writeTable(offset: offset, width: width, value: value)
        }
    }
}

/// MSI-X routing that records what the VMM would have done with KVM.
final class RecordingMSIXRouting: MSIXRouting {
    enum Event: Equatable {
        case route(vector: Int, message: MSIMessage?)
        case deliver(vector: Int, message: MSIMessage)
    }

    private let events = Mutex<[Event]>([])

    func routeChanged(vector: Int, message: MSIMessage?) { events.withLock { $0.append(.route(vector: vector, message: message)) } }
    func deliver(vector: Int, message: MSIMessage) { events.withLock { $0.append(.deliver(vector: vector, message: message)) } }

    var log: [Event] { events.withLock { $0 } }
    func clear() { events.withLock { $0.removeAll() } }
}

/// BAR changes reported by a root.
final class BARChangeRecorder: Sendable {
    private let changes = Mutex<[PCIBARChange]>([])

    var callback: @Sendable (PCIBARChange) -> Void { { [self] change in changes.withLock { $0.append(change) } } }
    var log: [PCIBARChange] { changes.withLock { $0 } }
    func clear() { changes.withLock { $0.removeAll() } }
}

/// A driver's view of configuration mechanism #1 on a port bus: what `outl(addr, 0xCF8); inw(0xCFC + n)` does.
struct ConfigMechanism1 {
    var ports: PortIOBus

    func select(_ address: PCIAddress, register: Int) {
        ports.write(address: 0xCF8, width: 4, value: UInt64(address.configAddress(register: register)))
    }

    func read(_ address: PCIAddress, offset: Int, width: Int) -> UInt64? {
        select(address, register: offset & ~3)
        return ports.read(address: 0xCFC + UInt64(offset & 3), width: width)
    }

    func write(_ address: PCIAddress, offset: Int, width: Int, value: UInt64) {
        select(address, register: offset & ~3)
        ports.write(address: 0xCFC + UInt64(offset & 3), width: width, value: value)
    }
}
