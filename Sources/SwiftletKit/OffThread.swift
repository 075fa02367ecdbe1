import Swiftlet

/// Blocking work for async callers. Swift's concurrency pool has one thread per core (two on the project's
/// machines): a pause waiting for vCPUs, a kernel being read or an agent's reply being awaited must never hold
/// one of them. Each call runs its body on a fresh `HostThread` and resumes the caller with the result.
enum OffThread {
    static func run<T: Sendable, E: Error>(_ name: String, _ body: @escaping @Sendable () throws(E) -> T,
                                           threadFailure: @Sendable (MachineError) -> E) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            do throws(MachineError) {
                let thread = try HostThread(name: name) {
                    do throws(E) { continuation.resume(returning: .success(try body())) }
                    catch { continuation.resume(returning: .failure(error)) }
                }
                thread.detach()
            } catch {
                continuation.resume(returning: .failure(threadFailure(error)))
            }
        }
        return try result.get()
    }

    /// For bodies that cannot fail.
    static func run<T: Sendable>(_ name: String, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            do {
                let thread = try HostThread(name: name) { continuation.resume(returning: body()) }
                thread.detach()
            } catch {
                // No thread to be had: run it here rather than not at all.
                continuation.resume(returning: body())
            }
        }
    }
}
