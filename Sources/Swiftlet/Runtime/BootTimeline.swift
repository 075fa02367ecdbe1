import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Monotonic timestamps of a boot's milestones, for `--boot-timeline`.
///
/// The origin is the earliest moment Swiftlet's code runs (`BootTimeline.processStart`, set by the CLI at the
/// top of main); dynamic loading before that is not included.
public final class BootTimeline: Sendable {
    public enum Milestone: Int, CaseIterable, Sendable {
        case apiReady, instanceStart, machineBuilt, firstGuestEntry, firstConsoleByte, stopped

        /// Milestones only a control-plane start has; the report leaves them out when not reached.
        var isControlPlane: Bool { self == .apiReady || self == .instanceStart }

        var label: String {
            switch self {
            case .apiReady: return "API socket answering"
            case .instanceStart: return "InstanceStart received"
            case .machineBuilt: return "VM built (memory, kernel, devices)"
            case .firstGuestEntry: return "first guest instruction (first KVM_RUN)"
            case .firstConsoleByte: return "first console byte"
            case .stopped: return "guest stopped"
            }
        }
    }

    public let origin: UInt64
    private let marks = Mutex<[UInt64?]>(Array(repeating: nil, count: Milestone.allCases.count))

    public init(origin: UInt64 = BootTimeline.now()) { self.origin = origin }

    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Records `milestone` the first time only.
    public func mark(_ milestone: Milestone) {
        let time = Self.now()
        marks.withLock { if $0[milestone.rawValue] == nil { $0[milestone.rawValue] = time } }
    }

    /// Nanoseconds from the origin to `milestone`, if reached.
    public func elapsed(_ milestone: Milestone) -> UInt64? {
        marks.withLock { $0[milestone.rawValue] }.map { $0 &- origin }
    }

    /// The report printed at exit.
    public var report: String {
        var lines = ["boot timeline (ms since swiftlet started):"]
        for milestone in Milestone.allCases {
            if milestone.isControlPlane, elapsed(milestone) == nil { continue }
            let value = elapsed(milestone).map { formatMilliseconds($0) } ?? "—"
            lines.append("  \(value.leftPadded(to: 10, with: " "))  \(milestone.label)")
        }
        return lines.joined(separator: "\n")
    }

    private func formatMilliseconds(_ nanoseconds: UInt64) -> String {
        let tenths = (nanoseconds + 50_000) / 100_000   // rounded to 0.1 ms
        return "\(tenths / 10).\(tenths % 10)"
    }
}
