import AgentCore
import AgentProtocol
import CAgent
#if canImport(Glibc)
import Glibc
#endif

// swiftlet-agent: the guest side of `swiftlet exec` and `swiftlet cp` (docs/agent.md). Listens on a vsock port
// (1024 unless --port says otherwise) and serves each connection on a thread of its own until it closes.
// Started by the default guest's /init in the background; messages go to stderr (the console) sparingly.

func say(_ text: String) {
    let line = Array("swiftlet-agent: \(text)\n".utf8)
    _ = try? Descriptor.writeAll(2, line[...])
}

var port = AgentProtocol.defaultPort
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--port":
        guard let value = arguments.popFirst().flatMap({ UInt32($0) }) else {
            say("--port needs a number"); exit(64)
        }
        port = value
    case "--version":
        print(AgentConnection.agentName, "protocol", AgentProtocol.version)
        exit(0)
    case "-h", "--help":
        print("usage: swiftlet-agent [--port N]   (vsock port, default \(AgentProtocol.defaultPort))")
        exit(0)
    default:
        say("unknown argument \(argument) (usage: swiftlet-agent [--port N])"); exit(64)
    }
}

// A host that goes away mid-write must be an EPIPE, not the end of the agent (children get SIG_DFL back).
signal(SIGPIPE, SIG_IGN)

// The vsock transport may still be registering when /init starts the agent: retry for a while.
var listener: Int32 = -1
for attempt in 0..<100 {
    listener = cagent_vsock_listen(port, 64)
    if listener >= 0 { break }
    if attempt == 0 { say("waiting for vsock: \(SystemCallError.text(for: errno))") }
    usleep(100_000)
}
guard listener >= 0 else {
    say("cannot listen on vsock port \(port): \(SystemCallError.text(for: errno))")
    exit(1)
}

while true {
    let connection = cagent_accept(listener)
    if connection < 0 {
        if errno == EINTR || errno == ECONNABORTED { continue }
        say("accept: \(SystemCallError.text(for: errno))")
        usleep(100_000)
        continue
    }
    let serve = { AgentConnection.serve(fd: connection, log: { say($0) }) }
    if !AgentThread.start(serve) { serve() }
}
