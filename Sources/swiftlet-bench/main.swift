// swiftlet-bench: `swiftlet run --raw` reduced to what a raw benchmark guest needs, without swift-argument-parser
// (which brings FoundationEssentials into the process) and without the log handler's formatting. scripts/bench
// runs it beside `swiftlet` to show how much of Swiftlet's start-up time and memory is the library itself and how
// much is the CLI's dependencies (docs/performance.md). Not a user-facing tool.
//
//   swiftlet-bench IMAGE [user|long] [MEMORY_MIB]      exit status as `swiftlet run`
import Swiftlet
#if canImport(Glibc)
import Glibc
#endif

let processStart = BootTimeline.now()

func fail(_ message: String) -> Never {
    var line = "swiftlet-bench: \(message)\n"
    line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    exit(1)
}

let arguments = CommandLine.arguments
guard arguments.count >= 2 else { fail("usage: swiftlet-bench IMAGE [user|long] [MEMORY_MIB]") }
guard let mode = RawImagePayload.Mode(rawValue: arguments.count > 2 ? arguments[2] : "user") else { fail("mode must be real, long or user") }
guard let mebibytes = UInt64(arguments.count > 3 ? arguments[3] : "128") else { fail("memory must be a number of MiB") }

let configuration = MachineConfiguration(payload: .rawImage(RawImagePayload(path: arguments[1], mode: mode)),
                                         memory: .mebibytes(mebibytes))
let timeline = BootTimeline(origin: processStart)
do {
    let machine = try Machine(configuration: configuration, timeline: timeline)
    let reason = machine.run(timeout: nil, attachConsoleInput: false)
    var report = timeline.report + "\n"
    report.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
    exit(reason.exitCode)
} catch {
    fail("\(error)")
}
