import Foundation
import Testing

extension TestHostBootTests {
    /// The agent binary to put in the guest: $SWIFTLET_AGENT_BIN, else the release build beside the swiftlet
    /// being tested, else the one scripts/setup built into the guest directory.
    static var agentBinary: String? {
        if let path = ProcessInfo.processInfo.environment["SWIFTLET_AGENT_BIN"], !path.isEmpty { return path }
        let beside = URL(fileURLWithPath: TestHost.swiftletBinary).deletingLastPathComponent().appendingPathComponent("swiftlet-agent").path
        for path in [beside, TestHost.guest("swiftlet-agent")] where FileManager.default.isExecutableFile(atPath: path) {
            // Only a static build runs in the guest (a debug build next to a debug swiftlet is dynamic).
            if (try? TestHost.tool("/usr/bin/ldd", [path])) == nil { return path }
        }
        return nil
    }

    /// One test-host boot of the default guest with `--vsock`, the agent and /init of this checkout laid over its
    /// initramfs; then, from the test host, `swiftlet exec` and `swiftlet cp` through the VM's vsock socket:
    /// stdin piped in and a non-zero status back, a missing command (127), 32 MiB copied in and out md5-equal,
    /// 20 `exec true` round trips timed; then bad input: a copy into a missing directory and into a full guest
    /// file system, and a guest that powers off in the middle of an exec.
    @Test("swiftlet exec / cp through swiftlet-agent: stdin and exit status, 127 for a missing command, 32 MiB in and out intact, a full guest disk, a guest dying mid-exec")
    func agentExecAndCopy() throws {
        guard let agent = Self.agentBinary else {
            Issue.record("no static swiftlet-agent: build it with `swift build -c release --product swiftlet-agent` or run scripts/setup")
            return
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let overlay = directory.appendingPathComponent("overlay")
        try FileManager.default.createDirectory(at: overlay.appendingPathComponent("usr/bin"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: agent, toPath: overlay.appendingPathComponent("usr/bin/swiftlet-agent").path)
        try FileManager.default.copyItem(atPath: TestHost.root.appendingPathComponent("scripts/initramfs/guest-init").path,
                                         toPath: overlay.appendingPathComponent("init").path)
        let overlayArchive = directory.appendingPathComponent("overlay.cpio").path
        try TestHost.tool("/bin/sh", ["-c", "cd '\(overlay.path)' && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > '\(overlayArchive)'"])
        let initrd = directory.appendingPathComponent("initrd.cpio").path
        try TestHost.tool("/bin/sh", ["-c", "cat '\(TestHost.guest("initramfs.cpio"))' '\(overlayArchive)' > '\(initrd)'"])

        let swiftlet = TestHost.swiftletBinary
        let script = directory.appendingPathComponent("agent.sh").path
        try """
            trap '' PIPE
            mkfifo /tmp/ag-in
            \(swiftlet) run --initrd \(initrd) --vsock cid=3,socket=/tmp/a.sock < /tmp/ag-in > /tmp/ag-out 2>&1 &
            S=$!
            exec 3>/tmp/ag-in
            wait_for() { n=0; until grep -q "$1" /tmp/ag-out || ! kill -0 $S 2>/dev/null || [ $n -gt 600 ]; do sleep 0.2; n=$((n+1)); done; }
            wait_for '~ #'
            X="\(swiftlet) exec --vsock-socket /tmp/a.sock"
            C="\(swiftlet) cp --vsock-socket /tmp/a.sock"
            printf 'hello agent\\n' | $X -i vm -- sh -c 'tr a-z A-Z; echo to-stderr >&2; exit 7' > /tmp/exec.out 2> /tmp/exec.err
            echo "exec-status=$?"
            echo "exec-stdout=$(cat /tmp/exec.out)"
            echo "exec-stderr=$(cat /tmp/exec.err)"
            $X vm -- no-such-command 2> /tmp/missing.err
            echo "missing-status=$?"
            echo "missing-stderr=$(cat /tmp/missing.err)"
            printf 'tty; echo tty-$((6*7)); exit 5\n' | $X -i -t vm -- sh > /tmp/tty.out 2>&1
            echo "tty-status=$?"
            sed 's/^/tty-out: /' /tmp/tty.out
            head -c 33554432 /dev/urandom > /tmp/big
            $C /tmp/big vm:/tmp/; echo "cp-in-status=$?"
            $X vm -- md5sum /tmp/big | sed 's/^/guest-md5 /'
            $C vm:/tmp/big /tmp/big.back; echo "cp-out-status=$?"
            echo "host-md5 $(md5sum < /tmp/big)"
            echo "back-md5 $(md5sum < /tmp/big.back)"
            $C /tmp/big vm:/no/such/dir/big 2> /tmp/cp-missing.err; echo "cp-missing-status=$?"
            echo "cp-missing-stderr=$(cat /tmp/cp-missing.err)"
            # A full guest file system: a 1 MiB tmpfs in the guest, 32 MiB copied into it.
            $X vm -- sh -c 'mkdir -p /small && mount -t tmpfs -o size=1m tmpfs /small'
            $C /tmp/big vm:/small/ 2> /tmp/cp-full.err; echo "cp-full-status=$?"
            echo "cp-full-stderr=$(cat /tmp/cp-full.err)"
            # busybox date has no %N: the test host's uptime has 10 ms steps, enough for 20 round trips.
            start=$(cut -d' ' -f1 /proc/uptime)
            i=0; while [ $i -lt 20 ]; do $X vm -- true || echo exec-true-failed; i=$((i+1)); done
            end=$(cut -d' ' -f1 /proc/uptime)
            echo "exec-true-20-ms=$(echo "$start $end" | awk '{ printf "%d", ($2 - $1) * 1000 }')"
            # The guest dies in the middle of an exec: the command powers it off after its first line.
            $X vm -- sh -c 'echo before-the-end; sync; poweroff -f; sleep 30' > /tmp/dies.out 2> /tmp/dies.err
            echo "dies-status=$?"
            echo "dies-stdout=$(cat /tmp/dies.out)"
            echo "dies-stderr=$(cat /tmp/dies.err)"
            wait $S; echo "swiftlet-status=$?"
            echo "--- swiftlet"; cat /tmp/ag-out
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try TestHost.run(["--file", swiftlet, "--file", TestHost.cache + "/guest", "--file", initrd,
                                       "--file", script, "sh", script], timeout: 600)
        #expect(result.status == 0, "output:\n\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        func value(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }

        #expect(value("exec-status=") == "7", "output:\n\(result.output)")
        #expect(value("exec-stdout=") == "HELLO AGENT")
        #expect(value("exec-stderr=") == "to-stderr")
        #expect(value("missing-status=") == "127", "output:\n\(result.output)")
        #expect(value("missing-stderr=") == "swiftlet: exec: no-such-command: No such file or directory")
        // -t: a shell on a pseudo-terminal in the guest, fed from a pipe here; its status comes back.
        #expect(value("tty-status=") == "5", "output:\n\(result.output)")
        #expect(lines.contains { $0.hasPrefix("tty-out: /dev/pts/") }, "output:\n\(result.output)")
        #expect(lines.contains { $0.hasPrefix("tty-out: ") && $0.hasSuffix("tty-42") })
        #expect(value("cp-in-status=") == "0")
        #expect(value("cp-out-status=") == "0")
        let host = value("host-md5 ")?.prefix(32)
        #expect(host != nil && host == value("back-md5 ")?.prefix(32), "output:\n\(result.output)")
        #expect(host != nil && host == value("guest-md5 ")?.prefix(32), "output:\n\(result.output)")
        #expect(value("cp-missing-status=") == "1")
        #expect(value("cp-missing-stderr=")?.contains("/no/such/dir") == true, "output:\n\(result.output)")
        #expect(value("cp-full-status=") == "1", "output:\n\(result.output)")
        #expect(value("cp-full-stderr=")?.contains("No space left on device") == true, "output:\n\(result.output)")
        // The guest died mid-exec: what it printed arrived, then a clear error and a failure status.
        #expect(value("dies-stdout=") == "before-the-end", "output:\n\(result.output)")
        #expect(value("dies-status=") == "1", "output:\n\(result.output)")
        #expect(value("dies-stderr=")?.contains("the connection to the guest's agent was lost (did the guest stop?)") == true,
                "output:\n\(result.output)")
        #expect(!result.output.contains("exec-true-failed"))
        if let total = value("exec-true-20-ms=") { print("exec true: 20 round trips in \(total) ms") }
        #expect(result.output.contains("swiftlet: the guest powered off"))
    }
}
