import CAgent
#if canImport(Glibc)
import Glibc
#endif

/// Starts a command through cagent_spawn (fork, set-up and execve in C: see cagent.h for why).
///
/// AUDITED UNSAFE FILE: argv and envp are strdup'd C strings in arrays that live across the one call and are
/// freed after it; the request struct points into them only during the call.
enum Spawner {
    struct Failure: Error {
        /// cagent_spawn's step numbers: 0 fork, 1 session, 2 controlling tty, 3 dup2, 4 chdir, 5 user, 6 execve.
        var step: Int32
        var errno: Int32
    }

    struct Standard {
        var input: Int32
        var output: Int32
        var error: Int32
    }

    /// The child's pid once it has exec'd.
    static func spawn(arguments: [String], environment: [String], workingDirectory: String?,
                      user: (uid: UInt32, gid: UInt32)?, standard: Standard, tty: Bool) throws(Failure) -> pid_t {
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        let cwd = workingDirectory.map { strdup($0) } ?? nil
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
            free(cwd)
        }
        var childErrno: Int32 = 0, childStep: Int32 = 0
        let pid = argv.withUnsafeBufferPointer { argvBuffer in
            envp.withUnsafeBufferPointer { envpBuffer in
                // SAFETY: the buffers outlive the call; cagent_spawn does not keep them (the child has its own
                // copy of the address space).
                var request = cagent_spawn_request(
                    argv: argvBuffer.baseAddress, envp: envpBuffer.baseAddress, cwd: UnsafePointer(cwd),
                    set_user: user == nil ? 0 : 1, uid: user?.uid ?? 0, gid: user?.gid ?? 0,
                    stdin_fd: standard.input, stdout_fd: standard.output, stderr_fd: standard.error, tty: tty ? 1 : 0)
                return cagent_spawn(&request, &childErrno, &childStep)
            }
        }
        guard pid > 0 else { throw Failure(step: childStep, errno: childErrno) }
        return pid
    }
}
