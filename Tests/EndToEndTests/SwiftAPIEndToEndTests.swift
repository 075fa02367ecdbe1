import Foundation
import Testing

extension TestHostBootTests {
    /// The example program to run: $SWIFTLET_EXAMPLE_BIN (scripts/test's release build: a debug VMM is much
    /// slower in the emulated test host), else the newer of the release and debug builds.
    static var exampleBinary: String? {
        if let path = ProcessInfo.processInfo.environment["SWIFTLET_EXAMPLE_BIN"], !path.isEmpty { return path }
        let candidates = ["release", "debug"].map { TestHost.root.appendingPathComponent(".build/\($0)/swiftlet-example").path }
            .filter { FileManager.default.isExecutableFile(atPath: $0) }
        func modified(_ path: String) -> Date {
            (try? FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date) ?? .distantPast
        }
        return candidates.max { modified($0) < modified($1) }
    }

    /// Examples/BootAndExec through SwiftletKit in the test host: the default guest (with the agent its initramfs
    /// carries) boots, `uname -a` runs through the agent, its output and status come back, `requestStop()` makes
    /// the guest power off and the delegate hears it.
    @Test("swiftlet-example: SwiftletKit boots the default guest, execs uname -a through the agent, the guest stops on requestStop")
    func swiftAPIExample() throws {
        guard let example = Self.exampleBinary else {
            Issue.record("no swiftlet-example: build it with `swift build --product swiftlet-example`")
            return
        }
        let result = try TestHost.run(["--file", TestHost.cache + "/guest", example, "--console", "uname", "-a"], timeout: 600)
        #expect(result.status == 0, "output:\n\(result.output)")
        // The guest's console (--console, on stderr) shares the test host's terminal with the example's own lines, and
        // its prompt ends without a newline: each expected text is looked for within a line, as the example writes
        // each of them in one write(2).
        let lines = result.output.split(separator: "\n").map(String.init)
        func has(_ text: String) -> Bool { lines.contains { $0.contains(text) } }
        #expect(has("started: running, 1 vCPU, 512 MiB"), "output:\n\(result.output)")
        #expect(has("agent ready after "), "output:\n\(result.output)")
        #expect(has("$ uname -a"), "output:\n\(result.output)")
        let release = try TestHost.guestRelease()
        #expect(lines.contains { $0.contains("Linux ") && $0.contains(release) && $0.contains("x86_64") && !$0.contains("Linux version") },
                "output:\n\(result.output)")
        #expect(has("exit status: 0"), "output:\n\(result.output)")
        #expect(has("delegate: the guest stopped"), "output:\n\(result.output)")
        #expect(lines.contains { $0.contains("stopped: the guest") && $0.hasSuffix("(state stopped)") }, "output:\n\(result.output)")
        for line in lines where line.contains("agent ready after ") || line.contains("(exec took ") { print("swiftlet-example: \(line)") }
    }
}
