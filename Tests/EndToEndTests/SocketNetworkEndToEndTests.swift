import Foundation
import Testing

extension TestHostBootTests {
    @Test("--net socket=PATH,listen and --net socket=PATH: two guests in one test host ping each other and move 16 MiB over TCP intact")
    func twoGuestsOnASocketPingEachOther() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-sock-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let swiftlet = TestHost.swiftletBinary
        // Inside the test host: guest A listens on /tmp/n.sock, guest B connects to it once the socket exists.
        // Each console is fed from a FIFO and written to a file; commands are typed once both shells are up.
        // The marker words are split with "" in what is typed, so that the console's echo of a command never
        // matches what the command prints.
        let script = directory.appendingPathComponent("sock.sh").path
        try """
            mkfifo /tmp/a-in /tmp/b-in
            \(swiftlet) run --memory 256M --net socket=/tmp/n.sock,listen,ip=10.1.0.1/24 < /tmp/a-in > /tmp/a-out 2>&1 &
            exec 3>/tmp/a-in
            until [ -S /tmp/n.sock ]; do sleep 0.2; done
            \(swiftlet) run --memory 256M --net socket=/tmp/n.sock,ip=10.1.0.2/24 < /tmp/b-in > /tmp/b-out 2>&1 &
            exec 4>/tmp/b-in
            n=0; until { grep -q '~ #' /tmp/a-out && grep -q '~ #' /tmp/b-out; } || [ $n -gt 600 ]; do sleep 0.5; n=$((n+1)); done
            echo 'echo mtu-$(cat /sys/class/net/eth0/mtu); ping -c 3 10.1.0.2 && echo A-PING""-OK' >&3
            n=0; until grep -q -e A-PING-OK -e 'packet loss' /tmp/a-out || [ $n -gt 120 ]; do sleep 0.5; n=$((n+1)); done
            echo 'ping -c 3 10.1.0.1 && echo B-PING""-OK' >&4
            n=0; until grep -q -e B-PING-OK -e 'packet loss' /tmp/b-out || [ $n -gt 120 ]; do sleep 0.5; n=$((n+1)); done
            echo 'mkdir -p /srv && dd if=/dev/urandom of=/srv/blob bs=1M count=16 2>/dev/null && md5sum /srv/blob && httpd -p 8080 -h /srv && echo SERV""ING' >&3
            n=0; until grep -q SERVING /tmp/a-out || [ $n -gt 120 ]; do sleep 0.5; n=$((n+1)); done
            echo 'wget -q -O /tmp/blob http://10.1.0.1:8080/blob; md5sum /tmp/blob; echo FETCH""ED' >&4
            n=0; until grep -q FETCHED /tmp/b-out || [ $n -gt 600 ]; do sleep 0.5; n=$((n+1)); done
            echo 'poweroff -f' >&3
            echo 'poweroff -f' >&4
            wait
            sed 's/^/A: /' /tmp/a-out
            sed 's/^/B: /' /tmp/b-out
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try TestHost.run(["--file", swiftlet, "--file", TestHost.cache + "/guest", "--file", script, "sh", script])
        #expect(result.status == 0, "output:\n\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.contains("A: A-PING-OK"), "output:\n\(result.output)")
        #expect(lines.contains("B: B-PING-OK"), "output:\n\(result.output)")
        #expect(lines.contains { $0.hasPrefix("A: ") && $0.contains("/tmp/n.sock: a peer connected") })
        #expect(lines.contains("A: mtu-65520"), "the guest took the socket link's MTU")
        // 16 MiB of random bytes served by guest A arrive intact at guest B: the same checksum on both sides.
        let served = lines.first { $0.hasPrefix("A: ") && $0.hasSuffix("  /srv/blob") }?.dropFirst(3).prefix(32)
        let fetched = lines.first { $0.hasPrefix("B: ") && $0.hasSuffix("  /tmp/blob") }?.dropFirst(3).prefix(32)
        #expect(served != nil && served == fetched, "output:\n\(result.output)")
        #expect(lines.filter { $0.hasSuffix("swiftlet: the guest powered off") }.count == 2, "output:\n\(result.output)")
    }
}
