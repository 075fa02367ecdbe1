import Devices
import Virtio
import VirtioMMIO
import VirtioPCI

/// One virtio device as the machine attached it, with its transport: what a snapshot saves and restores, in the
/// order the devices were attached (the same order a restored machine attaches them in).
enum VirtioTransportHandle: Sendable {
    case pci(VirtioPCIDevice, PCIAddress)
    case mmio(VirtioMMIODevice)

    var device: any VirtioDevice {
        switch self {
        case let .pci(transport, _): return transport.device
        case let .mmio(transport): return transport.device
        }
    }
}
