import CSeccomp
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The process's seccomp setting and the two install steps (docs/security.md):
///
/// 1. `Machine.start`, after the machine is built and before any vCPU runs, installs the union of every thread
///    kind's list on every thread of the process at once (SECCOMP_FILTER_FLAG_TSYNC), so no thread — the Swift
///    runtime's pool, NIO's — is left without a filter, and threads created later inherit it.
/// 2. Each thread of a known kind then adds its own list on top (`enterThread`): the vCPU threads before their
///    first KVM_RUN, the device loop, the console threads, the supervisor, the API's event loop, and the main
///    thread once it only waits. A call must pass both filters.
///
/// Off unless the embedding program (the CLI's `--seccomp`) turns it on: a library user's process (a test runner)
/// has threads and needs of its own.
public enum Seccomp {
    private struct State {
        var action: SeccompAction?
        var processFilterInstalled = false
        var probe: SeccompThreadKind?
    }
    private static let state = Mutex(State())

    /// Turns filtering on (`action`) or off (nil) for machines started from now on.
    public static func configure(_ action: SeccompAction?) { state.withLock { $0.action = action } }

    public static var action: SeccompAction? { state.withLock { $0.action } }

    /// For tests of the filters themselves: the first thread of `kind` makes a system call no list allows
    /// (ptrace) right after installing its filter, which must end the process with the violation message.
    public static func probe(_ kind: SeccompThreadKind?) { state.withLock { $0.probe = kind } }

    /// ptrace(2): in no thread's list; what the probe calls.
    static let probeSyscall = 101

    /// Step 1: the union filter on every thread, once per process. No-op while filtering is off.
    static func installProcessFilter() throws(SeccompError) {
        let action = state.withLock { $0.processFilterInstalled ? nil : $0.action }
        guard let action else { return }
        try SeccompPrecompiled.install(nil, action: action)
        state.withLock { $0.processFilterInstalled = true }
    }

    /// Step 2: the calling thread's own list. No-op while filtering is off. A thread that cannot install its
    /// filter ends the process (fail closed: the user asked for filtering, and a thread without it would run the
    /// guest's devices unfiltered); this only happens if the kernel refuses a filter it took moments before.
    ///
    /// Only once the machine has started (step 1 done): a thread that starts earlier (the metrics thread when a
    /// client configures metrics before InstanceStart) keeps the union only, since a filter of its own would make
    /// the union's TSYNC fail (every thread's filter must be an ancestor of the caller's).
    public static func enterThread(_ kind: SeccompThreadKind) {
        guard let action = state.withLock({ $0.processFilterInstalled ? $0.action : nil }) else { return }
        // The Firecracker-format log line names the thread, read once from /proc/thread-self/comm and cached:
        // read it now, while open(2) is still allowed.
        _ = ThreadName.current
        kind.label.withUTF8Buffer { buffer in
            // SAFETY: a StaticString's storage is in the binary's read-only data and lives as long as the process.
            cseccomp_set_thread_label(UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self))
        }
        do {
            try SeccompPrecompiled.install(kind, action: action)
            if state.withLock({ $0.probe == kind }) { _ = cseccomp_raw_syscall(probeSyscall) }
        } catch {
            var line = "swiftlet: cannot install the \(kind.rawValue) thread's seccomp filter: \(error)\n"
            line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
            _exit(1)
        }
    }

    /// The Seccomp mode the kernel reports for every thread of this process (`/proc/self/task/*/status`), by
    /// thread name: 0 none, 2 filter. For tests and `docs/security.md`'s check.
    public static func threadModes(pid: Int32 = getpid()) -> [(name: String, mode: Int)] {
        var result: [(String, Int)] = []
        guard let directory = opendir("/proc/\(pid)/task") else { return [] }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard tid.first?.isNumber == true,
                  let status = ProcFile.read("/proc/\(pid)/task/\(tid)/status") else { continue }
            var name = "?", mode = -1
            for line in status.split(separator: "\n") {
                if line.hasPrefix("Name:") { name = line.dropFirst(5).trimmingCharacters(in: " \t") }
                if line.hasPrefix("Seccomp:") { mode = Int(line.dropFirst(8).trimmingCharacters(in: " \t")) ?? -1 }
            }
            result.append((name, mode))
        }
        return result
    }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
