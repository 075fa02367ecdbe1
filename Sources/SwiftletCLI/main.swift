import Swiftlet

// Timestamp first, before argument parsing: the origin of `--boot-timeline`.
let processStart = BootTimeline.now()

// Run as `firecracker` (a symlink to this binary), Swiftlet takes Firecracker's command line.
if CommandLine.arguments.first.map({ $0.split(separator: "/").last == "firecracker" }) == true {
    FirecrackerCommand.main()
} else {
    SwiftletCommand.main()
}
