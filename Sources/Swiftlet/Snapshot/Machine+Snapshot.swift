#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Devices
import GuestMemory
import KVM
import Logging
import SystemPackage
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// Snapshots (docs/snapshots.md): save a paused machine to a directory holding `state` and `memory`, and build a
/// new machine from one that continues exactly where the saved one was paused.
extension Machine {
    /// The state file's name inside a snapshot directory.
    public static let snapshotStateFile = "state"
    /// The memory file's name inside a snapshot directory.
    public static let snapshotMemoryFile = "memory"

    /// What a save wrote.
    public struct SnapshotSummary: Sendable, Equatable {
        public var stateBytes: Int
        public var memoryFileSize: UInt64
        /// Bytes of guest RAM actually written (non-zero pages); the rest of the memory file is holes.
        public var memoryBytesWritten: UInt64
        /// State the host would not give (nested hosts refuse some), e.g. "vCPU 0: KVM_GET_XSAVE failed: ...".
        public var hostRefused: [String]
    }

    /// Saves the paused machine into `directory` (created if missing): the `state` file (configuration, every
    /// vCPU, the VM's irqchip/PIT/clock, the serial port, i8042, RTC and VM Generation ID) and the sparse `memory` file. Both are
    /// written under temporary names and renamed into place, memory first, so a directory never holds a state
    /// file that points at a half-written memory file, and files a running restore maps are never written into.
    ///
    /// The machine stays paused; `resume()` lets it go on. Every virtio device is saved with its transport (PCI
    /// configuration space and MSI-X table, or the virtio-mmio registers) and its queues' positions; a device model
    /// that cannot be saved refuses the save (`SnapshotError.unsupported`) before anything is written.
    ///
    /// `kind: .diff` writes only the pages written since the previous snapshot (or since tracking began) into a
    /// memory file of RAM's size whose other pages are holes; it needs dirty-page tracking
    /// (`enableDirtyPageTracking()`). Merge it onto the previous memory file (`GuestMemory.mergeDiff`,
    /// `swiftlet merge-memory`) before restoring. Any snapshot of a tracking machine starts the next `Diff` afresh.
    @discardableResult
    public func saveSnapshot(to directory: String, kind: SnapshotKind = .full) throws(SnapshotError) -> SnapshotSummary {
        try lifecycle.transition.withLock { _ throws(SnapshotError) -> SnapshotSummary in
            let current = state
            guard current == .paused else { throw .notPaused(current) }
            let tracking = memory.isLoggingDirtyPages
            guard kind == .full || tracking else {
                throw .unsupported("a Diff snapshot needs dirty-page tracking, which is off for this machine "
                                   + "(track_dirty_pages in machine-config or the snapshot load)")
            }
            // Devices first: a model that cannot be saved refuses the whole save before anything is written.
            var virtioSections: [VirtioSection] = []
            for handle in virtioTransports {
                do throws(VirtioError) {
                    switch handle {
                    case let .pci(transport, _):
                        virtioSections.append(VirtioSection(deviceType: transport.device.deviceType.rawValue, pci: try transport.snapshot()))
                    case let .mmio(transport):
                        virtioSections.append(VirtioSection(deviceType: transport.device.deviceType.rawValue, mmio: try transport.snapshot()))
                    }
                } catch {
                    throw .unsupported(error.description)
                }
            }
            if mkdir(directory, 0o755) != 0, errno != EEXIST {
                throw .writeFailed(path: directory, reason: "mkdir: \(Errno(rawValue: errno))")
            }
            // Linux payloads get KVM's irqchip and PIT (Machine.init), raw images neither.
            let inKernelIRQChip = configuration.payload.isLinux
            var refused: [String] = []
            var file = SnapshotFile()

            // vCPUs: every one is parked outside KVM_RUN, so its state is settled.
            let msrIndices: [UInt32]
            do throws(KVMError) { msrIndices = try vm.system.msrIndexList() } catch { throw .kvm(operation: "list the saveable MSRs", error) }
            var vcpuSections: [VCPUSection] = []
            for vcpu in vcpus {
                let saved: VCPUState
                do throws(KVMError) { saved = try vcpu.saveState(msrIndices: msrIndices, inKernelIRQChip: inKernelIRQChip) } catch {
                    throw .kvm(operation: "save vCPU \(vcpu.id)", error)
                }
                refused += saved.refused.map { "vCPU \(vcpu.id): \($0)" }
                vcpuSections.append(VCPUSection(id: vcpu.id, saved))
            }

            // The VM: the clock always; the PICs, IOAPIC and PIT when KVM emulates them.
            var vmSection = VMSection()
            func optional<T>(_ read: () throws(KVMError) -> T) -> T? {
                do { return try read() } catch { refused.append("VM: \(error)"); return nil }
            }
            vmSection.clock = optional { () throws(KVMError) in try vm.clock() }.map { Data($0.bytes) }
            // The wall-clock time of that clock reading, for restores that advance the guest's clock.
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            let savedAt = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
            if inKernelIRQChip {
                vmSection.picMaster = optional { () throws(KVMError) in try vm.irqchip(.picMaster) }.map { Data($0.bytes) }
                vmSection.picSlave = optional { () throws(KVMError) in try vm.irqchip(.picSlave) }.map { Data($0.bytes) }
                vmSection.ioapic = optional { () throws(KVMError) in try vm.irqchip(.ioapic) }.map { Data($0.bytes) }
                vmSection.pit = optional { () throws(KVMError) in try vm.pitState() }.map { Data($0.bytes) }
            }

            // Memory, sparsely, under a temporary name.
            let memoryPath = directory + "/" + Self.snapshotMemoryFile
            let written: GuestMemory.SparseWriteResult
            switch kind {
            case .full:
                do throws(GuestMemoryError) { written = try memory.writeSparse(to: memoryPath + ".partial") } catch {
                    unlink(memoryPath + ".partial")
                    throw .memory(error)
                }
            case .diff:
                let kvmDirty: [[UInt64]]
                do throws(KVMError) { kvmDirty = try vm.takeDirtyLog(memory) } catch { throw .kvm(operation: "read the dirty-page log", error) }
                do throws(GuestMemoryError) { written = try memory.writeDirtyPages(to: memoryPath + ".partial", kvmDirty: kvmDirty) } catch {
                    unlink(memoryPath + ".partial")
                    throw .memory(error)
                }
            }
            var offset: UInt64 = 0
            let regions = memory.regions.map { region -> MemorySection.Region in
                defer { offset += region.size }
                return MemorySection.Region(guestAddress: region.guestBase.rawValue, size: region.size, fileOffset: offset)
            }

            let machineSection = MachineSection(
                payloadKind: configuration.payload.isLinux ? .linux : .rawImage,
                payloadPath: configuration.payload.path, rawImageMode: configuration.payload.rawMode,
                vcpuCount: configuration.vcpuCount, memoryBytes: configuration.memory.bytes,
                console: configuration.console.rawValue, inKernelIRQChip: inKernelIRQChip,
                savedAtUnixNanoseconds: savedAt, hostRefused: refused,
                configuration: configuration.payload.isLinux ? configuration : nil)
            file.sections.append(.init(name: SnapshotSection.machine, payload: SnapshotSection.encode(machineSection)))
            if let bootID = HostBoot.id {
                file.sections.append(.init(name: SnapshotSection.host, payload: SnapshotSection.encode(HostSection(bootID: bootID))))
            }
            file.sections.append(.init(name: SnapshotSection.memory, payload: SnapshotSection.encode(
                MemorySection(file: Self.snapshotMemoryFile, pageSize: MemoryRegion.pageSize, fileSize: written.fileSize,
                              regions: regions, bytesWritten: written.bytesWritten, kind: kind == .diff ? "Diff" : nil))))
            file.sections.append(.init(name: SnapshotSection.vm, payload: SnapshotSection.encode(vmSection)))
            for (index, section) in vcpuSections.enumerated() {
                file.sections.append(.init(name: SnapshotSection.vcpu(index), payload: SnapshotSection.encode(section)))
            }
            file.sections.append(.init(name: SnapshotSection.serial, payload: SnapshotSection.encode(serial.saveState())))
            file.sections.append(.init(name: SnapshotSection.i8042, payload: SnapshotSection.encode(devices.i8042.saveState())))
            if let rtc {
                file.sections.append(.init(name: SnapshotSection.rtc, payload: SnapshotSection.encode(rtc.saveState())))
            }
            if let vmGenerationID {
                file.sections.append(.init(name: SnapshotSection.vmGenerationID, payload: SnapshotSection.encode(vmGenerationID.state)))
            }
            for (index, section) in virtioSections.enumerated() {
                file.sections.append(.init(name: SnapshotSection.virtio(index), payload: SnapshotSection.encode(section)))
            }

            guard rename(memoryPath + ".partial", memoryPath) == 0 else {
                let error = Errno(rawValue: errno)
                unlink(memoryPath + ".partial")
                throw .writeFailed(path: memoryPath, reason: "rename: \(error)")
            }
            let encoded = file.encoded()
            try SnapshotFile.writeAtomically(encoded, to: directory + "/" + Self.snapshotStateFile)
            if tracking, kind == .full {
                // The next Diff is relative to this snapshot: what was written before it is in this memory file.
                _ = try? vm.takeDirtyLog(memory)
                memory.clearDirtyPageLog()
            }
            for line in refused { logger.info("snapshot: the host refused \(line)") }
            return SnapshotSummary(stateBytes: encoded.count, memoryFileSize: written.fileSize,
                                   memoryBytesWritten: written.bytesWritten, hostRefused: refused)
        }
    }

