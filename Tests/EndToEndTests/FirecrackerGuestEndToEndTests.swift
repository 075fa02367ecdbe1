import Foundation
import Testing

extension MicroVMKernelEndToEndTests {
    /// Firecracker's usual guest, configured the way Firecracker's users configure it: the `firecracker` name, the
    /// API, the microVM kernel with `console=ttyS0 reboot=k panic=1 pci=off`, 2 vCPUs, a root disk given as
    /// `is_root_device` (an ext4 image of the default guest's files: no initramfs), a TAP network and a vsock. Twice
    /// in one test host: with ACPI (devices from the DSDT and the command line) and with `acpi=off` added (CPUs from
    /// the MP table). Each time the guest runs its init from the root disk, sees 2 CPUs, pings the test host over the
    /// TAP and its agent answers on vsock.
    @Test("Firecracker's usual guest through the API: microVM kernel, pci=off (and acpi=off), 2 vCPUs, is_root_device disk, TAP and vsock")
    func firecrackerGuestThroughTheAPI() throws {
        let kernel = try #require(MicroVMKernel.path)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-fcguest-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/root", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The root disk: the default guest's initramfs unpacked into an ext4 image (its /init, busybox, the agent).
        _ = try TestHost.tool("/bin/sh", ["-c", "cd '\(directory)/root' && cpio -idm --quiet < '\(TestHost.guest("initramfs.cpio"))'"])
        let image = directory + "/rootfs.ext4"
        _ = try TestHost.tool("/usr/bin/truncate", ["-s", "96M", image])
        _ = try TestHost.tool("/sbin/mkfs.ext4", ["-q", "-F", "-d", directory + "/root", image])
        let swiftlet = TestHost.swiftletBinary
        let script = directory + "/fcguest.sh"
        try """
            trap '' PIPE
            ln -sf \(swiftlet) /tmp/firecracker
            api() {
                c=$(curl --unix-socket /tmp/fc.sock -s -m 30 -o /tmp/api-body -w '%{http_code}' -X "$2" -H 'Content-Type: application/json' -d "$4" "http://localhost$3")
                echo "api[$1] $2 $3 code=$c body=$(tr -d '[:cntrl:]' < /tmp/api-body 2>/dev/null)"
            }
            wait_for() { n=0; until grep -q "$1" /tmp/fc-out || ! kill -0 $F 2>/dev/null || [ $n -gt 900 ]; do sleep 0.2; n=$((n+1)); done; }
            for mode in acpi noacpi; do
                args="console=ttyS0 reboot=k panic=1 pci=off init=/init"
                [ $mode = noacpi ] && args="$args acpi=off"
                rm -f /tmp/fc.sock /tmp/fc-out /tmp/fc-in; mkfifo /tmp/fc-in
                /tmp/firecracker --api-sock /tmp/fc.sock < /tmp/fc-in > /tmp/fc-out 2>&1 &
                F=$!
                exec 3>/tmp/fc-in
                n=0; until [ -S /tmp/fc.sock ] || [ $n -gt 150 ]; do sleep 0.2; n=$((n+1)); done
                api $mode-boot PUT /boot-source "{\\"kernel_image_path\\": \\"\(kernel)\\", \\"boot_args\\": \\"$args\\"}"
                api $mode-machine PUT /machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
                api $mode-root PUT /drives/rootfs '{"drive_id": "rootfs", "path_on_host": "\(image)", "is_root_device": true, "is_read_only": false}'
                api $mode-net PUT /network-interfaces/eth0 "{\\"iface_id\\": \\"eth0\\", \\"host_dev_name\\": \\"tap-$mode\\"}"
                api $mode-vsock PUT /vsock "{\\"guest_cid\\": 3, \\"uds_path\\": \\"/tmp/v-$mode.sock\\"}"
                api $mode-start PUT /actions '{"action_type": "InstanceStart"}'
                n=0; until [ -e /sys/class/net/tap-$mode ] || [ $n -gt 100 ]; do sleep 0.1; n=$((n+1)); done
                ip addr add 10.0.0.1/24 dev tap-$mode && ip link set tap-$mode up
                wait_for '~ # '
                echo 'echo root-$(grep -c "^/dev/root / ext4" /proc/mounts) cpus-$(nproc)' >&3
                wait_for 'cpus-[0-9]'
                echo 'ip addr add 10.0.0.2/24 dev eth0; ip link set eth0 up; ping -c 2 -W 5 10.0.0.1 >/dev/null && echo ping""-ok; echo ping""-done' >&3
                wait_for 'ping-done'
                echo "$mode-agent=$(\(swiftlet) exec --vsock-socket /tmp/v-$mode.sock vm -- echo agent-ok 2>&1)"
                echo 'reboot -f' >&3
                wait $F; echo "$mode-status=$?"
                exec 3>&-
                sed "s/^/$mode: /" /tmp/fc-out
            done
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try TestHost.run(["--file", swiftlet, "--file", kernel, "--file", image, "--file", "/usr/bin/curl",
                                       "--file", script, "sh", script], timeout: 900)
        let output = result.output
        let lines = output.split(separator: "\n").map(String.init)
        for line in lines where line.hasPrefix("api[") || line.contains("-agent=") || line.contains("-status=") { print(line) }
        #expect(result.status == 0, "output:\n\(output)")
        for mode in ["acpi", "noacpi"] {
            for step in ["boot", "machine", "root", "net", "vsock", "start"] {
                #expect(lines.contains { $0.hasPrefix("api[\(mode)-\(step)]") && $0.contains("code=204") }, "\(mode) \(step): output:\n\(output)")
            }
            let console = lines.filter { $0.hasPrefix(mode + ": ") }
            #expect(console.contains { $0.contains("root-1 cpus-2") }, "\(mode): the root disk is / and both CPUs run; output:\n\(output)")
            #expect(console.contains { $0.hasSuffix("ping-ok") }, "\(mode): output:\n\(output)")
            #expect(lines.contains("\(mode)-agent=agent-ok"), "\(mode): output:\n\(output)")
            #expect(lines.contains("\(mode)-status=0"), "\(mode): output:\n\(output)")
        }
        #expect(lines.contains { $0.hasPrefix("noacpi: ") && $0.contains("MPTABLE: OEM ID: SWIFTLET") }, "output:\n\(output)")
    }
}
