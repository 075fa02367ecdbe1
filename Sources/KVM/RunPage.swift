import CKVM
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A vCPU's mmap'd `struct kvm_run`: exit information written by KVM, and the answers (port-in data, MMIO read
/// data, immediate_exit) the VMM writes back.
///
/// AUDITED UNSAFE FILE: holds the only pointer to the run page. The page is `size` bytes (KVM_GET_VCPU_MMAP_SIZE);
/// port-I/O data lives inside it at `io.data_offset`, which is checked against `size` before every access.
final class RunPage: @unchecked Sendable {
    // SAFETY of @unchecked Sendable: the page is written by KVM and by the vCPU's own thread during exits; the
    // only cross-thread access is the single-byte `immediate_exit` store in `requestImmediateExit`, which the
    // KVM API defines for exactly this use.
    private let base: UnsafeMutableRawPointer
    private let size: Int
    private var run: UnsafeMutablePointer<kvm_run> { base.assumingMemoryBound(to: kvm_run.self) }

    init(fd: Int32, size: Int) throws(KVMError) {
        guard size >= MemoryLayout<kvm_run>.size else { throw .invalidArgument("vCPU mmap size \(size) is smaller than struct kvm_run") }
        let pointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let pointer, pointer != MAP_FAILED else { throw .runPageMapFailed(errno: Errno(rawValue: errno)) }
        base = pointer
        self.size = size
    }

    deinit { munmap(base, size) }

    /// Decodes the exit KVM_RUN just reported.
    @inline(__always)
    func decodeExit() -> VCPUExit {
        let r = run
        switch Int32(r.pointee.exit_reason) {
        case KVM_EXIT_IO:
            let io = r.pointee.io
            let port = io.port, size = Int(io.size), count = Int(io.count)
            return io.direction == UInt8(KVM_EXIT_IO_OUT)
                ? .portOut(port: port, size: size, count: count)
                : .portIn(port: port, size: size, count: count)
        case KVM_EXIT_MMIO:
            let mmio = r.pointee.mmio
            let length = Int(mmio.len)
            if mmio.is_write != 0 {
                var value: UInt64 = 0
                withUnsafeBytes(of: mmio.data) { bytes in
                    for i in 0..<min(length, 8) { value |= UInt64(bytes[i]) << (8 * UInt64(i)) }
                }
                return .mmioWrite(address: mmio.phys_addr, length: length, value: value)
            }
            return .mmioRead(address: mmio.phys_addr, length: length)
        case KVM_EXIT_HLT:
            return .halt
        case KVM_EXIT_SHUTDOWN:
            return .shutdown
        case KVM_EXIT_INTR:
            return .interrupted
        case KVM_EXIT_SYSTEM_EVENT:
            switch Int32(r.pointee.system_event.type) {
            case KVM_SYSTEM_EVENT_SHUTDOWN: return .systemEvent(.shutdown)
            case KVM_SYSTEM_EVENT_RESET: return .systemEvent(.reset)
            case KVM_SYSTEM_EVENT_CRASH: return .systemEvent(.crash)
            case let other: return .systemEvent(.other(UInt32(bitPattern: other)))
            }
        case KVM_EXIT_INTERNAL_ERROR:
            let failure = r.pointee.`internal`
            let count = min(Int(failure.ndata), 16)
            let data = withUnsafeBytes(of: failure.data) { raw in (0..<count).map { raw.load(fromByteOffset: $0 * 8, as: UInt64.self) } }
            return .internalError(.init(suberror: failure.suberror, data: data))
        case KVM_EXIT_FAIL_ENTRY:
            let failure = r.pointee.fail_entry
            return .failEntry(hardwareReason: failure.hardware_entry_failure_reason, cpu: failure.cpu)
        case KVM_EXIT_DEBUG:
            let debug = r.pointee.debug.arch
            return .debug(exception: debug.exception, pc: debug.pc)
        case KVM_EXIT_UNKNOWN:
            return .unknown(hardwareReason: r.pointee.hw.hardware_exit_reason)
        case let other:
            return .unhandled(reason: UInt32(bitPattern: other))
        }
    }

    /// Byte offset of element `index` of the current port-I/O exit's data, if it lies inside the page.
    @inline(__always)
    private func ioDataOffset(index: Int, size: Int) -> Int? {
        let offset = Int(run.pointee.io.data_offset) + index * size
        guard size > 0, size <= 8, index >= 0, offset >= 0, offset + size <= self.size else { return nil }
        return offset
    }

    /// Element `index` of a port-out exit's data (little-endian, `size` bytes).
    @inline(__always)
    func portOutValue(index: Int, size: Int) -> UInt64 {
        guard let offset = ioDataOffset(index: index, size: size) else { return 0 }
        var value: UInt64 = 0
        for i in 0..<size { value |= UInt64(base.load(fromByteOffset: offset + i, as: UInt8.self)) << (8 * UInt64(i)) }
        return value
    }

    /// Writes element `index` of a port-in exit's answer.
    @inline(__always)
    func setPortInValue(_ value: UInt64, index: Int, size: Int) {
        guard let offset = ioDataOffset(index: index, size: size) else { return }
        for i in 0..<size { base.storeBytes(of: UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))), toByteOffset: offset + i, as: UInt8.self) }
    }

    /// Writes the answer to an MMIO read exit (`mmio.data`, at most 8 bytes).
    @inline(__always)
    func setMMIOReadValue(_ value: UInt64, length: Int) {
        withUnsafeMutableBytes(of: &run.pointee.mmio.data) { bytes in
            for i in 0..<min(length, 8) { bytes[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        }
    }

    /// Sets `immediate_exit`: the next (or current, once kicked by a signal) KVM_RUN returns EINTR at once.
    func setImmediateExit(_ on: Bool) {
        // A volatile byte store; KVM reads this field at every entry (KVM_CAP_IMMEDIATE_EXIT).
        withUnsafeMutablePointer(to: &run.pointee.immediate_exit) { $0.pointee = on ? 1 : 0 }
    }
}
