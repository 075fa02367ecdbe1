import Foundation
import Testing

extension MicroVMKernelEndToEndTests {
    /// The VM Generation ID seen from a guest whose kernel has the driver (the microVM kernel: CONFIG_VMGENID=y, ACPI
    /// on). One test-host run: the guest boots with an API socket, the vmgenid driver is bound to the DSDT's device
    /// and the GED's interrupt is registered; the machine is paused, saved and killed, a fresh `swiftlet serve` loads
    /// the snapshot and resumes it, and the restored guest has taken one GED interrupt and reseeded its CRNG for a
    /// "virtual machine fork" — which it had not done before the save.
    @Test("the microVM kernel binds vmgenid to the DSDT's device; after a snapshot restore it reseeds for a VM fork")
    func vmGenerationIDReseedsOnRestore() throws {
        let kernel = try #require(MicroVMKernel.path)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-vmgenid-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let swiftlet = TestHost.swiftletBinary
        let initrd = TestHost.guest("initramfs.cpio")
        let script = directory.appendingPathComponent("vmgenid.sh").path
        // Typed lines spell the awaited markers with "" inside, so the console's echo of the line does not match.
        try """
            trap '' PIPE
            api() {
                c=$(curl --unix-socket "$2" -s -m 60 -o /tmp/api-body -w '%{http_code}' -X "$3" -H 'Content-Type: application/json' ${5:+-d "$5"} "http://localhost$4")
                echo "api[$1] $3 $4 code=$c body=$(tr -d '[:cntrl:]' < /tmp/api-body 2>/dev/null)"
                rm -f /tmp/api-body
            }
            wait_for() { n=0; until grep -q "$3" "$1" || ! kill -0 "$2" 2>/dev/null || [ $n -gt "${4:-900}" ]; do sleep 0.2; n=$((n+1)); done; }
            wait_socket() { n=0; until [ -S "$1" ] || [ $n -gt 150 ]; do sleep 0.2; n=$((n+1)); done; }
            facts='echo "bound=$(ls /sys/bus/acpi/drivers/vmgenid 2>/dev/null | grep -c SWFT0001)"; echo "ged=$(grep Ged /proc/interrupts | tr -s " " | cut -d" " -f3 | head -n 1)"; echo "forks=$(dmesg | grep -c "virtual machine fork")"'
            mkdir -p /tmp/snap

            mkfifo /tmp/in1
            \(swiftlet) run --memory 256M --kernel \(kernel) --initrd \(initrd) --cmdline "console=ttyS0 reboot=k panic=1" --api-sock /tmp/a1.sock < /tmp/in1 > /tmp/out1 2>&1 &
            P1=$!
            exec 3>/tmp/in1
            wait_for /tmp/out1 $P1 '~ #'
            echo "$facts; echo BEFORE-""DONE" >&3
            wait_for /tmp/out1 $P1 'BEFORE-DONE'
            api pause /tmp/a1.sock PATCH /vm '{"state": "Paused"}'
            api create /tmp/a1.sock PUT /snapshot/create '{"snapshot_type": "Full", "snapshot_path": "/tmp/snap/vm.state", "mem_file_path": "/tmp/snap/vm.mem"}'
            kill -9 $P1; wait $P1 2>/dev/null
            exec 3>&-

            mkfifo /tmp/in2
            \(swiftlet) serve --api-sock /tmp/a2.sock < /tmp/in2 > /tmp/out2 2>&1 &
            P2=$!
            exec 4>/tmp/in2
            wait_socket /tmp/a2.sock
            api load /tmp/a2.sock PUT /snapshot/load '{"snapshot_path": "/tmp/snap/vm.state", "mem_backend": {"backend_type": "File", "backend_path": "/tmp/snap/vm.mem"}, "resume_vm": true}'
            sleep 2
            echo "$facts; echo AFTER-""DONE" >&4
            wait_for /tmp/out2 $P2 'AFTER-DONE'
            echo 'poweroff -f' >&4
            wait $P2; echo "restored-status=$?"
            echo "--- first VMM"; cat /tmp/out1
            echo "--- restored VMM"; cat /tmp/out2
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try TestHost.run(["--file", swiftlet, "--file", TestHost.cache + "/guest", "--file", kernel, "--file", "/usr/bin/curl",
                                       "--file", script, "sh", script], timeout: 900)
        let output = result.output
        #expect(result.status == 0, "output:\n\(output)")
        let sections = output.components(separatedBy: "\n--- ")
        let first = sections.first { $0.hasPrefix("first VMM\n") } ?? ""
        let restored = sections.first { $0.hasPrefix("restored VMM\n") } ?? ""
        func value(_ prefix: String, in text: String) -> String? {
            text.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
        }
        let lines = output.split(separator: "\n")
        for line in lines where line.hasPrefix("api[") || line.hasPrefix("bound=") || line.hasPrefix("ged=") || line.hasPrefix("forks=")
            || line.contains("virtual machine fork") {
            print(line)
        }
        #expect(lines.contains { $0.hasPrefix("api[create]") && $0.contains("code=204") }, "output:\n\(output)")
        #expect(lines.contains { $0.hasPrefix("api[load]") && $0.contains("code=204") }, "output:\n\(output)")
        // Before the save: the driver bound to SWFT0001, the GED's interrupt registered and never taken, no reseed.
        #expect(value("bound=", in: first) == "1", "output:\n\(first)")
        #expect(value("ged=", in: first) == "0", "output:\n\(first)")
        #expect(value("forks=", in: first) == "0", "output:\n\(first)")
        // After the restore: one GED interrupt, and the vmgenid driver reseeded the CRNG for the fork.
        #expect(value("ged=", in: restored) == "1", "output:\n\(restored)")
        #expect(value("forks=", in: restored) == "1", "output:\n\(restored)")
        #expect(value("restored-status=", in: output) == "0", "output:\n\(output)")
    }
}
