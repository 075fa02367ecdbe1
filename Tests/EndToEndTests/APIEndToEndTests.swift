import Foundation
import Testing

extension TestHostBootTests {
    /// One test-host boot, two VMMs. First `swiftlet serve --api-sock /tmp/fc.sock` with no VM, configured by
    /// curl through Firecracker's API (machine config, boot source, a drive, vsock, metrics; a request with an
    /// unknown field refused with 400 and a fault message), started with InstanceStart; the guest prints a
    /// counter each second, which stops while the VM is paused (PATCH /vm) and goes on when it is resumed, while
    /// the vCPU threads use no CPU time; GET /vm/config reports the configuration; FlushMetrics writes a metrics
    /// line; SendCtrlAltDel makes the default guest power off cleanly, which ends the VM with status 0 (were it to
    /// stay up, the script types `poweroff -f` so that the test fails cleanly). Then `swiftlet serve --no-api --config-file` boots the same guest from
    /// Firecracker's JSON config file (which, as in Firecracker, must have "drives", here empty) and exits 0
    /// after `poweroff -f`.
    @Test("swiftlet serve --api-sock: configured and started with curl, paused and resumed, metrics flushed, Ctrl-Alt-Del ends it; --no-api --config-file boots too")
    func apiConfigureStartPauseResumeCtrlAltDel() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-api-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = directory.appendingPathComponent("rootfs.ext4").path
        try TestHost.tool("/usr/bin/truncate", ["-s", "64M", image])
        try TestHost.tool("/sbin/mkfs.ext4", ["-q", "-F", image])
        let swiftlet = TestHost.swiftletBinary
        let kernel = TestHost.guest("vmlinuz"), initrd = TestHost.guest("initramfs.cpio")
        // Inside the test host. Lines typed into the guest that the script waits for spell the awaited text
        // so that the console's echo of the typed line does not match it (`$(...)` expands only in the guest).
        let script = directory.appendingPathComponent("api.sh").path
        try """
            # If swiftlet ends early, typing into its FIFO must fail, not kill this script before it prints the logs.
            trap '' PIPE
            SOCK=/tmp/fc.sock
            at() { echo "at $(cut -d' ' -f1 /proc/uptime) $*"; }
            # api LABEL METHOD PATH [JSON]: one request with curl; prints the status code and the body on one line.
            api() {
                if [ $# -ge 4 ]; then
                    c=$(curl --unix-socket $SOCK -s -m 20 -o /tmp/api-body -w '%{http_code}' -X "$2" -H 'Content-Type: application/json' -d "$4" "http://localhost$3")
                else
                    c=$(curl --unix-socket $SOCK -s -m 20 -o /tmp/api-body -w '%{http_code}' -X "$2" "http://localhost$3")
                fi
                echo "api[$1] $2 $3 code=$c body=$(tr -d '[:cntrl:]' < /tmp/api-body 2>/dev/null)"
                rm -f /tmp/api-body
            }
            # wait_for LOG PID TEXT [TENTHS]: until LOG shows TEXT, PID has exited, or the time (default 180 s) has passed.
            wait_for() { n=0; until grep -q "$3" "$1" || ! kill -0 "$2" 2>/dev/null || [ $n -gt "${4:-900}" ]; do sleep 0.2; n=$((n+1)); done; }
            ticks() { grep -c '^tick-' /tmp/fc-out; }
            disk_rounds() { grep -c '^disk-round-' /tmp/fc-out; }
            # CPU time (utime + stime, clock ticks) of swiftlet's threads named vcpu*.
            vcpu_cpu() {
                t=0 k=0
                for d in /proc/$S/task/*; do
                    case "$(cat $d/comm 2>/dev/null)" in
                        vcpu*) set -- $(cat $d/stat); t=$((t + ${14} + ${15})); k=$((k + 1)) ;;
                    esac
                done
                echo "$t"
            }
            vcpu_threads() { n=0; for d in /proc/$S/task/*; do case "$(cat $d/comm 2>/dev/null)" in vcpu*) n=$((n + 1)) ;; esac; done; echo "$n"; }

            # Part 1: swiftlet serve, configured through the API with curl.
            : > /tmp/metrics.json
            mkfifo /tmp/fc-in
            at serve-start
            \(swiftlet) serve --api-sock $SOCK < /tmp/fc-in > /tmp/fc-out 2>&1 &
            S=$!
            exec 3>/tmp/fc-in
            n=0; until [ -S $SOCK ] || ! kill -0 $S 2>/dev/null || [ $n -gt 150 ]; do sleep 0.2; n=$((n+1)); done
            at api-socket
            api state-before GET /
            api machine-config PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
            api boot-source PUT /boot-source '{"kernel_image_path": "\(kernel)", "initrd_path": "\(initrd)", "boot_args": "console=ttyS0 reboot=k panic=1"}'
            api drive PUT /drives/rootfs '{"drive_id": "rootfs", "path_on_host": "\(image)", "is_root_device": false, "is_read_only": false}'
            api vsock PUT /vsock '{"guest_cid": 3, "uds_path": "/tmp/v.sock"}'
            api metrics PUT /metrics '{"metrics_path": "/tmp/metrics.json"}'
            api bad-field PATCH /machine-config '{"vcpu_count": 2, "bogus": 1}'
            at instance-start
            api start PUT /actions '{"action_type": "InstanceStart"}'
            wait_for /tmp/fc-out $S '~ #'
            at prompt
            [ -S /tmp/v.sock ] && echo "host-vsock-socket=yes"
            api late-config PUT /machine-config '{"vcpu_count": 1, "mem_size_mib": 128}'
            api state-running GET /
            echo 'echo vda-sectors=$(cat /sys/block/vda/size) cpus=$(nproc)' >&3
            wait_for /tmp/fc-out $S 'vda-sectors=[0-9]' 150
            echo 'i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done &' >&3
            # The disk busy too: the pause must wait for the request in flight and the reads go on after it.
            echo 'j=0; while true; do echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda of=/dev/null bs=1M count=16 2>/dev/null; j=$((j+1)); echo disk-round-$j; done &' >&3
            wait_for /tmp/fc-out $S '^tick-2' 300
            at ticking
            a0=$(ticks); c0=$(vcpu_cpu); sleep 3; a1=$(ticks); c1=$(vcpu_cpu)
            echo "running: ticks $a0 -> $a1, vcpu-cpu $c0 -> $c1, vcpu-threads $(vcpu_threads)"
            at pause
            api pause PATCH /vm '{"state": "Paused"}'
            api state-paused GET /
            p0=$(ticks); d0=$(vcpu_cpu); r0=$(disk_rounds); sleep 3; p1=$(ticks); d1=$(vcpu_cpu); r1=$(disk_rounds)
            echo "paused: ticks $p0 -> $p1, vcpu-cpu $d0 -> $d1"
            echo "disk-paused: rounds $r0 -> $r1"
            at resume
            api resume PATCH /vm '{"state": "Resumed"}'
            api state-resumed GET /
            n=0; until [ "$(ticks)" -gt "$p1" ] || [ $n -gt 100 ]; do sleep 0.2; n=$((n+1)); done
            n=0; until [ "$(disk_rounds)" -gt "$r1" ] || [ $n -gt 300 ]; do sleep 0.2; n=$((n+1)); done
            echo "disk-resumed: rounds $r1 -> $(disk_rounds)"
            at ticking-again
            sleep 2
            echo "resumed: ticks $p1 -> $(ticks)"
            api vm-config GET /vm/config
            api flush PUT /actions '{"action_type": "FlushMetrics"}'
            echo "metrics-lines=$(wc -l < /tmp/metrics.json)"
            echo "metrics-last=$(tail -n 1 /tmp/metrics.json)"
            at ctrl-alt-del
            api cad PUT /actions '{"action_type": "SendCtrlAltDel"}'
            n=0; while kill -0 $S 2>/dev/null && [ $n -lt 300 ]; do sleep 0.2; n=$((n+1)); done
            if kill -0 $S 2>/dev/null; then
                echo "after-ctrl-alt-del=still-running"
                echo 'poweroff -f' >&3
                n=0; while kill -0 $S 2>/dev/null && [ $n -lt 300 ]; do sleep 0.2; n=$((n+1)); done
                kill -0 $S 2>/dev/null && kill -9 $S
            else
                echo "after-ctrl-alt-del=exited"
            fi
            wait $S; echo "swiftlet-status=$?"
            at swiftlet-ended
            exec 3>&-

            # Part 2: swiftlet serve --no-api --config-file, same guest, 1 vCPU.
            cat > /tmp/vm.json <<JSON
            {"boot-source": {"kernel_image_path": "\(kernel)", "initrd_path": "\(initrd)", "boot_args": "console=ttyS0 reboot=k panic=1"},
             "drives": [], "machine-config": {"vcpu_count": 1, "mem_size_mib": 256}}
            JSON
            mkfifo /tmp/fc2-in
            at serve2-start
            \(swiftlet) serve --no-api --config-file /tmp/vm.json < /tmp/fc2-in > /tmp/fc2-out 2>&1 &
            S2=$!
            exec 4>/tmp/fc2-in
            wait_for /tmp/fc2-out $S2 '~ #'
            at prompt2
            echo 'echo second-cpus=$(nproc)' >&4
            wait_for /tmp/fc2-out $S2 'second-cpus=[0-9]' 150
            echo 'poweroff -f' >&4
            n=0; while kill -0 $S2 2>/dev/null && [ $n -lt 300 ]; do sleep 0.2; n=$((n+1)); done
            kill -0 $S2 2>/dev/null && kill -9 $S2
            wait $S2; echo "swiftlet2-status=$?"
            at swiftlet2-ended
            echo "--- swiftlet 1"; cat /tmp/fc-out
            echo "--- swiftlet 2"; cat /tmp/fc2-out
            echo "--- end"
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try TestHost.run(["--file", swiftlet, "--file", TestHost.cache + "/guest", "--file", "/usr/bin/curl",
                                       "--file", image, "--file", script, "sh", script], timeout: 900)
        let output = result.output
        #expect(result.status == 0, "output:\n\(output)")
        let lines = output.split(separator: "\n").map(String.init)
        for line in lines where line.hasPrefix("at ") || line.hasPrefix("api[") || line.hasPrefix("running:")
            || line.hasPrefix("paused:") || line.hasPrefix("resumed:") || line.hasPrefix("after-ctrl-alt-del=") || line.contains("-status=") {
            print(line)
        }

        // `api[LABEL] METHOD PATH code=NNN body=BODY`, one line per request.
        var responses: [String: (code: String, body: String)] = [:]
        for line in lines where line.hasPrefix("api[") {
            guard let close = line.firstIndex(of: "]"), let code = line.range(of: " code="), let body = line.range(of: " body=") else { continue }
            let label = String(line[line.index(line.startIndex, offsetBy: "api[".count)..<close])
            responses[label] = (String(line[code.upperBound..<body.lowerBound]), String(line[body.upperBound...]))
        }
        func code(_ label: String) -> String { responses[label]?.code ?? "none" }
        func json(_ text: String?) -> [String: Any]? {
            guard let text, let data = text.data(using: .utf8) else { return nil }
            return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
        }
        func body(_ label: String) -> [String: Any]? { json(responses[label]?.body) }
        func value(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }
        /// "NAME: ticks A -> B, vcpu-cpu C -> D, ..." → [A, B, C, D].
        func numbers(_ prefix: String) -> [Int] {
            (value(prefix) ?? "").split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        }
        // The two consoles, each after its marker.
        let firstLog = output.components(separatedBy: "--- swiftlet 1").last?.components(separatedBy: "--- swiftlet 2").first ?? ""
        let secondLog = output.components(separatedBy: "--- swiftlet 2").last ?? ""

        // Before InstanceStart: GET / and each pre-boot PUT.
        #expect(code("state-before") == "200", "output:\n\(output)")
        #expect(body("state-before")?["state"] as? String == "Not started", "output:\n\(output)")
        for label in ["machine-config", "boot-source", "drive", "vsock", "metrics"] {
            #expect(code(label) == "204", "PUT \(label): output:\n\(output)")
        }
        // An unknown field is refused with 400 and a fault message.
        #expect(code("bad-field") == "400", "output:\n\(output)")
        #expect((body("bad-field")?["fault_message"] as? String)?.isEmpty == false, "output:\n\(output)")
        #expect(code("start") == "204", "output:\n\(output)")
        #expect(firstLog.contains("Swiftlet guest: Linux") && firstLog.contains("2 CPUs, "), "output:\n\(output)")
        #expect(output.contains("host-vsock-socket=yes"), "output:\n\(output)")
        // After the start the machine config cannot change (Firecracker's rule).
        #expect(code("late-config") == "400", "output:\n\(output)")
        #expect(body("state-running")?["state"] as? String == "Running", "output:\n\(output)")
        // The drive is the guest's vda: 64 MiB = 131072 sectors.
        #expect(firstLog.contains("vda-sectors=131072 cpus=2"), "output:\n\(output)")

        // Ticking while running; not while paused (neither the counter nor the vCPU threads' CPU time); again after.
        let running = numbers("running: ")
        #expect(running.count >= 5 && running[1] > running[0] && running[4] >= 1, "vCPU threads found, ticks grew: output:\n\(output)")
        #expect(code("pause") == "204", "output:\n\(output)")
        #expect(body("state-paused")?["state"] as? String == "Paused", "output:\n\(output)")
        let paused = numbers("paused: ")
        #expect(paused.count == 4 && paused[0] == paused[1], "ticks while paused: output:\n\(output)")
        #expect(paused.count == 4 && paused[3] - paused[2] <= 2, "vCPU CPU time while paused: output:\n\(output)")
        #expect(code("resume") == "204", "output:\n\(output)")
        #expect(body("state-resumed")?["state"] as? String == "Running", "output:\n\(output)")
        let diskPaused = numbers("disk-paused: "), diskResumed = numbers("disk-resumed: ")
        #expect(diskPaused.count == 2 && diskPaused[0] == diskPaused[1], "disk reads while paused: output:\n\(output)")
        #expect(diskResumed.count == 2 && diskResumed[1] > diskResumed[0], "disk reads after resume: output:\n\(output)")
        let resumed = numbers("resumed: ")
        #expect(resumed.count == 2 && resumed[1] > resumed[0], "ticks after resume: output:\n\(output)")

        // GET /vm/config: what was configured.
        #expect(code("vm-config") == "200", "output:\n\(output)")
        let config = body("vm-config")
        let machine = config?["machine-config"] as? [String: Any]
        #expect(machine?["vcpu_count"] as? Int == 2 && machine?["mem_size_mib"] as? Int == 256, "output:\n\(output)")
        let drive = (config?["drives"] as? [[String: Any]])?.first
        #expect(drive?["drive_id"] as? String == "rootfs" && drive?["path_on_host"] as? String == image, "output:\n\(output)")
        #expect(drive?["is_root_device"] as? Bool == false && drive?["is_read_only"] as? Bool == false, "output:\n\(output)")
        #expect((config?["boot-source"] as? [String: Any])?["kernel_image_path"] as? String == kernel, "output:\n\(output)")

        // FlushMetrics: a JSON line with Firecracker's groups.
        #expect(code("flush") == "204", "output:\n\(output)")
        let metrics = json(value("metrics-last="))
        #expect(metrics?["vcpu"] != nil && metrics?["block"] != nil, "output:\n\(output)")

        // SendCtrlAltDel: the guest's i8042 driver (bound through the DSDT's PNP0303 keyboard) reads the keys and
        // the default guest's init powers off, which ends the VM.
        #expect(code("cad") == "204", "output:\n\(output)")
        #expect(value("after-ctrl-alt-del=") == "exited", "output:\n\(output)")
        #expect(value("swiftlet-status=") == "0", "output:\n\(output)")

        // Part 2: the config file boots the same guest without the API; poweroff -f ends it with 0.
        #expect(secondLog.contains("Swiftlet guest: Linux") && secondLog.contains("1 CPUs, "), "output:\n\(output)")
        #expect(secondLog.contains("second-cpus=1"), "output:\n\(output)")
        #expect(value("swiftlet2-status=") == "0", "output:\n\(output)")
    }
}
