import KVM

/// Which pages a snapshot writes: all of RAM (holes for zero pages), or only those written since the previous one.
public enum SnapshotKind: String, Sendable, Equatable, CaseIterable {
    case full = "Full"
    case diff = "Diff"
}

extension Machine {
    /// Starts tracking the pages written from now on, for `Diff` snapshots (Firecracker's `track_dirty_pages`):
    /// KVM logs the vCPUs' writes (KVM_MEM_LOG_DIRTY_PAGES on every memory slot) and guest memory logs the VMM's
    /// own (device models). Allowed before `start()` and while paused; a second call does nothing. Logging costs
    /// the guest a write-protection fault on the first write to each page after each snapshot.
    public func enableDirtyPageTracking() throws(SnapshotError) {
        try lifecycle.transition.withLock { _ throws(SnapshotError) in
            let current = state
            guard current == .stopped || current == .paused else {
                throw .unsupported("dirty-page tracking can be turned on before the machine starts or while it is paused; it is \(current)")
            }
            guard !memory.isLoggingDirtyPages else { return }
            do throws(KVMError) { try vm.mapGuestMemory(memory, logDirtyPages: true) } catch {
                throw .kvm(operation: "turn on KVM's dirty-page log", error)
            }
            memory.startDirtyPageLog()
        }
    }

    /// Whether `enableDirtyPageTracking()` was called: `Diff` snapshots can be taken.
    public var isTrackingDirtyPages: Bool { memory.isLoggingDirtyPages }
}
