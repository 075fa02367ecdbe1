import Swiftlet
#if canImport(Glibc)
import Glibc
#endif

// Timestamp first, before argument parsing: the origin of `--boot-timeline`.
let processStart = BootTimeline.now()

// A reader that goes away (`swiftlet run | head`) must not kill the VMM: writes then fail with EPIPE, which the
// console output says once in the log before discarding the guest's output (sockets use MSG_NOSIGNAL anyway).
signal(SIGPIPE, SIG_IGN)

// One malloc arena for every thread: per-VM memory, not malloc's concurrency, is what many microVMs cost
// (MallocArenas says why and what it measured).
MallocArenas.useOne()

// Run as `firecracker` (a symlink to this binary), Swiftlet takes Firecracker's command line.
if CommandLine.arguments.first.map({ $0.split(separator: "/").last == "firecracker" }) == true {
    FirecrackerCommand.main()
} else if let restore = RestoreFastPath.request(CommandLine.arguments) {
    // `swiftlet restore DIR`: the common form of a restore skips the general parser (RestoreFastPath says why).
    RestoreFastPath.run(restore)
} else {
    SwiftletCommand.main()
}