    /// Builds a machine from the snapshot in `directory`. Everything is checked before any KVM object exists:
    /// the state file's magic, version, length and checksum, every section, and the memory file's size. Guest
    /// RAM is the memory file mapped copy-on-write: nothing is read now, and the files are never modified, so
    /// many machines can be restored from one snapshot at once.
    ///
    /// The new machine is `.stopped` and has never run: call `start()` (not `resume()`) and the guest continues
    /// from the instruction where it was paused. `consoleOutput` receives what it prints from then on.
    ///
    /// `advanceGuestClock`: set the kvm-clock and the TSC forward by the wall-clock time since the save, so a guest's `date`
    /// is right after a restore hours later (a guest using kvm-clock sees time jump, as after a host suspend).
    /// Off by default: the guest's clock then continues from the saved value, as if no time had passed.
    ///
    /// `overrides`: host endpoints that differ from the saved configuration (a TAP or socket per network interface,
    /// the vsock socket path), so clones of one snapshot can run side by side; `overrides.advanceGuestClock` is
    /// the same as `advanceGuestClock`.
    public convenience init(restoringFrom directory: String, timeline: BootTimeline = BootTimeline(),
                            logger: Logger = Logger(label: "swiftlet"), consoleOutput: Int32 = STDOUT_FILENO,
                            metrics: MetricsRegistry = .shared, advanceGuestClock: Bool = false,
                            overrides: SnapshotOverrides = SnapshotOverrides()) throws(SnapshotError) {
        let snapshot = try RestoredSnapshot.load(directory: directory, overrides: overrides)
        do {
            try self.init(configuration: snapshot.configuration, timeline: timeline, logger: logger, consoleOutput: consoleOutput,
                          metrics: metrics, restoring: snapshot)
        } catch .unsupportedSnapshot(let message) {
            throw .unsupported(message)
        } catch {
            throw .machine(error.description)
        }
        do {
            try applySnapshot(snapshot, advanceGuestClock: advanceGuestClock || overrides.advanceGuestClock)
        } catch {
            // The machine never ran; its socket files (vsock, listening network sockets) must not outlive it.
            for file in socketFiles { file.remove() }
            throw error
        }
    }

