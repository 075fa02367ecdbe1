import CHost

/// How many malloc arenas the VMM process keeps.
///
/// glibc gives a thread that allocates while another holds the arena lock an arena of its own (up to 8 per core),
/// and each costs its touched pages (50–130 KiB here) for the life of the process. A VMM has few threads (the vCPUs,
/// the device loops, the console, the API's event loop) that seldom allocate at the same time — exits and queue
/// work reuse their buffers — while a host running many microVMs pays every arena once per VM. One arena took the
/// per-VM memory of 8 idle VMs with the API from 2.02 to 1.83 MiB of PSS (guest RAM left out) on this project's
/// machine; `scripts/bench --only api` has the side-by-side figure.
public enum MallocArenas {
    /// Limits the process to one arena. Call at the top of main, before any thread starts: threads that already
    /// have an arena keep it.
    public static func useOne() {
        _ = chost_set_malloc_arena_max(1)
    }
}
