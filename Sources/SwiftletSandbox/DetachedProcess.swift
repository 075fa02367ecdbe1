#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// Starts a program in the background, in a session of its own (no controlling terminal: closing the terminal
/// that ran `swiftlet run -d` does not hang it up), with stdin from /dev/null and stdout and stderr appended to a
/// log file, every signal at its default disposition and unblocked, and one inherited file descriptor kept open
/// (the VM's lock, so that the lock is held from before the VMM starts until it exits).
///
/// posix_spawn rather than Foundation's Process, which closes every descriptor but 0-2 in the child and cannot
/// make a new session. The one place in the sandbox code with raw pointers: the argv array for posix_spawn.
enum DetachedProcess {
    /// glibc's POSIX_SPAWN_SETSID (2.26 and later; <spawn.h> defines it only with _GNU_SOURCE, which Swift's Glibc
    /// module does not see): the child calls setsid() before exec.
    static let setSessionFlag: Int32 = 0x80

    static func spawn(executable: String, arguments: [String], logPath: String, keeping keptDescriptor: Int32) throws(SandboxError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO)
        // The caller's thread may block signals (the CLI blocks termination signals to read them); the VMM sets
        // its own up, from a clean state.
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(Self.setSessionFlag | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        // Nothing else of ours may reach the VMM: a caller's descriptor without close-on-exec (a pipe a parent
        // process passed down, such as the other end of our own stdout) would stay open in the VMM for its whole
        // life, and whoever waits for that pipe's end of file (a shell's `$(swiftlet run -d ...)`) would wait for
        // the VM. This process is about to exit, so marking them all close-on-exec costs it nothing.
        let keep = keptDescriptor
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            guard let fd = Int32(entry), fd > STDERR_FILENO, fd != keep else { continue }
            let current = fcntl(fd, F_GETFD)
            if current >= 0 { _ = fcntl(fd, F_SETFD, current | FD_CLOEXEC) }
        }
        // The kept descriptor must survive exec: clear its close-on-exec flag.
        let flags = fcntl(keptDescriptor, F_GETFD)
        guard flags >= 0, fcntl(keptDescriptor, F_SETFD, flags & ~FD_CLOEXEC) == 0 else {
            throw .system(operation: "fcntl(F_SETFD) on the lock", errno: errno)
        }

        let argv = ([executable] + arguments).map { strdup($0) }
        defer { argv.forEach { free($0) } }
        var pointers: [UnsafeMutablePointer<CChar>?] = argv + [nil]
        var pid: pid_t = 0
        // SAFETY: `pointers` is a nil-terminated array of strdup'd C strings that live until after posix_spawn
        // returns (the defer frees them); environ is the process's own environment.
        let result = pointers.withUnsafeMutableBufferPointer { buffer in
            posix_spawn(&pid, executable, &actions, &attributes, buffer.baseAddress!, environ)
        }
        guard result == 0 else { throw .system(operation: "posix_spawn \(executable)", errno: result) }
        return pid
    }
}
