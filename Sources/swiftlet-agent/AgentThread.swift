#if canImport(Glibc)
import Glibc
#endif

/// A detached POSIX thread per connection (the agent has no Foundation and no concurrency runtime to spare).
///
/// AUDITED UNSAFE FILE: the closure goes through pthread_create's void* as a retained box, released exactly
/// once, by the new thread (or here when the thread could not be created).
enum AgentThread {
    private final class Box {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a detached thread; false when no thread could be created (the caller then runs it).
    static func start(_ body: @escaping () -> Void) -> Bool {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        let result = pthread_create(&thread, &attributes, { argument in
            Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            return false
        }
        return true
    }
}
