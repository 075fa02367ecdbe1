import CHost
import KVM
import Virtio
#if canImport(Glibc)
import Glibc
#endif

/// A POSIX thread running a closure, and the signal used to kick vCPU threads out of KVM_RUN.
///
/// AUDITED UNSAFE FILE: passes a retained closure box through pthread_create's void* argument; the box is
/// released exactly once, by the new thread. The box's semaphore is allocated and freed by the creator, which
/// frees it only after the new thread's one `sem_post` (sem_post touches nothing after waking the waiter).
public final class HostThread: @unchecked Sendable {
    // SAFETY of @unchecked Sendable: `thread` is written once in init, before the object is shared.
    private var thread = pthread_t()

    private final class Box {
        let name: String
        let body: () -> Void
        /// Posted by the new thread once it has its name; the creator waits for it. Freed by the creator.
        let named: UnsafeMutablePointer<sem_t>
        init(name: String, named: UnsafeMutablePointer<sem_t>, _ body: @escaping () -> Void) {
            (self.name, self.named, self.body) = (name, named, body)
        }
    }

    /// Starts `body` on a new thread named `name` (visible in `top -H` and /proc/PID/task/*/comm), and returns
    /// once the thread carries that name: whoever lists the threads right after (a test, `top -H`, a tool looking
    /// for Firecracker's `fc_vcpu 0`) sees it, never the creator's name the thread starts with.
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(MachineError) {
        let named = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        sem_init(named, 0, 0)
        defer { sem_destroy(named); named.deallocate() }
        let box = Unmanaged.passRetained(Box(name: String(name.prefix(15)), named: named, body)).toOpaque()
        let result = pthread_create(&thread, nil, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            // The thread names itself: for the calling thread glibc uses prctl(PR_SET_NAME), for another one
            // it writes /proc/self/task/TID/comm, whose dentries the kernel must then prune when the thread
            // exits (measurably slow on a nested host, at every VM start and stop).
            _ = chost_set_thread_name(pthread_self(), box.name)
            sem_post(box.named)  // the last use of the semaphore here: the creator frees it after its wait
            box.body()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw .threadCreationFailed(name: name, errno: result)
        }
        while sem_wait(named) != 0 && errno == EINTR {}
    }

    public func join() { pthread_join(thread, nil) }

    /// Lets the thread's resources go when it ends, for a thread nobody joins.
    public func detach() { pthread_detach(thread) }

    /// Interrupts a blocking system call in this thread (KVM_RUN returns EINTR).
    func kick() { pthread_kill(thread, KickSignal.number) }
}

/// SIGUSR1 with an empty handler installed *without* SA_RESTART: delivering it to a vCPU thread makes KVM_RUN
/// return EINTR, which the run loop reads as "check whether to stop". The handler does nothing, so it is
/// trivially async-signal-safe.
enum KickSignal {
    static let number = SIGUSR1

    static func install() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(number, &action, nil)
    }

    /// Lets the kick reach the calling thread. vCPU threads call this first: a thread inherits its creator's
    /// signal mask, and a library caller's thread (a Dispatch worker, a test runner's thread) may have every
    /// signal blocked, which would make KVM_RUN impossible to interrupt.
    static func unblockInCurrentThread() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, number)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }
}

/// The termination signals the VMM handles by stopping the guest cleanly. They are blocked in every thread
/// and read synchronously from a signalfd by the thread that waits for the machine to stop.
public enum TerminationSignals {
    public static let numbers: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    public static var set: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in numbers { sigaddset(&set, signal) }
        return set
    }

    /// Blocks the termination signals in the calling thread (and so in threads it creates afterwards).
    public static func block() {
        var mask = set
        pthread_sigmask(SIG_BLOCK, &mask, nil)
    }

    /// Blocks until `event` is signalled (returns nil) or a blocked termination signal arrives (returns its
    /// number, consumed). For a main thread that waits for something else to happen first, such as a VM to be
    /// started through the API.
    public static func wait(until event: EventFD) -> Int32? {
        var mask = set
        let signalFD = signalfd(-1, &mask, Int32(SFD_CLOEXEC))
        defer { if signalFD >= 0 { close(signalFD) } }
        var fds = [pollfd(fd: event.fd.rawValue, events: Int16(POLLIN), revents: 0),
                   pollfd(fd: signalFD, events: Int16(POLLIN), revents: 0)]
        while true {
            let ready = poll(&fds, signalFD >= 0 ? 2 : 1, -1)
            if ready < 0 { if errno == EINTR { continue }; return nil }
            if fds[0].revents != 0 { return nil }
            if signalFD >= 0, fds[1].revents & Int16(POLLIN) != 0 {
                var info = signalfd_siginfo()
                if read(signalFD, &info, MemoryLayout<signalfd_siginfo>.size) == MemoryLayout<signalfd_siginfo>.size {
                    return Int32(info.ssi_signo)
                }
            }
        }
    }

    /// Restores default delivery, e.g. for a library user after the machine stopped.
    public static func unblock() {
        var mask = set
        pthread_sigmask(SIG_UNBLOCK, &mask, nil)
    }
}

/// Watches for the termination signals while a machine is being built, before `waitUntilStopped` reads them:
/// unpacking a kernel or waiting for a socket peer takes seconds, and a signal then must neither kill the process
/// silently nor go unanswered until the build ends. The signals must already be blocked in every thread
/// (`TerminationSignals.block()` first thing); a thread of its own reads them from a signalfd, removes the socket
/// files this process's listeners created so far (no machine owns them yet) and calls `onSignal` with the number,
/// which is expected to end the process. `finish()` ends the watch, leaving later signals pending for the machine.
public final class StartUpSignalWatch: Sendable {
    private let done: EventFD
    private let thread: HostThread

    public init(onSignal: @escaping @Sendable (Int32) -> Void) throws(MachineError) {
        let done: EventFD
        do { done = try EventFD() } catch { throw .kvm(error) }
        self.done = done
        thread = try HostThread(name: "start-up") {
            guard let signal = TerminationSignals.wait(until: done) else { return }
            OwnedSocketFile.removeAllLive()
            onSignal(signal)
        }
    }

    /// Ends the watch and waits for its thread (which may be running `onSignal`).
    public func finish() {
        done.signal()
        thread.join()
    }
}
