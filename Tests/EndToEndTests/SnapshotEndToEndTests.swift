import Foundation
import Testing

extension TestHostBootTests {
    /// One test-host boot: the default guest with a disk and a vsock, run with `--api-sock`, counting once a
    /// second; paused and saved through Firecracker's API (`PATCH /vm`, `PUT /snapshot/create`), then its VMM is
    /// killed with SIGKILL. A fresh `swiftlet serve` loads the snapshot (`PUT /snapshot/load` with `resume_vm` and a
    /// `vsock_override`), and the guest goes on where it was: the counter continues from the saved value, the
    /// console takes typed commands, virtio-rng answers, the sector written before the save is on the disk and one
    /// written after it reaches the image, and the agent answers over a new vsock connection on the new socket. The
    /// load comes 30 s after the save with `clock_realtime`, and the guest's `date` must match the test host's. The
    /// guest had a TAP interface: the clone's `network_overrides` gives it tap1, over which it pings the test host.
    /// While it runs, a second clone is loaded from the same files with its own TAP, vsock socket and disk copy
    /// (`drive_overrides`): it also starts from the saved count, and each clone's disk writes land in its own image.
    @Test("snapshot a running Linux guest through the API, kill its VMM, load it in a fresh process: it continues with console, rng, disk, TAP and vsock; a second clone with its own disk copy, TAP and vsock runs beside it")
    func snapshotRestoreInFreshProcess() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-snap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let swiftlet = TestHost.swiftletBinary
        let kernel = TestHost.guest("vmlinuz"), initrd = TestHost.guest("initramfs.cpio")
        let script = directory.appendingPathComponent("snapshot.sh").path
        try """
            trap '' PIPE
            at() { echo "at $(cut -d' ' -f1 /proc/uptime) $*"; }
            # api LABEL SOCKET METHOD PATH [JSON]
            api() {
                c=$(curl --unix-socket "$2" -s -m 60 -o /tmp/api-body -w '%{http_code}' -X "$3" -H 'Content-Type: application/json' ${5:+-d "$5"} "http://localhost$4")
                echo "api[$1] $3 $4 code=$c body=$(tr -d '[:cntrl:]' < /tmp/api-body 2>/dev/null)"
                rm -f /tmp/api-body
            }
            wait_for() { n=0; until grep -q "$3" "$1" || ! kill -0 "$2" 2>/dev/null || [ $n -gt "${4:-900}" ]; do sleep 0.2; n=$((n+1)); done; }
            wait_socket() { n=0; until [ -S "$1" ] || [ $n -gt 150 ]; do sleep 0.2; n=$((n+1)); done; }
            truncate -s 16M /tmp/disk.img
            mkdir -p /tmp/snap

            mkfifo /tmp/in1
            at boot
            \(swiftlet) run --memory 256M --kernel \(kernel) --initrd \(initrd) --disk /tmp/disk.img --vsock cid=3,socket=/tmp/v1.sock --net tap=tap0,ip=10.0.0.2/24 --api-sock /tmp/a1.sock < /tmp/in1 > /tmp/out1 2>&1 &
            P1=$!
            exec 3>/tmp/in1
            wait_for /tmp/out1 $P1 '~ #'
            at prompt
            echo 'echo before-save | dd of=/dev/vda bs=512 count=1 conv=sync,fsync 2>/dev/null; echo wrote-$((1+1))' >&3
            wait_for /tmp/out1 $P1 'wrote-2'
            echo 'i=0; while :; do echo "count-$i"; i=$((i+1)); sleep 1; done &' >&3
            wait_for /tmp/out1 $P1 'count-3'
            # The guest's clock beside the test host's, before the save (the typed line's echo has no digit after "gclock-").
            echo 'echo gclock-$(date +%s)' >&3
            wait_for /tmp/out1 $P1 'gclock-[0-9]'
            echo "hclock-before=$(date +%s)"
            echo "gclock-before=$(grep -o 'gclock-[0-9]*' /tmp/out1 | tail -n 1 | cut -d- -f2)"
            api pause /tmp/a1.sock PATCH /vm '{"state": "Paused"}'
            at saving
            api create /tmp/a1.sock PUT /snapshot/create '{"snapshot_type": "Full", "snapshot_path": "/tmp/snap/vm.state", "mem_file_path": "/tmp/snap/vm.mem"}'
            at saved
            echo "saved-last=$(grep -o '^count-[0-9]*' /tmp/out1 | tail -n 1)"
            kill -9 $P1; wait $P1 2>/dev/null
            exec 3>&-
            # The second clone's own copy of the disk as it was at the save.
            cp /tmp/disk.img /tmp/disk2.img
            echo "files: $(ls -s /tmp/snap | tr '\\n' ' ')"
            # Thirty seconds pass between the save and the load: with clock_realtime the guest's clock moves on by as much.
            sleep 30

            mkfifo /tmp/in2
            \(swiftlet) serve --api-sock /tmp/a2.sock < /tmp/in2 > /tmp/out2 2>&1 &
            P2=$!
            exec 4>/tmp/in2
            wait_socket /tmp/a2.sock
            at loading
            api load /tmp/a2.sock PUT /snapshot/load '{"snapshot_path": "/tmp/snap/vm.state", "mem_backend": {"backend_type": "File", "backend_path": "/tmp/snap/vm.mem"}, "resume_vm": true, "vsock_override": {"uds_path": "/tmp/v2.sock"}, "network_overrides": [{"iface_id": "net0", "host_dev_name": "tap1"}], "clock_realtime": true}'
            at loaded
            [ -e /sys/class/net/tap1 ] && ip addr add 10.0.0.1/24 dev tap1 && ip link set tap1 up
            wait_for /tmp/out2 $P2 'count-'
            sleep 3
            echo "restored-first=$(grep -o '^count-[0-9]*' /tmp/out2 | head -n 1)"
            echo "restored-last=$(grep -o '^count-[0-9]*' /tmp/out2 | tail -n 1)"
            api state /tmp/a2.sock GET /
            echo 'echo typed-$((6*7)); echo rng-bytes-$(head -c 16 /dev/hwrng | wc -c); echo disk-says-$(head -c 11 /dev/vda)' >&4
            wait_for /tmp/out2 $P2 'disk-says-'
            echo 'echo gclock-$(date +%s)' >&4
            wait_for /tmp/out2 $P2 'gclock-[0-9]'
            echo "hclock-after=$(date +%s)"
            echo "gclock-after=$(grep -o 'gclock-[0-9]*' /tmp/out2 | tail -n 1 | cut -d- -f2)"
            [ -S /tmp/v2.sock ] && echo "vsock-override-socket=yes"
            echo "agent=$(\(swiftlet) exec --vsock-socket /tmp/v2.sock vm -- echo agent-ok 2>&1)"
            echo 'echo ping1-$(ping -c 2 -W 5 10.0.0.1 >/dev/null 2>&1 && echo ok || echo failed)' >&4
            wait_for /tmp/out2 $P2 'ping1-[of]'
            # A second clone from the same files while the first runs (it has run for a while and written to its
            # memory; the files are unchanged, since each clone's memory is a private mapping), with its own disk
            # copy (drive_overrides: the first clone holds the image's lock), its own TAP and its own vsock socket.
            mkfifo /tmp/in3
            \(swiftlet) serve --api-sock /tmp/a3.sock < /tmp/in3 > /tmp/out3 2>&1 &
            P3=$!
            exec 5>/tmp/in3
            wait_socket /tmp/a3.sock
            api load2 /tmp/a3.sock PUT /snapshot/load '{"snapshot_path": "/tmp/snap/vm.state", "mem_backend": {"backend_type": "File", "backend_path": "/tmp/snap/vm.mem"}, "resume_vm": true, "vsock_override": {"uds_path": "/tmp/v3.sock"}, "network_overrides": [{"iface_id": "net0", "host_dev_name": "tap2"}], "drive_overrides": [{"drive_id": "drive0", "path_on_host": "/tmp/disk2.img"}]}'
            wait_for /tmp/out3 $P3 'count-'
            echo "clone2-first=$(grep -o '^count-[0-9]*' /tmp/out3 | head -n 1)"
            echo "both-running=$(kill -0 $P2 2>/dev/null && kill -0 $P3 2>/dev/null && echo yes)"
            echo "agent2=$(\(swiftlet) exec --vsock-socket /tmp/v3.sock vm -- echo agent2-ok 2>&1)"
            # Its frames reach tap2 (up, without an address: the ARP requests are counted there), not tap1.
            ip link set tap2 up
            t2=$(cat /sys/class/net/tap2/statistics/rx_packets)
            echo 'ping -c 2 -W 2 10.0.0.1 >/dev/null 2>&1; echo clone2-pinged-$((3*3))' >&5
            wait_for /tmp/out3 $P3 'clone2-pinged-9'
            echo "tap2-frames=$(( $(cat /sys/class/net/tap2/statistics/rx_packets) - t2 ))"
            echo 'echo clone-two | dd of=/dev/vda bs=512 seek=2 count=1 conv=sync,fsync 2>/dev/null; echo wrote-$((3+3))' >&5
            wait_for /tmp/out3 $P3 'wrote-6'
            echo 'echo after-restore | dd of=/dev/vda bs=512 seek=1 count=1 conv=sync,fsync 2>/dev/null; echo wrote-$((2+2))' >&4
            wait_for /tmp/out2 $P2 'wrote-4'
            echo 'poweroff -f' >&5
            wait $P3; echo "clone2-status=$?"
            echo 'poweroff -f' >&4
            wait $P2; echo "restored-status=$?"
            echo "image-sector-1=$(dd if=/tmp/disk.img bs=512 skip=1 count=1 2>/dev/null | head -c 13)"
            echo "image-sector-2=$(dd if=/tmp/disk.img bs=512 skip=2 count=1 2>/dev/null | head -c 9 | tr -d '\\0')"
            echo "copy-sector-2=$(dd if=/tmp/disk2.img bs=512 skip=2 count=1 2>/dev/null | head -c 9)"
            echo "copy-sector-1=$(dd if=/tmp/disk2.img bs=512 skip=1 count=1 2>/dev/null | head -c 13 | tr -d '\\0')"
            echo "--- first VMM"; tail -n 5 /tmp/out1
            echo "--- restored VMM"; cat /tmp/out2
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try TestHost.run(["--file", swiftlet, "--file", TestHost.cache + "/guest", "--file", "/usr/bin/curl",
                                       "--file", script, "sh", script],
                                      timeout: 900)
        let output = result.output
        let lines = output.split(separator: "\n").map(String.init)
        for line in lines where line.hasPrefix("at ") || line.hasPrefix("api[") || line.contains("=") && !line.contains(" ") {
            print(line)
        }
        func value(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }
        func count(_ prefix: String) -> Int? { value(prefix).flatMap { Int($0.dropFirst("count-".count)) } }
        #expect(result.status == 0, "output:\n\(output)")
        #expect(lines.contains { $0.hasPrefix("api[pause]") && $0.contains("code=204") }, "output:\n\(output)")
        #expect(lines.contains { $0.hasPrefix("api[create]") && $0.contains("code=204") }, "output:\n\(output)")
        #expect(lines.contains { $0.hasPrefix("api[load]") && $0.contains("code=204") }, "output:\n\(output)")
        #expect(lines.contains { $0.hasPrefix("api[state]") && $0.contains("Running") }, "output:\n\(output)")
        // The counter goes on from where it was saved: the first number after the restore is the next one (or the
        // one the guest was about to print), not 0.
        let savedLast = count("saved-last="), restoredFirst = count("restored-first="), restoredLast = count("restored-last=")
        #expect(savedLast != nil && restoredFirst != nil && restoredLast != nil, "output:\n\(output)")
        if let savedLast, let restoredFirst, let restoredLast {
            #expect(restoredFirst >= savedLast && restoredFirst <= savedLast + 1, "output:\n\(output)")
            #expect(restoredLast > restoredFirst, "output:\n\(output)")
        }
        #expect(lines.contains("typed-42"), "output:\n\(output)")
        #expect(lines.contains("rng-bytes-16"), "output:\n\(output)")
        #expect(lines.contains("disk-says-before-save"), "output:\n\(output)")
        #expect(value("image-sector-1=") == "after-restore", "output:\n\(output)")
        #expect(value("vsock-override-socket=") == "yes", "output:\n\(output)")
        #expect(value("agent=") == "agent-ok", "output:\n\(output)")
        #expect(value("restored-status=") == "0", "output:\n\(output)")
        // The guest's clock: within 2 s of the test host's before the save and, 30 s of waiting later, after the
        // restore too (without clock_realtime it would be 30 s and more behind).
        func seconds(_ prefix: String) -> Int? { value(prefix).flatMap { Int($0) } }
        if let gb = seconds("gclock-before="), let hb = seconds("hclock-before="), let ga = seconds("gclock-after="), let ha = seconds("hclock-after=") {
            print("guest clock - test host clock: \(gb - hb) s before the save, \(ga - ha) s after the restore")
            #expect(abs(gb - hb) <= 2, "the guest's clock before the save; output:\n\(output)")
            #expect(abs(ga - ha) <= 2, "the guest's clock after the restore 30 s later; output:\n\(output)")
        } else {
            Issue.record("no clock readings; output:\n\(output)")
        }
        #expect(value("ping1-") == "ok", "the first clone pings the test host over its TAP override; output:\n\(output)")
        // The second clone from the same, unchanged files, running beside the first.
        #expect(lines.contains { $0.hasPrefix("api[load2]") && $0.contains("code=204") }, "output:\n\(output)")
        if let savedLast, let clone2First = count("clone2-first=") {
            #expect(clone2First >= savedLast && clone2First <= savedLast + 1, "output:\n\(output)")
        } else {
            Issue.record("no count from the second clone; output:\n\(output)")
        }
        #expect(value("both-running=") == "yes", "output:\n\(output)")
        #expect(value("agent2=") == "agent2-ok", "output:\n\(output)")
        #expect((value("tap2-frames=").flatMap { Int($0) } ?? 0) > 0, "the second clone's frames reach its own TAP; output:\n\(output)")
        #expect(value("clone2-status=") == "0", "output:\n\(output)")
        // Each clone wrote to its own image: the first's sector 1 is in disk.img, the second's sector 2 in its copy.
        #expect(value("copy-sector-2=") == "clone-two", "output:\n\(output)")
        #expect(value("image-sector-2=") == "", "output:\n\(output)")
        #expect(value("copy-sector-1=") == "", "output:\n\(output)")
    }
}
