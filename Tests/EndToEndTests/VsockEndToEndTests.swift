import Foundation
import Testing

extension TestHostBootTests {
    /// One test-host boot: swiftlet runs the default guest with `--vsock cid=3,socket=/tmp/v.sock`; the guest's
    /// own vsock driver (vmw_vsock_virtio_transport) talks to our device, and vsock-echo (scripts/tools) plays
    /// both ends: an echo server in the guest on port 5000 and one in the test host on /tmp/v.sock_6000, a host
    /// client through the device socket (CONNECT 5000) and a guest client to CID 2 port 6000, 1 MiB of random
    /// bytes each way, compared by MD5. Then 16 MiB host → guest into a sink, whose rate the guest reports.
    @Test("--vsock cid=3,socket=/tmp/v.sock: 1 MiB echoed host → guest listener and guest → host listener, intact; host → guest rate")
    func vsockEchoBothWays() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-vsock-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        // vsock-echo built from this checkout and laid over the default initramfs (the kernel unpacks both
        // archives), so the test does not depend on when scripts/setup last rebuilt the shared guest image.
        let tool = directory.appendingPathComponent("vsock-echo").path
        try TestHost.tool("/usr/bin/gcc", ["-static", "-O2", "-o", tool, TestHost.root.appendingPathComponent("scripts/tools/vsock-echo.c").path])
        let overlay = directory.appendingPathComponent("overlay")
        try FileManager.default.createDirectory(at: overlay.appendingPathComponent("usr/bin"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: tool, toPath: overlay.appendingPathComponent("usr/bin/vsock-echo").path)
        let overlayArchive = directory.appendingPathComponent("overlay.cpio").path
        try TestHost.tool("/bin/sh", ["-c", "cd '\(overlay.path)' && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet > '\(overlayArchive)'"])
        let initrd = directory.appendingPathComponent("initrd.cpio").path
        try TestHost.tool("/bin/sh", ["-c", "cat '\(TestHost.guest("initramfs.cpio"))' '\(overlayArchive)' > '\(initrd)'"])

        let swiftlet = TestHost.swiftletBinary
        // Inside the test host. Lines typed into the guest that the script waits for spell the awaited text
        // with "" inside, so that the console's echo of the typed line does not match.
        let script = directory.appendingPathComponent("vsock.sh").path
        try """
            T=\(tool)
            # If swiftlet ends early, typing into its FIFO must fail, not kill this script before it prints the logs.
            trap '' PIPE
            mkfifo /tmp/vs-in
            \(swiftlet) run --initrd \(initrd) --vsock cid=3,socket=/tmp/v.sock < /tmp/vs-in > /tmp/vs-out 2>&1 &
            S=$!
            exec 3>/tmp/vs-in
            $T unix-listen /tmp/v.sock_6000 1 > /tmp/host-listener.log 2>&1 &
            L=$!
            head -c 1048576 /dev/urandom > /tmp/blob
            # Until the console shows $1, swiftlet has exited, or 120 s have passed.
            wait_for() { n=0; until grep -q "$1" /tmp/vs-out || ! kill -0 $S 2>/dev/null || [ $n -gt 600 ]; do sleep 0.2; n=$((n+1)); done; }
            wait_for '~ #'
            echo 'vsock-echo listen 5000 1 &' >&3
            wait_for 'listening on vsock port 5000'
            $T unix-connect /tmp/v.sock 5000 < /tmp/blob > /tmp/blob.back 2> /tmp/host-client.log
            echo "host-client-status=$?"
            cat /tmp/host-client.log
            echo "host-sent $(md5sum < /tmp/blob)"
            echo "host-back $(md5sum < /tmp/blob.back)"
            echo 'dd if=/dev/urandom of=/tmp/g bs=1024 count=1024 2>/dev/null; vsock-echo connect 2 6000 < /tmp/g > /tmp/g.back; echo "guest-client-status=$?"; echo "guest-sent $(md5sum < /tmp/g)"; echo "guest-back $(md5sum < /tmp/g.back)"; echo GUEST-""DONE' >&3
            wait_for GUEST-DONE
            echo 'vsock-echo sink 5001' >&3
            wait_for 'listening on vsock port 5001'
            head -c 16777216 /dev/zero | $T unix-send /tmp/v.sock 5001
            echo "host-send-status=$?"
            wait_for 'sink received'
            echo 'poweroff -f' >&3
            wait $S; echo "swiftlet-status=$?"
            # The host listener ends after its one connection; if the guest never made it, it is stopped here.
            n=0; while kill -0 $L 2>/dev/null && [ $n -lt 25 ]; do sleep 0.2; n=$((n+1)); done; kill $L 2>/dev/null
            echo "--- host listener"; cat /tmp/host-listener.log
            echo "--- swiftlet"; cat /tmp/vs-out
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try TestHost.run(["--file", swiftlet, "--file", TestHost.cache + "/guest", "--file", tool, "--file", initrd,
                                       "--file", script, "sh", script])
        #expect(result.status == 0, "output:\n\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        func value(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count).prefix(32)) } }

        // Host → guest: CONNECT 5000 through the device socket, 1 MiB echoed back by the guest's listener.
        #expect(value("host-client-status=") == "0", "output:\n\(result.output)")
        #expect(result.output.contains("vsock-echo: connected to port 5000 (host port 1073741824)"))
        #expect(value("host-sent ") != nil && value("host-sent ") == value("host-back "), "output:\n\(result.output)")
        // Guest → host: CID 2 port 6000 reaches /tmp/v.sock_6000; 1 MiB echoed back by the host's listener.
        #expect(value("guest-client-status=") == "0", "output:\n\(result.output)")
        #expect(value("guest-sent ") != nil && value("guest-sent ") == value("guest-back "), "output:\n\(result.output)")
        #expect(result.output.contains("sent 1048576 bytes, received 1048576 bytes"))
        // 16 MiB one way into the guest's sink: all of it arrived.
        #expect(value("host-send-status=") == "0")
        let sink = lines.first { $0.contains("vsock-echo: sink received ") }
        #expect(sink?.contains("received 16777216 bytes") == true, "output:\n\(result.output)")
        // The rates, for the record (the test host's CPU is emulated: relative figures only).
        for line in lines where line.contains("vsock-echo: sent ") || line.contains("vsock-echo: sink received ") { print(line) }
        #expect(result.output.contains("swiftlet: the guest powered off"))
        #expect(!result.output.contains("virtio-vsock:"), "the device logged guest errors:\n\(result.output)")
    }
}
