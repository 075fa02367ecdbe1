import CSeccomp
#if canImport(Glibc)
import Glibc
#endif

/// What a filter does with a system call off its list.
public enum SeccompAction: String, Sendable, CaseIterable {
    /// SIGSYS, caught by a handler that names the call and the thread on stderr, then exits with 128+SIGSYS (159).
    /// The filters refuse `rt_sigaction(SIGSYS, ...)`, so compromised code cannot take the handler over; blocking
    /// SIGSYS does not help it either (the kernel then kills the process).
    case trap
    /// SECCOMP_RET_KILL_PROCESS, Firecracker's default: the kernel ends the process at once, with no message.
    case kill

    var libseccompAction: UInt32 { self == .trap ? cseccomp_act_trap() : cseccomp_act_kill_process() }
}

/// One allowed system call, optionally only when its arguments match (all comparisons must hold).
public struct SyscallRule: Sendable, Hashable {
    public enum Comparison: Sendable, Hashable {
        case equal(argument: UInt32, UInt64)
        case notEqual(argument: UInt32, UInt64)
        /// `(argument & mask) == value`.
        case maskedEqual(argument: UInt32, mask: UInt64, value: UInt64)
    }

    public let name: String
    public let comparisons: [Comparison]
    /// Answer the call with this errno instead of allowing it (e.g. clone3 → ENOSYS, so glibc falls back to
    /// clone, whose flags a filter can inspect).
    public let errno: Int32?

    public init(_ name: String, _ comparisons: [Comparison] = [], errno: Int32? = nil) {
        precondition(comparisons.count <= 2, "at most two argument comparisons per rule")
        (self.name, self.comparisons, self.errno) = (name, comparisons, errno)
    }
}

/// A failure to build or load a filter. Loading happens at start, so these end the start with a host error.
public enum SeccompError: Error, Equatable, CustomStringConvertible {
    /// libseccomp does not know this system call on this architecture (a typo in a policy list).
    case unknownSyscall(String)
    case libseccomp(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case let .unknownSyscall(name): "seccomp: unknown system call \(name)"
        case let .libseccomp(operation, errno): "seccomp: \(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        }
    }
}

/// A seccomp-BPF allow-list, compiled by libseccomp (the library runc, crun and QEMU use): it resolves names to
/// numbers, checks the architecture in the generated program (a 32-bit `int $0x80` or an x32 call does not slip
/// past the x86-64 numbers) and orders the comparisons. We chose it over hand-written BPF for exactly those
/// details. It compiles the policy when the project is built (`scripts/gen-seccomp-filters`); a VM's start loads
/// the programs (`SeccompPrecompiled`), and the tests compile the policy again to check them.
public struct SeccompFilter: Sendable {
    public let rules: [SyscallRule]

    public init(rules: [SyscallRule]) { self.rules = rules }

    /// The BPF program libseccomp makes of the rules (`struct sock_filter` entries, as the kernel takes them):
    /// what `scripts/gen-seccomp-filters` compiles in, and what the tests compare the compiled-in programs with.
    public func bpfProgram(action: SeccompAction) throws(SeccompError) -> [UInt8] {
        guard let context = seccomp_init(action.libseccompAction) else {
            throw .libseccomp(operation: "seccomp_init", errno: ENOMEM)
        }
        defer { seccomp_release(context) }
        for rule in rules {
            let number = seccomp_syscall_resolve_name(rule.name)
            guard number != __NR_SCMP_ERROR else { throw .unknownSyscall(rule.name) }
            let ruleAction = rule.errno.map { cseccomp_act_errno(UInt16($0)) } ?? cseccomp_act_allow()
            let parts = rule.comparisons.map(Self.encode)
            let first = parts.first ?? (0, 0, 0, 0)
            let second = parts.count > 1 ? parts[1] : (0, 0, 0, 0)
            try check(cseccomp_rule_add(context, ruleAction, number, UInt32(parts.count),
                                        first.0, first.1, first.2, first.3, second.0, second.1, second.2, second.3),
                      "seccomp_rule_add(\(rule.name))")
        }
        // A kernel program has at most 4096 instructions of 8 bytes.
        var buffer = [UInt8](repeating: 0, count: 4096 * 8)
        let length = cseccomp_export_bpf(context, &buffer, buffer.count)
        guard length >= 0 else { throw .libseccomp(operation: "seccomp_export_bpf", errno: -length) }
        return Array(buffer[0..<Int(length)])
    }

    private func check(_ result: Int32, _ operation: String) throws(SeccompError) {
        guard result == 0 else { throw .libseccomp(operation: operation, errno: -result) }
    }

    private static func encode(_ comparison: SyscallRule.Comparison) -> (UInt32, Int32, UInt64, UInt64) {
        switch comparison {
        case let .equal(argument, value): (argument, cseccomp_cmp_eq(), value, 0)
        case let .notEqual(argument, value): (argument, cseccomp_cmp_ne(), value, 0)
        case let .maskedEqual(argument, mask, value): (argument, cseccomp_cmp_masked_eq(), mask, value)
        }
    }
}
