import Foundation
import Testing

extension TestHostBootTests {
    /// `swiftlet jail` around a real Linux guest, in the test host (docs/security.md): the default guest boots in
    /// the jail and answers on its console; from outside, the VMM runs as the given uid and gid, sees only the
    /// jail at its root (a file the test host has is not there), and sits in its cgroup with the limits written;
    /// when the guest powers off, the jailer exits with the VMM's status and removes the jail and the cgroup.
    /// The test host runs from its initramfs, which pivot_root cannot leave: the jailer says so and chroots.
    @Test("swiftlet jail boots the default guest in the test host: uid/gid dropped, host files out of sight, cgroup limits, all removed after")
    func jailedLinuxGuest() throws {
        let swiftlet = TestHost.swiftletBinary
        let kernel = TestHost.guest("vmlinuz"), initrd = TestHost.guest("initramfs.cpio")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-jail-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = directory.appendingPathComponent("jail.sh").path
        // Typed lines spell the awaited text with "" inside, so the console's echo does not match it.
        try """
            trap '' PIPE
            mkdir -p /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup || echo "cannot mount cgroup2"
            echo a-host-secret > /tmp/host-secret.txt
            mkfifo /tmp/j-in
            \(swiftlet) jail --id vm1 --exec-file \(swiftlet) --uid 1000 --gid 1000 --chroot-base-dir /srv/jail --new-pid-ns \\
                --cgroup pids.max=64 --cgroup memory.max=1073741824 --file \(kernel) --file \(initrd) \\
                -- run --kernel /vmlinuz --initrd /initramfs.cpio --memory 256M < /tmp/j-in > /tmp/j-out 2>&1 &
            J=$!
            exec 3>/tmp/j-in
            wait_for() { n=0; until grep -q "$1" /tmp/j-out || ! kill -0 $J 2>/dev/null || [ $n -gt 1200 ]; do sleep 0.1; n=$((n+1)); done; }
            wait_for '~ #'
            V=$(cat /proc/$J/task/$J/children | cut -d' ' -f1)
            echo "vmm-ids=$(awk '/^Uid:/ { u = $2 } /^Gid:/ { g = $2 } END { print u ":" g }' /proc/$V/status)"
            echo "vmm-root=$(ls /proc/$V/root | tr '\\n' ' ')"
            echo "vmm-sees-secret=$(test -e /proc/$V/root/tmp/host-secret.txt && echo yes || echo no)"
            echo "cgroup-pids-max=$(cat /sys/fs/cgroup/swiftlet/vm1/pids.max)"
            echo "cgroup-memory-max=$(cat /sys/fs/cgroup/swiftlet/vm1/memory.max)"
            echo "cgroup-has-vmm=$(grep -qx "$V" /sys/fs/cgroup/swiftlet/vm1/cgroup.procs && echo yes || echo no)"
            echo 'echo jailed-guest-$((6*7))' >&3
            wait_for 'jailed-guest-42'
            echo 'poweroff -f' >&3
            wait $J; echo "jail-status=$?"
            echo "jail-left=$(ls /srv/jail/swiftlet 2>/dev/null | wc -l)"
            echo "cgroup-left=$(test -d /sys/fs/cgroup/swiftlet/vm1 && echo yes || echo no)"
            echo "--- the jailed run"; cat /tmp/j-out
            """.write(toFile: script, atomically: true, encoding: .utf8)
        let result = try TestHost.run(["--file", swiftlet, "--file", TestHost.cache + "/guest", "--file", script, "sh", script], timeout: 600)
        #expect(result.status == 0, "output:\n\(result.output)")
        let lines = result.output.split(separator: "\n").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        func value(_ prefix: String) -> String? { lines.first { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) } }

        #expect(result.output.contains("jailed-guest-42"), "output:\n\(result.output)")
        #expect(value("vmm-ids=") == "1000:1000", "output:\n\(result.output)")
        #expect(value("vmm-root=")?.split(separator: " ").sorted() == ["dev", "initramfs.cpio", "proc", "run", "swiftlet", "vmlinuz"],
                "output:\n\(result.output)")
        #expect(value("vmm-sees-secret=") == "no")
        #expect(value("cgroup-pids-max=") == "64", "output:\n\(result.output)")
        #expect(value("cgroup-memory-max=") == "1073741824")
        #expect(value("cgroup-has-vmm=") == "yes", "output:\n\(result.output)")
        #expect(value("jail-status=") == "0", "output:\n\(result.output)")
        #expect(value("jail-left=") == "0")
        #expect(value("cgroup-left=") == "no")
        #expect(result.output.contains("pivot_root cannot leave: moved the jail onto / and chrooted instead"), "output:\n\(result.output)")
    }
}
