import Devices
import KVM
import Synchronization

/// Message-signalled interrupts through KVM: each MSI-X vector of each PCI function gets its own GSI with an
/// MSI routing entry (the address/data pair the guest programmed) and an irqfd, so a device raises it with one
/// eventfd write and KVM delivers it without the VMM on the path.
///
/// KVM_SET_GSI_ROUTING replaces the whole table, so the router keeps every route and resends the table, with
/// the irqchip defaults, whenever the guest reprograms a vector (rare: at driver probe and interrupt affinity
/// changes).
final class KVMMSIRouter: Sendable {
    /// GSIs 0-23 are the IOAPIC's pins; MSI GSIs start above them.
    static let firstMSIGSI: UInt32 = 24

    private let vm: VirtualMachine
    private struct State {
        var nextGSI = KVMMSIRouter.firstMSIGSI
        var routes: [UInt32: GSIRoute] = [:]
    }
    private let state = Mutex(State())

    init(vm: VirtualMachine) { self.vm = vm }

    /// A routing for one PCI function with `vectorCount` vectors: fresh GSIs, each with a registered irqfd.
    func makeRouting(vectorCount: Int) throws(KVMError) -> KVMMSIXRouting {
        let gsis = state.withLock { state -> [UInt32] in
            let first = state.nextGSI
            state.nextGSI += UInt32(vectorCount)
            return (0..<UInt32(vectorCount)).map { first + $0 }
        }
        var irqfds: [EventFD] = []
        for gsi in gsis {
            let irqfd = try EventFD()
            try vm.registerIRQFD(irqfd, gsi: gsi)
            irqfds.append(irqfd)
        }
        return KVMMSIXRouting(router: self, gsis: gsis, irqfds: irqfds)
    }

    /// Points `gsi` at `message`, or removes its route; resends the table to KVM.
    func setRoute(gsi: UInt32, message: MSIMessage?) throws(KVMError) {
        let routes = state.withLock { state -> [GSIRoute] in
            if let message {
                state.routes[gsi] = .msi(gsi: gsi, addressLow: UInt32(truncatingIfNeeded: message.address),
                                         addressHigh: UInt32(truncatingIfNeeded: message.address >> 32), data: message.data)
            } else {
                state.routes[gsi] = nil
            }
            return GSIRoute.defaultIRQChipRoutes + state.routes.keys.sorted().compactMap { state.routes[$0] }
        }
        try vm.setGSIRouting(routes)
    }
}

/// One PCI function's vectors, as the PCI model's `MSIXRouting`.
final class KVMMSIXRouting: MSIXRouting {
    private let router: KVMMSIRouter
    private let gsis: [UInt32]
    private let irqfds: [EventFD]

    init(router: KVMMSIRouter, gsis: [UInt32], irqfds: [EventFD]) {
        self.router = router
        self.gsis = gsis
        self.irqfds = irqfds
    }

    func routeChanged(vector: Int, message: MSIMessage?) {
        guard gsis.indices.contains(vector) else { return }
        // A failure here means KVM refused a routing table we built: nothing the guest did can cause it.
        do { try router.setRoute(gsi: gsis[vector], message: message) } catch {
            preconditionFailure("KVM_SET_GSI_ROUTING failed: \(error)")
        }
    }

    func deliver(vector: Int, message: MSIMessage) {
        guard irqfds.indices.contains(vector) else { return }
        irqfds[vector].signal()
    }
}
