#if canImport(Glibc)
import Glibc
#endif

/// The kinds of thread Swiftlet runs, each with its own allow-list (as Firecracker has one filter per thread
/// kind: vmm, api, vcpu). The lists were found by running real workloads under `strace -f` (tiny guests here, the
/// Debian kernel with disk, network, vsock, console, pause/resume and snapshots in the test host) and reading
/// which thread made which call; docs/security.md has the table and how to redo it.
public enum SeccompThreadKind: String, Sendable, CaseIterable {
    /// `vcpuN`: KVM_RUN and exit dispatch; parks on an eventfd while paused.
    case vcpu
    /// `devices`: virtio queues, disk I/O, TAP and Unix sockets (vsock, socket network links).
    case devices
    /// `console-out` and `console-in`: stdout/stdin and their wake-up eventfds.
    case console
    /// `vmm` (the supervisor that tears the machine down) and `metrics`.
    case vmm
    /// The REST API's event loop (and the threads it starts: lifecycle transitions, snapshot saving).
    case api
    /// The main thread, once the machine runs: it waits for the end or a signal, then exits.
    case main

    /// The label the violation message prints (kept alive for the process: the SIGSYS handler reads it).
    var label: StaticString {
        switch self {
        case .vcpu: "vcpu"
        case .devices: "devices"
        case .console: "console"
        case .vmm: "vmm"
        case .api: "api"
        case .main: "main"
        }
    }
}

/// The allow-lists. Every list is the runtime's calls plus the thread's own.
public enum SeccompPolicy {
    // Request numbers the rules compare against (from <asm-generic/ioctls.h> and <linux/sched.h>).
    static let tiocsti: UInt64 = 0x5412
    static let cloneThread: UInt64 = 0x0001_0000
    // <linux/prctl.h>, <linux/seccomp.h>.
    static let prSetName: UInt64 = 15
    static let prSetNoNewPrivs: UInt64 = 38
    static let setModeFilter: UInt64 = 1

    /// What Swift's runtime and glibc make from any thread: memory, locks, the clock, stderr logging, signal
    /// masks, randomness for hashing seeds, thread exit, and what `fatalError`/`abort` need to report a crash.
    static let runtime: [SyscallRule] = [
        "futex", "mmap", "munmap", "mremap", "mprotect", "madvise", "brk",
        "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall",
        "sched_yield", "sched_getaffinity", "exit", "exit_group", "gettid", "getpid",
        "clock_gettime", "clock_nanosleep", "nanosleep", "gettimeofday",
        "write", "writev", "close", "getrandom", "tgkill",
    ].map { SyscallRule($0) } + [
        // A handler may be installed or reset (abort() resets SIGABRT's), except SIGSYS's: that one reports
        // violations, and code that replaced it could ignore them.
        SyscallRule("rt_sigaction", [.notEqual(argument: 0, UInt64(SIGSYS))]),
    ]

    /// TIOCSTI would push characters into the controlling terminal's input (a known escape from sandboxes that
    /// share a terminal); no thread needs it.
    static let ioctlExceptTIOCSTI = SyscallRule("ioctl", [.notEqual(argument: 1, tiocsti)])

    /// Creating threads: clone only with CLONE_THREAD (no fork), and clone3 answered ENOSYS so glibc falls back
    /// to clone, whose flags are a register the filter can see (clone3's are in memory, which it cannot).
    static let threadCreation: [SyscallRule] = [
        SyscallRule("clone", [.maskedEqual(argument: 0, mask: cloneThread, value: cloneThread)]),
        SyscallRule("clone3", errno: ENOSYS),
        SyscallRule("set_robust_list"), SyscallRule("rseq"),
        // A new thread names itself (pthread_setname_np on the calling thread).
        SyscallRule("prctl", [.equal(argument: 0, prSetName)]),
    ]

    /// What installing a thread's own filter on top of the union takes: PR_SET_NO_NEW_PRIVS and seccomp(2) in
    /// filter mode. Only in the union: once a thread has its own filter it installs no other. (A filter can only
    /// ever narrow what a thread may do, so allowing seccomp gives an attacker nothing.)
    /// What the union also allows for the API server's start in `run --api-sock` (its socket is bound after the
    /// machine started, on the event-loop thread, before that thread's own filter).
    static let apiServerStart: [SyscallRule] = ["bind", "listen"].map { SyscallRule($0) }

    static let filterInstallation: [SyscallRule] = [
        SyscallRule("prctl", [.equal(argument: 0, prSetNoNewPrivs)]),
        SyscallRule("seccomp", [.equal(argument: 0, setModeFilter)]),
    ]

    static let polling: [SyscallRule] = ["poll", "ppoll", "read"].map { SyscallRule($0) }

