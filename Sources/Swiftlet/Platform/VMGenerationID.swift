import ACPI
import Devices
import GuestMemory
import Virtio

/// The VMM's half of the VM Generation ID (`VMGenerationIDACPI` is what the guest sees): 16 bytes in the
/// e820-reserved ACPI block, a fresh random value at boot and a new one on every snapshot restore, each change
/// announced by a pulse on the Generic Event Device's interrupt, whose `_EVT` sends `Notify (VGEN, 0x80)`.
///
/// Why: a restored clone continues from the very state its snapshot holds — the guest kernel's CRNG included — so
/// two clones of one snapshot would hand out the same "random" bytes until something reseeds them. A guest with
/// the driver (Linux CONFIG_VMGENID) reseeds as soon as it sees the ID change.
///
/// There is no register and no state beyond where the ID is and which line announces it: the ID itself is guest
/// memory, saved and restored with the rest of RAM.
final class VMGenerationID: Sendable {
    /// The GED's interrupt (`VMGenerationIDDescription.defaultGSI`: 9, free on Swiftlet's platform).
    static let gsi = VMGenerationIDDescription.defaultGSI

    /// `device.vmgenid` in a snapshot (docs/snapshots.md).
    struct State: Codable, Equatable {
        /// Guest-physical address of the 16-byte ID.
        var address: UInt64
        var gsi: UInt32
    }

    let address: GuestAddress
    let gsi: UInt32
    private let interrupt: any InterruptLine

    init(address: GuestAddress, gsi: UInt32 = VMGenerationID.gsi, interrupt: any InterruptLine) {
        self.address = address
        self.gsi = gsi
        self.interrupt = interrupt
    }

    var state: State { State(address: address.rawValue, gsi: gsi) }

    /// 128 random bits from the host kernel's CSPRNG (the entropy device's source), which is what the ID must come
    /// from: a guest treats it as entropy.
    static func freshID() -> [UInt8] {
        var id = [UInt8](repeating: 0, count: VMGenerationIDACPI.idLength)
        HostEntropySource().fill(&id)
        return id
    }

    /// The ID as the guest reads it now.
    func currentID(in memory: GuestMemory) throws(GuestMemoryError) -> [UInt8] {
        try memory.read(at: address, count: VMGenerationIDACPI.idLength)
    }

    /// Stores a new random ID and returns it. At boot this is all: the guest's driver reads the ID when it probes.
    @discardableResult
    func writeFreshID(into memory: GuestMemory) throws(GuestMemoryError) -> [UInt8] {
        let id = Self.freshID()
        try memory.write(id, at: address)
        return id
    }

    /// What a restored clone does before it runs: a new ID, then the notification. The interrupt is an edge on the
    /// I/O APIC input (raise, lower), so it must come after the irqchip and the vCPUs' local APICs have their saved
    /// state (which would otherwise overwrite it); KVM then holds it in the target local APIC until that vCPU runs.
    /// Guest memory is the snapshot's file mapped copy-on-write, so the write never reaches the file.
    @discardableResult
    func regenerate(in memory: GuestMemory) throws(GuestMemoryError) -> [UInt8] {
        let id = try writeFreshID(into: memory)
        notifyGuest()
        return id
    }

    /// One pulse on the GED's line: Linux runs `_EVT` with the GSI, which notifies the VGEN device.
    func notifyGuest() {
        interrupt.setLevel(true)
        interrupt.setLevel(false)
    }
}
