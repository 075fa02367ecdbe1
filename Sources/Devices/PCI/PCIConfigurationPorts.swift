// Configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2): two 32-bit ports on the host bridge.
//
//   0xCF8 CONFIG_ADDRESS  the function and dword to reach, and the enable bit (31); only a 32-bit access to
//                         0xCF8 itself reaches it — byte and word accesses to 0xCF8-0xCFB are other devices'
//                         business on a PC (0xCF9 is the reset control register), and are ignored here
//   0xCFC CONFIG_DATA     the selected dword; an access of 1, 2 or 4 bytes at 0xCFC + n reaches bytes n...
//                         of it (so a word read at 0xCFE returns bytes 2-3). With the enable bit clear, reads
//                         float to all ones and writes go nowhere.
//
// x86 Linux uses this path for the first 256 bytes of every function even when ECAM exists (raw_pci_read prefers
// "type 1" for offsets below 256), so it is the path that matters most.
//
// Threads: CONFIG_ADDRESS is one register shared by all vCPUs, as on hardware; guests serialize their
// address/data pairs themselves (Linux's pci_config_lock).

import Synchronization

public final class PCIConfigurationPorts: BusDevice {
    private let root: PCIRoot
    private let address = Atomic<UInt32>(0)

    /// Register at `PCILayout.configAddressPort`, `PCILayout.configPortCount` ports.
    public init(root: PCIRoot) { self.root = root }

    public func read(offset: UInt64, width: Int) -> UInt64 {
        switch offset {
        case 0 where width == 4:
            return UInt64(address.load(ordering: .relaxed))
        case 4...7:
            guard let (function, register) = PCIAddress.decodeConfigAddress(address.load(ordering: .relaxed)) else {
                return .max
            }
            return UInt64(root.readConfiguration(function, offset: register + Int(offset - 4), width: width))
        default:
            return .max
        }
    }

    public func write(offset: UInt64, width: Int, value: UInt64) {
        switch offset {
        case 0 where width == 4:
            // Bits 1-0 are reserved and read back as 0.
            address.store(UInt32(truncatingIfNeeded: value) & ~0x3, ordering: .relaxed)
        case 4...7:
            guard let (function, register) = PCIAddress.decodeConfigAddress(address.load(ordering: .relaxed)) else {
                return
            }
            root.writeConfiguration(function, offset: register + Int(offset - 4), width: width,
                                    value: UInt32(truncatingIfNeeded: value))
        default:
            break
        }
    }
}
