import CHost
import Foundation
import Testing
@testable import Swiftlet
import SwiftletCommandLine

/// Configuration values a hostile or careless user gives (issue 13): too many devices, a payload larger than guest
/// RAM (refused from its size, before a byte is read), MAC and IPv4 values that cannot work, repeated keys, and the
/// messages that must say what was counted or what is wrong.
@Suite struct ConfigurationHardeningTests {
    static func temporaryFile(_ name: String, size: Int64) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-hard-\(name)-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data([0x4D, 0x5A])))
        #expect(truncate(path, off_t(size)) == 0)   // sparse: no disk space, no bytes to read
        return path
    }

    // MARK: Defect 3: at most 31 virtio devices

    @Test("31 disks (32 virtio devices with the rng) are refused with a message, not a trap")
    func tooManyDevices() throws {
        let kernel = try Self.temporaryFile("kernel", size: 4096)
        defer { unlink(kernel) }
        var configuration = MachineConfiguration.linux(kernel: kernel)
        configuration.disks = (0..<31).map { DiskConfiguration(path: "/nonexistent/disk\($0).img") }
        #expect(configuration.virtioDeviceCount == 32)
        #expect {
            try configuration.validate()
        } throws: { error in
            guard case .tooManyDevices(32, maximum: 31, _) = error as? ConfigurationError else { return false }
            return "\(error)".contains("31 disks") && "\(error)".contains("at most 31")
        }
        configuration.disks.removeLast()
        configuration.disks = configuration.disks.map { _ in DiskConfiguration(path: kernel) }
        // 30 disks fit; the next complaint is about the repeated image, not the count.
        #expect(throws: ConfigurationError.invalidDisk(kernel, reason: "the same image is given twice")) { try configuration.validate() }
    }

    // MARK: Defect 4: payload sizes checked against guest RAM from stat, before reading

    @Test("a 40 GiB initrd is refused from its size at once (it is never read)")
    func hugeInitrd() throws {
        let kernel = try Self.temporaryFile("kernel", size: 4096)
        let initrd = try Self.temporaryFile("initrd", size: 40 << 30)
        defer { unlink(kernel); unlink(initrd) }
        let configuration = MachineConfiguration.linux(kernel: kernel, initrd: initrd, memory: .mebibytes(512))
        let start = ContinuousClock.now
        #expect {
            try configuration.validate()
        } throws: { error in
            guard case .unreadableFile(role: "initrd", path: initrd, let reason) = error as? ConfigurationError else { return false }
            return reason.contains("do not fit in the guest's")
        }
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test("a 600 MiB initrd does not fit 512 MiB of RAM; a kernel larger than RAM is refused too; small ones pass")
    func payloadAgainstMemory() throws {
        let kernel = try Self.temporaryFile("kernel", size: 4096)
        let initrd = try Self.temporaryFile("initrd", size: 600 << 20)
        let bigKernel = try Self.temporaryFile("big-kernel", size: 600 << 20)
        defer { unlink(kernel); unlink(initrd); unlink(bigKernel) }
        #expect(throws: ConfigurationError.self) {
            try MachineConfiguration.linux(kernel: kernel, initrd: initrd, memory: .mebibytes(512)).validate()
        }
        #expect(throws: ConfigurationError.self) { try MachineConfiguration.linux(kernel: bigKernel, memory: .mebibytes(512)).validate() }
        try MachineConfiguration.linux(kernel: kernel, initrd: initrd, memory: .mebibytes(1024)).validate()
    }

    // MARK: Defect 13: MAC, IPv4 and repeated keys

    @Test("MACs, addresses and gateways that cannot work are refused, with the reason", arguments: [
        ("tap=t0,mac=00:00:00:00:00:00", "all zeros"),
        ("tap=t0,mac=01:00:5e:00:00:01", "multicast"),
        ("tap=t0,mac=ff:ff:ff:ff:ff:ff", "multicast"),
        ("tap=t0,ip=10.0.0.0/24", "network address"),
        ("tap=t0,ip=10.0.0.255/24", "broadcast address"),
        ("tap=t0,ip=10.0.0.2/24,gw=10.0.0.2", "the interface's own address"),
        ("tap=t0,ip=10.0.0.2/24,gw=10.0.0.255", "network or broadcast"),
        ("tap=t0,ip=10.0.0.2/24,gw=10.0.1.1", "is not in"),
        ("tap=t0,mac=02:00:00:00:00:01,mac=02:00:00:00:00:02", "'mac' is given more than once"),
        ("tap=t0,ip=10.0.0.2/24,ip=10.0.0.3/24", "'ip' is given more than once"),
        ("tap=t0,ip=10.0.0.2/24,gw=10.0.0.1,gateway=10.0.0.1", "more than once"),
        ("tap=t0,mtu=1500,mtu=9000", "'mtu' is given more than once"),
        ("socket=/tmp/a,listen,listen", "'listen' is given more than once"),
    ])
    func badNetworkValues(text: String, reason: String) {
        do {
            _ = try NetworkConfiguration(parsing: text, index: 0)
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
        }
    }

    @Test("point-to-point prefixes have no network or broadcast address: /31 and /32 hosts are fine")
    func pointToPoint() throws {
        _ = try NetworkConfiguration(parsing: "tap=t0,ip=10.0.0.0/31", index: 0)
        _ = try NetworkConfiguration(parsing: "tap=t0,ip=10.0.0.1/31", index: 0)
        _ = try NetworkConfiguration(parsing: "tap=t0,ip=10.0.0.7/32", index: 0)
        _ = try NetworkConfiguration(parsing: "tap=t0,ip=10.0.0.2/24,gw=10.0.0.1,mac=02:00:00:00:00:01", index: 0)
    }

    @Test("a configuration made in code is checked the same way")
    func validateChecksNetworks() throws {
        let kernel = try Self.temporaryFile("kernel", size: 4096)
        defer { unlink(kernel) }
        var configuration = MachineConfiguration.linux(kernel: kernel)
        configuration.networks = [NetworkConfiguration(backend: .tap(name: "t0"), mac: MACAddress("00:00:00:00:00:00")!)]
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
        configuration.networks = [NetworkConfiguration(backend: .tap(name: "t0"), mac: MACAddress("02:00:00:00:00:01")!,
                                                       address: IPv4Interface("10.0.0.2/24"), gateway: IPv4Address("10.0.0.2"))]
        #expect(throws: ConfigurationError.self) { try configuration.validate() }
    }

    @Test("repeated keys in --vsock and --disk are refused")
    func repeatedKeys() {
        #expect { try VsockConfiguration(parsing: "cid=3,cid=4,socket=/tmp/v.sock") } throws: { "\($0)".contains("'cid' is given more than once") }
        #expect { try VsockConfiguration(parsing: "cid=3,socket=/tmp/a,socket=/tmp/b") } throws: { "\($0)".contains("'socket' is given more than once") }
        #expect { try DiskConfiguration(parsing: "/tmp/d.img,id=a,id=b") } throws: { "\($0)".contains("'id' is given more than once") }
    }

    // MARK: Defect 16: messages

    @Test("a command line too long because of the swiftlet.netN= parameters says they were counted")
    func commandLineTooLongNamesOurParameters() {
        let extra = ["swiftlet.net0=mac=02:53:57:0a:1b:2c,ip=10.0.0.2/24,gw=10.0.0.1"]
        let error = PayloadImage.explain(.commandLineTooLong(length: 2100, maximum: 2048), extraCommandLine: extra)
        let text = "\(error)"
        #expect(text.contains("swiftlet.net0"), "\(text)")
        #expect(text.contains("\(extra[0].utf8.count + 1) bytes of parameters Swiftlet appends"), "\(text)")
        // Without parameters of ours the loader's own message stands.
        guard case .boot = PayloadImage.explain(.commandLineTooLong(length: 2100, maximum: 2048), extraCommandLine: []) else {
            Issue.record("rewrapped although nothing was appended")
            return
        }
    }

    @Test("a socket path under /proc says the file system refuses socket files, not just 'No such file'")
    func socketUnderProc() {
        #expect {
            _ = try VsockHostBridge(configuration: VsockConfiguration(guestCID: 3, socketPath: "/proc/swiftlet-test.sock"),
                                    logger: .init(label: "test"))
        } throws: { error in
            let text = "\(error)"
            return text.contains("/proc exists") && text.contains("procfs") && text.contains("does not allow")
        }
    }
}
