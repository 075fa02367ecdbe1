import Foundation
import Testing

extension TestHostBootTests {
    @Test("--net socket=PATH,listen and --net socket=PATH: a guest's link is down until a peer connects; two guests in one test host ping each other and move 16 MiB over TCP intact")
    func twoGuestsOnASocketPingEachOther() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-sock-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let swiftlet = TestHost.swiftletBinary
        // Inside the test host: guest A listens on /tmp/n.sock; guest B connects to it once A's shell is up (the
        // boots one after the other: two nested guests booting at once under TCG are slow and have been seen to
        // fail in early boot, which is not what this test is about). Each console is fed from a FIFO and written
        // to a file. Every wait is bounded, and well inside the test host's timeout, so that the consoles are
        // printed even when a step fails. The marker words are split with "" in what is typed, so that the
        // console's echo of a command never matches what the command prints.
        let script = directory.appendingPathComponent("sock.sh").path
        try """
            # A guest that dies early must not take this script with it (SIGPIPE on its FIFO): the consoles
            # printed at the end say why it died.
            trap '' PIPE
            mkfifo /tmp/a-in /tmp/b-in
            # wait_for FILE PID SECONDS PATTERN...: until FILE matches, PID has exited, or SECONDS have passed.
            wait_for() { f=$1 p=$2 n=$(($3 * 2)); shift 3
                until grep -q "$@" "$f" || ! kill -0 "$p" 2>/dev/null || [ $n -le 0 ]; do sleep 0.5; n=$((n-1)); done; }
            \(swiftlet) run --memory 256M --net socket=/tmp/n.sock,listen,ip=10.1.0.1/24 < /tmp/a-in > /tmp/a-out 2>&1 &
            A=$!
            exec 3>/tmp/a-in
            wait_for /tmp/a-out $A 90 -e '~ #'
            echo 'echo before-peer-carrier""-$(cat /sys/class/net/eth0/carrier)' >&3
            wait_for /tmp/a-out $A 20 -e before-peer-carrier-
            \(swiftlet) run --memory 256M --net socket=/tmp/n.sock,ip=10.1.0.2/24 < /tmp/b-in > /tmp/b-out 2>&1 &
            B=$!
            exec 4>/tmp/b-in
            wait_for /tmp/b-out $B 90 -e '~ #'
            echo 'echo mtu-$(cat /sys/class/net/eth0/mtu) with-peer-carrier""-$(cat /sys/class/net/eth0/carrier); ping -c 3 10.1.0.2 && echo A-PING""-OK' >&3
            wait_for /tmp/a-out $A 30 -e A-PING-OK -e 'packet loss'
            echo 'ping -c 3 10.1.0.1 && echo B-PING""-OK' >&4
            wait_for /tmp/b-out $B 30 -e B-PING-OK -e 'packet loss'
            echo 'mkdir -p /srv && dd if=/dev/urandom of=/srv/blob bs=1M count=16 2>/dev/null && md5sum /srv/blob && httpd -p 8080 -h /srv && echo SERV""ING' >&3
            wait_for /tmp/a-out $A 30 -e SERVING
            echo 'wget -q -O /tmp/blob http://10.1.0.1:8080/blob; md5sum /tmp/blob; echo FETCH""ED' >&4
            wait_for /tmp/b-out $B 60 -e FETCHED
            echo 'poweroff -f' >&3
            echo 'poweroff -f' >&4
            wait $A; echo "A-status=$?"
            wait $B; echo "B-status=$?"
            sed 's/^/A: /' /tmp/a-out
            sed 's/^/B: /' /tmp/b-out
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try TestHost.run(["--file", swiftlet, "--file", TestHost.cache + "/guest", "--file", script, "sh", script], timeout: 420)
        #expect(result.status == 0, "output:\n\(result.output)")
        let lines = result.output.split(separator: "\n").map(String.init)
        #expect(lines.contains("A-status=0") && lines.contains("B-status=0"), "output:\n\(result.output)")
        #expect(lines.contains("A: A-PING-OK"), "output:\n\(result.output)")
        #expect(lines.contains("B: B-PING-OK"), "output:\n\(result.output)")
        #expect(lines.contains { $0.hasPrefix("A: ") && $0.contains("/tmp/n.sock: a peer connected") })
        #expect(lines.contains("A: mtu-65520 with-peer-carrier-1"), "the guest took the socket link's MTU; its link is up with a peer")
        #expect(lines.contains("A: before-peer-carrier-0"), "without a peer the guest's link is down:\n\(result.output)")
        // 16 MiB of random bytes served by guest A arrive intact at guest B: the same checksum on both sides.
        let served = lines.first { $0.hasPrefix("A: ") && $0.hasSuffix("  /srv/blob") }?.dropFirst(3).prefix(32)
        let fetched = lines.first { $0.hasPrefix("B: ") && $0.hasSuffix("  /tmp/blob") }?.dropFirst(3).prefix(32)
        #expect(served != nil && served == fetched, "output:\n\(result.output)")
        #expect(lines.filter { $0.hasSuffix("swiftlet: the guest powered off") }.count == 2, "output:\n\(result.output)")
    }
}
