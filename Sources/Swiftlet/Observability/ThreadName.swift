// The calling thread's name for log lines, read once per thread and cached.
//
// AUDITED UNSAFE FILE: the cache is a pthread key whose per-thread value is a retained `Box` passed as a raw
// pointer (`Unmanaged`). It is created and read only by its own thread, and released exactly once, by the key's
// destructor when the thread exits.
//
// The name is the kernel's `comm` (what HostThread sets with pthread_setname_np, at most 15 bytes; the main
// thread's is the program's name), read from /proc/thread-self/comm: Glibc's Swift module does not export
// pthread_getname_np. A thread renamed after it first logged keeps the old name in its lines; our threads name
// themselves before doing anything else.

#if canImport(Glibc)
import Glibc
#endif

enum ThreadName {
    private final class Box {
        let name: String
        init(_ name: String) { self.name = name }
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let result = pthread_key_create(&key) { pointer in
            // SAFETY: only `current` stores values under this key, each a +1 retained Box; this runs once per value.
            if let pointer { Unmanaged<Box>.fromOpaque(pointer).release() }
        }
        precondition(result == 0, "pthread_key_create failed: \(result)")
        return key
    }()

    /// The calling thread's name, or "-" if the kernel will not say (Firecracker's placeholder).
    static var current: String {
        if let cached = pthread_getspecific(key) {
            // SAFETY: the value under `key` is always a retained Box stored below, alive until the thread exits.
            return Unmanaged<Box>.fromOpaque(cached).takeUnretainedValue().name
        }
        let name = readComm() ?? "-"
        pthread_setspecific(key, Unmanaged.passRetained(Box(name)).toOpaque())
        return name
    }

    private static func readComm() -> String? { ProcFile.read("/proc/thread-self/comm", maximum: 32) }
}
