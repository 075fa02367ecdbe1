#if canImport(Glibc)
import Glibc
#endif

/// Puts the controlling terminal (stdin) into raw mode for the guest console, and restores it.
///
/// In raw mode every key, Ctrl-C included, goes to the guest, as with a serial cable; the VMM is stopped with
/// the escape sequence Ctrl-A X instead. The saved settings are restored on every exit path: normal stop,
/// errors, and termination signals (which are turned into a normal stop).
final class RawTerminal: @unchecked Sendable {
    // SAFETY of @unchecked Sendable: `saved` is written in init only; restore() is idempotent and called from
    // the thread that owns the machine's lifecycle.
    private let fd: Int32
    private var saved = termios()
    private var active = false

    /// Enters raw mode if `fd` is a terminal; otherwise does nothing.
    init(fd: Int32 = STDIN_FILENO) {
        self.fd = fd
        guard isatty(fd) == 1, tcgetattr(fd, &saved) == 0 else { return }
        var raw = saved
        cfmakeraw(&raw)
        // Keep output post-processing so the VMM's own log lines (written with \n) stay readable.
        raw.c_oflag |= tcflag_t(OPOST | ONLCR)
        if tcsetattr(fd, TCSANOW, &raw) == 0 { active = true }
    }

    static var stdinIsTerminal: Bool { isatty(STDIN_FILENO) == 1 }

    func restore() {
        guard active else { return }
        var settings = saved
        tcsetattr(fd, TCSANOW, &settings)
        active = false
    }

    deinit { restore() }
}
