import CKVM

/// One entry of KVM's GSI routing table (KVM_SET_GSI_ROUTING): where an interrupt raised on a GSI (by
/// KVM_IRQ_LINE or an irqfd) is delivered.
public enum GSIRoute: Equatable, Sendable {
    /// To a pin of an in-kernel interrupt controller.
    case irqchip(gsi: UInt32, chip: IRQChip, pin: UInt32)
    /// As a message-signalled interrupt (the address/data pair a guest programs into an MSI-X table entry).
    case msi(gsi: UInt32, addressLow: UInt32, addressHigh: UInt32, data: UInt32)

    public enum IRQChip: UInt32, Sendable {
        case picMaster = 0, picSlave = 1, ioapic = 2   // KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC
    }

    public var gsi: UInt32 {
        switch self {
        case let .irqchip(gsi, _, _), let .msi(gsi, _, _, _): return gsi
        }
    }

    /// The routes KVM installs with KVM_CREATE_IRQCHIP. KVM_SET_GSI_ROUTING replaces the whole table, so a
    /// VMM adding MSI routes must resend these: GSIs 0-15 reach the PICs (master pins 0-7, slave 8-15) and the
    /// IOAPIC pin of the same number, GSIs 16-23 the IOAPIC only (arch/x86/kvm/irq_comm.c, default_routing).
    public static var defaultIRQChipRoutes: [GSIRoute] {
        var routes: [GSIRoute] = []
        for gsi in UInt32(0)..<24 {
            if gsi < 8 { routes.append(.irqchip(gsi: gsi, chip: .picMaster, pin: gsi)) }
            else if gsi < 16 { routes.append(.irqchip(gsi: gsi, chip: .picSlave, pin: gsi - 8)) }
            routes.append(.irqchip(gsi: gsi, chip: .ioapic, pin: gsi))
        }
        return routes
    }

    var kvm: kvm_irq_routing_entry {
        var entry = kvm_irq_routing_entry()
        switch self {
        case let .irqchip(gsi, chip, pin):
            entry.gsi = gsi
            entry.type = UInt32(KVM_IRQ_ROUTING_IRQCHIP)
            entry.u.irqchip.irqchip = chip.rawValue
            entry.u.irqchip.pin = pin
        case let .msi(gsi, low, high, data):
            entry.gsi = gsi
            entry.type = UInt32(KVM_IRQ_ROUTING_MSI)
            entry.u.msi.address_lo = low
            entry.u.msi.address_hi = high
            entry.u.msi.data = data
        }
        return entry
    }
}

extension VirtualMachine {
    /// KVM_SET_GSI_ROUTING: replaces the whole routing table with `routes`.
    public func setGSIRouting(_ routes: [GSIRoute]) throws(KVMError) {
        guard routes.count <= Int(CKVM_MAX_IRQ_ROUTES) else {
            throw .invalidArgument("\(routes.count) GSI routes exceed the limit of \(CKVM_MAX_IRQ_ROUTES)")
        }
        var table = ckvm_irq_routing()
        table.nr = UInt32(routes.count)
        withUnsafeMutableBytes(of: &table.entries) { raw in
            let slots = raw.bindMemory(to: kvm_irq_routing_entry.self)
            for (index, route) in routes.enumerated() { slots[index] = route.kvm }
        }
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_GSI_ROUTING, &table, "KVM_SET_GSI_ROUTING")
    }
}
