// The Swift runtime's floor for scripts/bench: a static Swift executable, linked like the release `swiftlet`,
// that does nothing but what the harness looks for — write "S" to standard output, then exit ("exit") or wait to
// be killed ("wait", for the memory scenario). No VMM at all: its start-up time and resident memory are what any
// Swift program pays on this machine before doing work (exec, glibc's and the Swift runtime's initialisers, the
// pages of the binary they touch), so Swiftlet's figures can be read against it as well as against the C floor.
#if canImport(Glibc)
import Glibc
#endif

var marker: UInt8 = UInt8(ascii: "S")
_ = write(STDOUT_FILENO, &marker, 1)
if CommandLine.arguments.dropFirst().first == "wait" {
    while true { pause() }
}
