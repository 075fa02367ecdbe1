import CSeccomp
#if canImport(Glibc)
import Glibc
#endif

/// Puts the controlling terminal (stdin) into raw mode for the guest console, and restores it.
///
/// In raw mode every key, Ctrl-C included, goes to the guest, as with a serial cable; the VMM is stopped with
/// the escape sequence Ctrl-A X instead. The saved settings are restored on every exit path: normal stop,
/// errors, and termination signals (which are turned into a normal stop).
public final class RawTerminal: @unchecked Sendable {
    // SAFETY of @unchecked Sendable: `saved` is written in init only; restore() is idempotent and called from
    // the thread that owns the machine's lifecycle.
    private let fd: Int32
    private var saved = termios()
    private var active = false

    /// Enters raw mode if `fd` is a terminal; otherwise does nothing.
    public init(fd: Int32 = STDIN_FILENO) {
        self.fd = fd
        guard isatty(fd) == 1, tcgetattr(fd, &saved) == 0 else { return }
        var raw = saved
        cfmakeraw(&raw)
        // Keep output post-processing so the VMM's own log lines (written with \n) stay readable.
        raw.c_oflag |= tcflag_t(OPOST | ONLCR)
        if tcsetattr(fd, TCSANOW, &raw) == 0 {
            active = true
            FatalSignalRestore.install(fd: fd, settings: saved)
        }
    }

    public static var stdinIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }

    public func restore() {
        guard active else { return }
        var settings = saved
        tcsetattr(fd, TCSANOW, &settings)
        FatalSignalRestore.uninstall()
        active = false
    }

    deinit { restore() }
}

/// Restores the terminal when a signal whose default action ends the process arrives while it is raw (SIGQUIT
/// from `kill`, SIGABRT, a crash): without this the user's shell is left in raw mode. The termination signals
/// (SIGINT, SIGTERM, SIGHUP) are not among them: they are blocked and turned into a clean stop; nor SIGUSR1 (the
/// vCPU kick) or SIGPIPE (ignored by the CLI).
///
/// The handler does only async-signal-safe things: tcsetattr, sigaction and raise. It puts back the action that
/// was there before (the default, or the Swift runtime's crash backtracer) and raises the signal again, so the
/// process still ends as it would have, with the same status.
enum FatalSignalRestore {
    static let numbers: [Int32] = [SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS, SIGALRM, SIGUSR2,
                                   SIGVTALRM, SIGPROF, SIGXCPU, SIGPWR, SIGSTKFLT, SIGIO]

    // Written only by install/uninstall, on the lifecycle's thread, before the handler is installed or after it
    // is removed; the handler only reads them.
    nonisolated(unsafe) private static var terminalFD: Int32 = -1
    nonisolated(unsafe) private static var settings = termios()
    nonisolated(unsafe) private static var previous: [sigaction] = Array(repeating: sigaction(), count: signalCount)
    nonisolated(unsafe) private static var installed = false

    private static let signalCount = 65   // signal numbers are below _NSIG (65 on Linux)

    /// SIGSYS belongs to the seccomp reporter while filters are on (it restores the terminal itself).
    private static var handled: [Int32] {
        Seccomp.action == nil ? numbers : numbers.filter { $0 != SIGSYS }
    }

    static func install(fd: Int32, settings saved: termios) {
        guard !installed else { return }
        terminalFD = fd
        settings = saved
        var remembered = saved
        cseccomp_remember_terminal(fd, &remembered)
        for signal in handled {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in
                var restored = FatalSignalRestore.settings
                if FatalSignalRestore.terminalFD >= 0 { tcsetattr(FatalSignalRestore.terminalFD, TCSANOW, &restored) }
                var before = FatalSignalRestore.previous[Int(signal)]
                sigaction(signal, &before, nil)
                raise(signal)   // blocked while this handler runs: delivered, to the previous action, on return
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(signal, &action, &previous[Int(signal)])
            if unsafeBitCast(previous[Int(signal)].__sigaction_handler.sa_handler, to: Int.self) == 1 {   // SIG_IGN
                // Ignored by our parent's choice: it ends nothing, so leave it ignored.
                sigaction(signal, &previous[Int(signal)], nil)
            }
        }
        // A parent may have left some of them blocked (a test runner, a supervisor); blocked, they would stay
        // pending and never restore anything. Unblocked here, in the lifecycle's thread, before the machine's
        // threads exist: they inherit the mask, so every thread can take them.
        var mask = sigset_t()
        sigemptyset(&mask)
        for signal in handled { sigaddset(&mask, signal) }
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
        installed = true
    }

    static func uninstall() {
        guard installed else { return }
        for signal in handled { sigaction(signal, &previous[Int(signal)], nil) }
        cseccomp_remember_terminal(-1, nil)
        installed = false
        terminalFD = -1
    }
}
