import Foundation
import Testing

extension TestHostBootTests {
    /// One test-host run, two boots of the stock Debian kernel with the same devices — an ext4 disk, a raw disk, a
    /// TAP interface and a vsock — first over virtio-mmio with `pci=off` (the devices are found through the DSDT's
    /// LNRO0005 entries: Debian's virtio_mmio has no command-line devices), then over virtio-pci. The mmio boot
    /// checks every device: the disk written and synced and read back by the host, pings both ways, 1 MiB echoed
    /// over vsock, /dev/hwrng. Both boots report the time to the shell prompt and the raw disk's write and read
    /// rates, for docs/performance.md.
    @Test("--transport mmio with pci=off: disk, TAP network, vsock and rng work over virtio-mmio; boot and disk figures beside virtio-pci")
    func virtioMMIOWithPCIOff() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-mmio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = directory.appendingPathComponent("disk.ext4").path
        try TestHost.tool("/usr/bin/truncate", ["-s", "64M", image])
        try TestHost.tool("/sbin/mkfs.ext4", ["-q", "-F", image])

        // vsock-echo laid over the default initramfs, as the vsock test does.
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
        // Inside the test host. Typed lines spell the awaited text with "" inside, so the console's echo does not match.
        let script = directory.appendingPathComponent("mmio.sh").path
        try """
            T=\(tool)
            trap '' PIPE
            truncate -s 128M /tmp/raw.img
            head -c 1048576 /dev/urandom > /tmp/blob
            wait_for() { n=0; until grep -q "$1" $OUT || ! kill -0 $S 2>/dev/null || [ $n -gt 1200 ]; do sleep 0.1; n=$((n+1)); done; }
            # boot TRANSPORT TAG EXTRA-CMDLINE: starts swiftlet, brings the TAP up, waits for the guest's prompt.
            boot() {
                OUT=/tmp/$2-out; mkfifo /tmp/$2-in
                t0=$(cut -d' ' -f1 /proc/uptime)
                \(swiftlet) run --initrd \(initrd) --transport $1 --cpus 2 --cmdline "console=ttyS0 reboot=k panic=-1 $3" \\
                    --disk \(image) --disk /tmp/raw.img --net tap=tap0,ip=10.0.0.2/24,gateway=10.0.0.1 \\
                    --vsock cid=3,socket=/tmp/$2.sock < /tmp/$2-in > $OUT 2>&1 &
                S=$!
                exec 3>/tmp/$2-in
                until [ -e /sys/class/net/tap0 ] || ! kill -0 $S 2>/dev/null; do sleep 0.1; done
                ip addr add 10.0.0.1/24 dev tap0 2>/dev/null; ip link set tap0 up
                wait_for '~ #'
                echo "$2-boot $t0 $(cut -d' ' -f1 /proc/uptime)"
            }
            # The raw disk's rates: 128 MiB written and flushed, then read back cold; uptime stamps around each.
            disk_rates() {
                echo 'echo 3 > /proc/sys/vm/drop_caches; a=$(cut -d" " -f1 /proc/uptime); dd if=/dev/zero of=/dev/vdb bs=1M count=128 conv=fsync 2>/dev/null; b=$(cut -d" " -f1 /proc/uptime); echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vdb of=/dev/null bs=1M count=128 2>/dev/null; c=$(cut -d" " -f1 /proc/uptime); echo "rates $a $b $c"; echo RATES-""DONE' >&3
                wait_for RATES-DONE
            }
            finish() { echo 'poweroff -f' >&3; wait $S; echo "$1-status=$?"; exec 3>&-; }

            boot mmio mmio pci=off
            echo 'echo "parent=$(basename $(readlink -f /sys/bus/virtio/devices/virtio0/..))"; echo "virtio-devices=$(ls /sys/bus/virtio/devices | wc -l)"; echo "pci-devices=$(ls /sys/bus/pci/devices 2>/dev/null | wc -l)"; grep -c virtio /proc/interrupts | sed "s/^/irq-lines=/"' >&3
            echo 'mkdir -p /mnt && mount -t ext4 /dev/vda /mnt && echo mmio-wrote-$((6*7)) > /mnt/hello.txt && sync && umount /mnt && echo SYN""CED' >&3
            wait_for SYNCED
            echo 'echo hwrng=$(dd if=/dev/hwrng bs=4096 count=1 2>/dev/null | wc -c)' >&3
            echo 'ping -c 3 10.0.0.1 >/dev/null && echo GUEST-PING""-OK' >&3
            n=0; until grep -q -e GUEST-PING-OK /tmp/mmio-out || [ $n -gt 300 ]; do sleep 0.2; n=$((n+1)); done
            ping -c 3 10.0.0.2 >/dev/null && echo HOST-PING-OK
            echo 'vsock-echo listen 5000 1 &' >&3
            wait_for 'listening on vsock port 5000'
            $T unix-connect /tmp/mmio.sock 5000 < /tmp/blob > /tmp/blob.back 2>/dev/null
            echo "vsock-sent $(md5sum < /tmp/blob)"
            echo "vsock-back $(md5sum < /tmp/blob.back)"
            disk_rates
            finish mmio
            /sbin/debugfs -R 'cat /hello.txt' \(image) 2>/dev/null

            boot pci pci
            echo 'echo "parent=$(basename $(readlink -f /sys/bus/virtio/devices/virtio0/..))"' >&3
            disk_rates
            finish pci
            echo "--- mmio"; cat /tmp/mmio-out
            echo "--- pci"; cat /tmp/pci-out
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try TestHost.run(["--file", swiftlet, "--file", TestHost.cache + "/guest", "--file", tool, "--file", initrd,
                                       "--file", "/sbin/debugfs", "--file", image, "--file", script, "sh", script], timeout: 900)
        #expect(result.status == 0, "output:\n\(result.output)")
        let output = result.output
        let sections = output.components(separatedBy: "\n--- ")
        let mmio = sections.first { $0.hasPrefix("mmio\n") } ?? ""
        let pci = sections.first { $0.hasPrefix("pci\n") } ?? ""
        let lines = output.split(separator: "\n").map(String.init)
        func value(_ prefix: String, in text: String = output) -> String? {
            text.split(separator: "\n").first { $0.hasPrefix(prefix) }.map { line in
                // A kernel message can land on the same console line as the shell's output (seen in CI:
                // "virtio-devices=5[    6.738713] IPv6: ADDRCONF(...)"): the value ends where it begins.
                let value = String(line.dropFirst(prefix.count))
                guard let kernel = value.range(of: #"\[\s*\d+\.\d+\]"#, options: .regularExpression) else { return value }
                return String(value[..<kernel.lowerBound])
            }
        }

        // Over virtio-mmio with pci=off: the devices hang off the DSDT's LNRO0005 platform devices, no PCI bus.
        #expect(value("mmio-status=") == "0", "output:\n\(output)")
        #expect(value("parent=", in: mmio) == "LNRO0005:00", "output:\n\(mmio)")
        #expect(value("virtio-devices=", in: mmio) == "5")  // rng, vsock, net, two disks
        #expect(value("pci-devices=", in: mmio) == "0")
        #expect(mmio.contains("[vda] 131072 512-byte logical blocks"), "output:\n\(mmio)")
        #expect(mmio.contains("hwrng=4096"))
        #expect(output.contains("GUEST-PING-OK") && output.contains("HOST-PING-OK"), "output:\n\(output)")
        #expect(value("vsock-sent ") != nil && value("vsock-sent ") == value("vsock-back "), "output:\n\(output)")
        #expect(lines.contains("mmio-wrote-42"), "what the guest synced is in the image; output:\n\(output)")
        #expect(!mmio.contains("virtio-mmio:"), "the transport logged guest errors:\n\(mmio)")
        // Over virtio-pci, the same devices are PCI functions.
        #expect(value("pci-status=") == "0", "output:\n\(output)")
        #expect(value("parent=", in: pci)?.hasPrefix("0000:00:") == true, "output:\n\(pci)")

        // The figures, for the record (the test host's CPU is emulated: relative figures only).
        for (name, text) in [("mmio", mmio), ("pci", pci)] {
            let boot = value("\(name)-boot ")?.split(separator: " ").compactMap { Double($0) } ?? []
            let rates = value("rates ", in: text)?.split(separator: " ").compactMap { Double($0) } ?? []
            if boot.count == 2, rates.count == 3 {
                print(String(format: "virtio-%@: boot to prompt %.1f s; raw disk 128 MiB write+fsync %.1f MiB/s, cold read %.1f MiB/s",
                             name, boot[1] - boot[0], 128 / max(rates[1] - rates[0], 0.01), 128 / max(rates[2] - rates[1], 0.01)))
            } else {
                Issue.record("no figures for \(name): boot \(boot), rates \(rates)")
            }
        }
    }
}

extension TestHostBootTests {
    /// Firecracker mode's default transport: the binary run as `firecracker` with a config file whose `boot_args`
    /// carry Firecracker's `pci=off`; the drive must still reach the guest (as virtio-mmio), with no pci=off warning.
    @Test("firecracker --no-api --config-file with pci=off: the drive is a virtio-mmio disk the guest reads")
    func firecrackerModeUsesVirtioMMIO() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-fcmmio-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let image = directory.appendingPathComponent("disk.img").path
        try TestHost.tool("/usr/bin/truncate", ["-s", "8M", image])
        let config = directory.appendingPathComponent("vm.json").path
        try """
            {"boot-source": {"kernel_image_path": "\(TestHost.guest("vmlinuz"))", "initrd_path": "\(TestHost.guest("initramfs.cpio"))",
                             "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"},
             "drives": [{"drive_id": "data", "path_on_host": "\(image)", "is_root_device": false, "is_read_only": false}],
             "machine-config": {"vcpu_count": 1, "mem_size_mib": 256}}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let swiftlet = TestHost.swiftletBinary
        let command = "ln -sf \(swiftlet) /tmp/firecracker && /tmp/firecracker --no-api --config-file \(config)"
        let result = try TestHost.run(["--file", swiftlet, "--file", TestHost.cache + "/guest", "--file", image, "--file", config,
                                       "sh", "-c", command],
                                      input: "echo sectors=$(cat /sys/block/vda/size) parent=$(basename $(readlink -f /sys/bus/virtio/devices/virtio0/..))\npoweroff -f\n",
                                      inputAfter: "~ # ")
        #expect(result.status == 0, "output:\n\(result.output)")
        #expect(result.output.contains("sectors=16384"), "output:\n\(result.output)")
        #expect(result.output.contains("parent=LNRO0005:00"), "output:\n\(result.output)")
        #expect(!result.output.contains("pci=off, but"), "no pci=off warning with virtio-mmio:\n\(result.output)")
    }
}