    /// Virtio device work: disk I/O straight into guest RAM, flushes and discards, TAP frames, Unix sockets for
    /// vsock and socket network links (a guest connecting to host port P makes a Unix socket to PATH_P; an
    /// AF_UNIX socket is the only kind), eventfds and the ioctls that register interrupts and notifications.
    static let deviceWork: [SyscallRule] = [ioctlExceptTIOCSTI] + [
        "readv", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2",
        "fdatasync", "fsync", "fallocate", "lseek", "fcntl", "fstat", "newfstatat", "eventfd2",
        "accept", "accept4", "connect", "sendto", "sendmsg", "recvfrom", "recvmsg", "shutdown",
        "getsockopt", "setsockopt", "getsockname", "getpeername",
    ].map { SyscallRule($0) } + [
        SyscallRule("socket", [.equal(argument: 0, UInt64(AF_UNIX))]),
    ]

    public static func rules(for kind: SeccompThreadKind) -> [SyscallRule] {
        switch kind {
        case .vcpu:
            // KVM_RUN and what an exit needs: IRQ lines, register completions, eventfd writes (interrupts, stop
            // requests), the pause gate's poll. A vCPU also runs device work: a queue notify that exits (no
            // ioeventfd registered yet) reaches the device on the vCPU thread, and so do driver status writes
            // that activate a device; so it gets the device list too (Firecracker's vCPUs activate devices too).
            return runtime + polling + deviceWork
        case .devices:
            return runtime + polling + deviceWork
        case .console:
            return runtime + polling + [ioctlExceptTIOCSTI]
        case .vmm:
            // Teardown: joins, closes, restores the terminal, removes socket files; metrics: writes its file.
            return runtime + polling + [ioctlExceptTIOCSTI] + [
                "unlink", "unlinkat", "lseek", "ftruncate", "fsync", "fdatasync", "pwrite64", "fstat",
                "newfstatat", "statx", "openat", "munlock",
            ].map { SyscallRule($0) }
        case .api:
            // HTTP on the Unix socket, and what requests do after boot: snapshots (create, size, write, sync),
            // drive updates (open and lock an image), the logger and metrics files, lifecycle threads.
            return runtime + polling + threadCreation + [ioctlExceptTIOCSTI] + [
                "epoll_wait", "epoll_pwait", "epoll_ctl", "epoll_create", "epoll_create1", "eventfd2", "pipe2",
                "setpriority",   // the Swift runtime's Dispatch threads lower their own priority
                "timerfd_create", "timerfd_settime",
                "accept", "accept4", "recvmsg", "sendmsg", "recvfrom", "sendto", "shutdown",
                "getsockopt", "setsockopt", "getsockname", "getpeername", "readv",
                "openat", "open", "fstat", "newfstatat", "statx", "lseek", "fcntl", "flock",
                "ftruncate", "fallocate", "fsync", "fdatasync", "pread64", "pwrite64", "preadv", "pwritev",
                "unlink", "unlinkat", "rename", "renameat", "renameat2", "mincore", "signalfd4",
                // A snapshot's directory, and the staging directory of a save to two paths (made, then removed).
                "mkdir", "mkdirat", "rmdir",
            ].map { SyscallRule($0) }
        case .main:
            // Waiting (signalfd, poll), then exit: the last metrics and log lines, socket files removed.
            return runtime + polling + [ioctlExceptTIOCSTI] + [
                "signalfd4", "unlink", "unlinkat", "fstat", "newfstatat", "statx", "lseek", "fsync", "fdatasync",
            ].map { SyscallRule($0) }
        }
    }

    /// The union of every kind's list: installed on every thread at once (TSYNC) when the machine starts, so
    /// threads with no filter of their own (the Swift runtime's pool, NIO's helpers) still have one. Each
    /// thread of a known kind then adds its own, narrower filter on top; a call must pass both.
    public static var process: [SyscallRule] {
        // Plain arrays and a linear scan (~250 rules, ~110 names): order-preserving, and small enough. (It ran at every
        // VM's start until the filters were compiled when the project is built; now scripts/gen-seccomp-filters and
        // the tests use it.)
        var merged: [SyscallRule] = []
        for rule in SeccompThreadKind.allCases.flatMap(rules(for:)) + apiServerStart + filterInstallation {
            let unconditional = rule.comparisons.isEmpty && rule.errno == nil
            if let first = merged.firstIndex(where: { $0.name == rule.name }) {
                let existingUnconditional = merged[first].comparisons.isEmpty && merged[first].errno == nil
                if existingUnconditional || merged.contains(rule) { continue }
                if unconditional {
                    // An unconditional rule replaces the name's conditional ones, in the place of the first.
                    merged[first] = rule
                    var index = first + 1
                    while index < merged.count {
                        if merged[index].name == rule.name { merged.remove(at: index) } else { index += 1 }
                    }
                } else {
                    let last = merged.lastIndex(where: { $0.name == rule.name }) ?? first
                    merged.insert(rule, at: last + 1)
                }
            } else {
                merged.append(rule)
            }
        }
        return merged
    }
}