    /// Gives the freshly built machine its saved state: VM irqchip and PIT first, then every vCPU (its LAPIC
    /// needs the irqchip), then the clock, then the devices.
    private func applySnapshot(_ snapshot: RestoredSnapshot, advanceGuestClock: Bool) throws(SnapshotError) {
        do throws(KVMError) {
            if let irqchips = snapshot.irqchips {
                try vm.setIRQChip(.picMaster, irqchips.picMaster)
                try vm.setIRQChip(.picSlave, irqchips.picSlave)
                try vm.setIRQChip(.ioapic, irqchips.ioapic)
            }
            if let pit = snapshot.pit { try vm.setPITState(pit) }
        } catch {
            throw .kvm(operation: "restore the interrupt controllers", error)
        }
        // The time spent saved, when the guest's clock is to be moved on by it.
        var advance: UInt64 = 0
        if advanceGuestClock {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            let nowNanoseconds = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
            // A host clock set backwards since the save gives no advance, never a negative one.
            advance = nowNanoseconds > snapshot.savedAtUnixNanoseconds ? nowNanoseconds - snapshot.savedAtUnixNanoseconds : 0
        }
        for (vcpu, saved) in zip(vcpus, snapshot.vcpus) {
            let state = advance > 0 ? Self.advancingTSC(of: saved, byNanoseconds: advance) : saved
            do throws(KVMError) {
                for line in try vcpu.restoreState(state) { logger.info("restore: vCPU \(vcpu.id): the host refused \(line)") }
            } catch {
                throw .kvm(operation: "restore vCPU \(vcpu.id)", error)
            }
        }
        if let clock = snapshot.clock {
            do throws(KVMError) { try vm.setClock(clock, advancedBy: advance) } catch { logger.info("restore: the host refused KVM_SET_CLOCK: \(error)") }
        }
        serial.restoreState(snapshot.serial)
        devices.i8042.restoreState(snapshot.i8042)
        if let state = snapshot.rtc { rtc?.restoreState(state) }
        try restoreVirtioDevices(snapshot.virtio, statePath: snapshot.statePath)
        // Last, with every saved state in place: this clone gets its own generation ID and tells its guest.
        if let vmGenerationID {
            do throws(GuestMemoryError) { try vmGenerationID.regenerate(in: memory) } catch {
                throw .invalidSection(path: snapshot.statePath, name: SnapshotSection.vmGenerationID, reason: "writing the new ID: \(error)")
            }
        }
    }

