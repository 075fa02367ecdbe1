import CSeccomp
#if canImport(Glibc)
import Glibc
#endif

/// The policy's filters as BPF programs compiled into the binary (Sources/CSeccomp/seccomp_filters.inc), so that a
/// VM's start loads them instead of having libseccomp compile them.
///
/// Why: compiling the union and a thread's own list took ~0.4 ms and ~0.2 ms of every start (the union on the main
/// thread before the vCPU runs, the vCPU's own list on its way to the first KVM_RUN — docs/performance.md), and
/// left libseccomp's heap pages behind. The programs are exactly what libseccomp makes of `SeccompPolicy`:
/// `scripts/gen-seccomp-filters` writes them with libseccomp, and `SeccompPrecompiledTests` compiles the policy
/// again and fails if any program differs from the compiled-in one (a list changed without regenerating).
enum SeccompPrecompiled {
    /// The filters, in the compiled-in table's order: the union (`SeccompPolicy.process`), then each thread kind.
    static var filters: [(name: String, rules: [SyscallRule])] {
        [("process", SeccompPolicy.process)] + SeccompThreadKind.allCases.map { ($0.rawValue, SeccompPolicy.rules(for: $0)) }
    }

    /// The actions, in the table's order.
    static let actions: [SeccompAction] = [.trap, .kill]

    /// The table index of the union (nil) or of a thread kind's own filter.
    static func index(of kind: SeccompThreadKind?) -> Int32 {
        guard let kind else { return 0 }
        return Int32(SeccompThreadKind.allCases.firstIndex(of: kind)!) + 1
    }

    static func actionIndex(_ action: SeccompAction) -> Int32 { action == .trap ? 0 : 1 }

    /// Loads the union (`kind` nil, on every thread: TSYNC) or a thread kind's own filter (the calling thread).
    static func install(_ kind: SeccompThreadKind?, action: SeccompAction) throws(SeccompError) {
        if action == .trap {
            let result = cseccomp_install_violation_reporter()
            guard result == 0 else { throw .libseccomp(operation: "sigaction(SIGSYS)", errno: -result) }
        }
        let result = cseccomp_install_precompiled(index(of: kind), actionIndex(action), kind == nil ? 1 : 0)
        if result < 0 {
            throw .libseccomp(operation: "seccomp(SECCOMP_SET_MODE_FILTER) of the \(kind?.rawValue ?? "process") filter",
                              errno: Int32(-result))
        }
        if result > 0 {
            // TSYNC names a thread whose filters are not an ancestor of ours (it installed one of its own).
            throw .libseccomp(operation: "seccomp(TSYNC): thread \(result) has a filter of its own; synchronising",
                              errno: ESRCH)
        }
    }
}
