import CKVM
import GuestMemory
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A KVM virtual machine (the fd KVM_CREATE_VM returned): memory slots, the in-kernel interrupt controllers,
/// interrupt injection, and vCPU creation.
public final class VirtualMachine: Sendable {
    let fd: FileDescriptor
    public let system: KVMSystem

    init(fd: FileDescriptor, system: KVMSystem) {
        self.fd = fd
        self.system = system
    }

    deinit { try? fd.close() }

    /// KVM_CHECK_EXTENSION on the VM fd (some answers depend on the VM, e.g. KVM_CAP_MAX_VCPUS).
    public func checkExtension(_ capability: Int32) -> Int32 {
        (try? Ioctl.value(fd.rawValue, CKVM_CHECK_EXTENSION, UInt(capability), "KVM_CHECK_EXTENSION")) ?? 0
    }

    /// Registers every region of `memory` as a KVM memory slot (slots 0, 1, ...). With `logDirtyPages`, KVM logs
    /// which pages the vCPUs write (KVM_MEM_LOG_DIRTY_PAGES; read with `takeDirtyLog`). Calling it again with the
    /// same memory changes only the flag.
    public func mapGuestMemory(_ memory: GuestMemory, logDirtyPages: Bool = false) throws(KVMError) {
        for (slot, region) in memory.regions.enumerated() {
            var descriptor = kvm_userspace_memory_region(
                slot: UInt32(slot), flags: logDirtyPages ? UInt32(CKVM_MEM_LOG_DIRTY_PAGES) : 0, guest_phys_addr: region.guestBase.rawValue,
                memory_size: region.size, userspace_addr: region.hostAddressForKVM)
            _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_USER_MEMORY_REGION, &descriptor, "KVM_SET_USER_MEMORY_REGION")
        }
    }

    /// KVM_GET_DIRTY_LOG for every slot of `memory` (mapped with `logDirtyPages`): the pages the vCPUs wrote since
    /// the last call, one bitmap per region (bit i of word i/64 for page i). KVM clears its log as it reads it.
    public func takeDirtyLog(_ memory: GuestMemory) throws(KVMError) -> [[UInt64]] {
        var logs: [[UInt64]] = []
        for (slot, region) in memory.regions.enumerated() {
            let pages = Int((region.size + MemoryRegion.pageSize - 1) / MemoryRegion.pageSize)
            var bitmap = [UInt64](repeating: 0, count: (pages + 63) / 64)
            let result = ckvm_get_dirty_log(fd.rawValue, UInt32(slot), &bitmap)
            guard result == 0 else { throw .ioctlFailed(name: "KVM_GET_DIRTY_LOG", errno: Errno(rawValue: errno)) }
            logs.append(bitmap)
        }
        return logs
    }

    /// KVM_SET_TSS_ADDR: three pages of guest-physical space KVM uses for real-mode emulation on Intel hosts.
    /// Must lie outside RAM and device MMIO.
    public func setTSSAddress(_ address: GuestAddress) throws(KVMError) {
        _ = try Ioctl.value(fd.rawValue, CKVM_SET_TSS_ADDR, UInt(address.rawValue), "KVM_SET_TSS_ADDR")
    }

    /// KVM_SET_IDENTITY_MAP_ADDR: one page for the EPT identity map KVM needs for unpaged guest code on Intel.
    public func setIdentityMapAddress(_ address: GuestAddress) throws(KVMError) {
        var value = address.rawValue
        _ = try Ioctl.pointer(fd.rawValue, CKVM_SET_IDENTITY_MAP_ADDR, &value, "KVM_SET_IDENTITY_MAP_ADDR")
    }

    /// KVM_CREATE_IRQCHIP: in-kernel 8259 PICs, IOAPIC and a local APIC per vCPU. Create before any vCPU.
    public func createIRQChip() throws(KVMError) {
        _ = try Ioctl.none(fd.rawValue, CKVM_CREATE_IRQCHIP, "KVM_CREATE_IRQCHIP")
    }

    /// KVM_CREATE_PIT2: the in-kernel 8254 timer (ports 0x40-0x43), speaker port 0x61 left dummy.
    public func createPIT() throws(KVMError) {
        var config = kvm_pit_config()
        config.flags = UInt32(KVM_PIT_SPEAKER_DUMMY)
        _ = try Ioctl.pointer(fd.rawValue, CKVM_CREATE_PIT2, &config, "KVM_CREATE_PIT2")
    }

    /// KVM_IRQ_LINE: sets the level of a GSI on the in-kernel PIC/IOAPIC (ISA IRQs 0-15 reach both).
    public func setIRQLine(_ gsi: UInt32, level: Bool) throws(KVMError) {
        var request = kvm_irq_level()
        request.irq = gsi
        request.level = level ? 1 : 0
        _ = try Ioctl.pointer(fd.rawValue, CKVM_IRQ_LINE, &request, "KVM_IRQ_LINE")
    }

    /// KVM_IRQFD: writing to `eventFD` injects `gsi` without a trip through the VMM.
    public func registerIRQFD(_ eventFD: EventFD, gsi: UInt32) throws(KVMError) {
        var request = kvm_irqfd()
        request.fd = UInt32(eventFD.fd.rawValue)
        request.gsi = gsi
        _ = try Ioctl.pointer(fd.rawValue, CKVM_IRQFD, &request, "KVM_IRQFD")
    }

    /// Where an ioeventfd listens.
    public enum IOEventAddress: Sendable {
        case port(UInt16)
        case mmio(GuestAddress)
    }

    /// KVM_IOEVENTFD: a guest write of `length` bytes to `address` (optionally only of `value`) signals
    /// `eventFD` and returns straight to the guest, with no exit to the VMM. Length 0 matches any width.
    public func registerIOEventFD(_ eventFD: EventFD, at address: IOEventAddress, length: UInt32, matching value: UInt64? = nil) throws(KVMError) {
        var request = Self.ioeventfdRequest(eventFD, address, length, value)
        _ = try Ioctl.pointer(fd.rawValue, CKVM_IOEVENTFD, &request, "KVM_IOEVENTFD")
    }

    /// KVM_IOEVENTFD with KVM_IOEVENTFD_FLAG_DEASSIGN: removes a registration made with the same arguments.
    public func unregisterIOEventFD(_ eventFD: EventFD, at address: IOEventAddress, length: UInt32, matching value: UInt64? = nil) throws(KVMError) {
        var request = Self.ioeventfdRequest(eventFD, address, length, value)
        request.flags |= UInt32(1 << kvm_ioeventfd_flag_nr_deassign)
        _ = try Ioctl.pointer(fd.rawValue, CKVM_IOEVENTFD, &request, "KVM_IOEVENTFD (deassign)")
    }

    private static func ioeventfdRequest(_ eventFD: EventFD, _ address: IOEventAddress, _ length: UInt32, _ value: UInt64?) -> kvm_ioeventfd {
        var request = kvm_ioeventfd()
        request.fd = eventFD.fd.rawValue
        request.len = length
        switch address {
        case let .port(port):
            request.addr = UInt64(port)
            request.flags |= UInt32(1 << kvm_ioeventfd_flag_nr_pio)
        case let .mmio(guestAddress):
            request.addr = guestAddress.rawValue
        }
        if let value {
            request.datamatch = value
            request.flags |= UInt32(1 << kvm_ioeventfd_flag_nr_datamatch)
        }
        return request
    }

    /// KVM_CREATE_VCPU with the given APIC ID, and its kvm_run page mapped.
    public func createVCPU(id: UInt32) throws(KVMError) -> VCPU {
        let vcpuFD = FileDescriptor(rawValue: try Ioctl.value(fd.rawValue, CKVM_CREATE_VCPU, UInt(id), "KVM_CREATE_VCPU"))
        do {
            let runPage = try RunPage(fd: vcpuFD.rawValue, size: system.vcpuMmapSize)
            return VCPU(id: id, fd: vcpuFD, runPage: runPage)
        } catch {
            try? vcpuFD.close()
            throw error
        }
    }
}