    /// The vCPU state with its time-stamp counter (IA32_TSC, MSR 0x10) moved on by `nanoseconds` at its saved
    /// frequency. A Linux guest on a host with an invariant TSC keeps time with the TSC rather than the kvm-clock
    /// (kvmclock lowers its own rating then), so moving only the kvm-clock would leave its `date` behind; moving
    /// both keeps the two clocks in step. Without a saved frequency the TSC is left as saved.
    static func advancingTSC(of state: VCPUState, byNanoseconds nanoseconds: UInt64) -> VCPUState {
        guard let kHz = state.tscKHz, kHz > 0, let index = state.msrs.firstIndex(where: { $0.index == 0x10 }) else { return state }
        // ticks = ns * kHz / 10^6, in two parts so that years of nanoseconds do not overflow.
        let (whole, overflow) = (nanoseconds / 1_000_000).multipliedReportingOverflow(by: UInt64(kHz))
        guard !overflow else { return state }
        var advanced = state
        advanced.msrs[index].value &+= whole + nanoseconds % 1_000_000 * UInt64(kHz) / 1_000_000
        return advanced
    }

    /// Gives each virtio device, built afresh in the saved order, its transport's and queues' state; devices the
    /// driver had running are activated with their saved queues, and the PCI root re-reads the functions' BARs
    /// (which registers the queue-notify ioeventfds at them).
    private func restoreVirtioDevices(_ sections: [VirtioSection], statePath: String) throws(SnapshotError) {
        guard sections.count == virtioTransports.count else {
            throw .invalidSection(path: statePath, name: SnapshotSection.virtio(0),
                                  reason: "\(sections.count) virtio devices saved, the configuration builds \(virtioTransports.count)")
        }
        for (index, (section, handle)) in zip(sections, virtioTransports).enumerated() {
            let name = SnapshotSection.virtio(index)
            guard section.deviceType == handle.device.deviceType.rawValue else {
                throw .invalidSection(path: statePath, name: name, reason: "it is a device of type \(section.deviceType), "
                                      + "the configuration builds virtio-\(handle.device.deviceType) there")
            }
            do throws(VirtioError) {
                switch handle {
                case let .pci(transport, address):
                    guard let saved = section.pci else { throw .snapshot("it has no virtio-pci state (was it saved with another transport?)") }
                    try transport.restore(saved)
                    pciRoot.refreshDecoding(at: address)
                case let .mmio(transport):
                    guard let saved = section.mmio else { throw .snapshot("it has no virtio-mmio state (was it saved with another transport?)") }
                    try transport.restore(saved)
                }
            } catch {
                throw .invalidSection(path: statePath, name: name, reason: error.description)
            }
        }
    }

    /// The CMOS RTC on the port bus (Platform.build does not keep it elsewhere).
    var rtc: CMOSRTC? { portBus.device(at: CMOSRTC.basePort) as? CMOSRTC }
}

extension MachineConfiguration.Payload {
    var isLinux: Bool { if case .linux = self { return true } else { return false } }
    var path: String {
        switch self {
        case let .linux(linux): return linux.kernelPath
        case let .rawImage(raw): return raw.path
        }
    }
    var rawMode: String? { if case let .rawImage(raw) = self { return raw.mode.rawValue } else { return nil } }
}
