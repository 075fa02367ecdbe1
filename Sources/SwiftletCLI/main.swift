import Swiftlet

// Timestamp first, before argument parsing: the origin of `--boot-timeline`.
let processStart = BootTimeline.now()
SwiftletCommand.main()
