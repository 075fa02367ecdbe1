import CHost
import Devices
import Foundation
import GuestMemory
import KVM
import Virtio
import VirtioPCI
import Testing
@testable import Swiftlet

/// The machine build at the host's edges (issue 13): socket files of a failed build, ioeventfds registered all or
/// none, and SIGXFSZ ignored so a disk write past RLIMIT_FSIZE cannot kill the VMM.
@Suite(.serialized, .enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct PlatformHardeningTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("BootTests/Fixtures")

    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-ph-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    // MARK: Defect 8

    @Test("a build that fails after the vsock listener was made (a disk in use) removes the socket file")
    func failedBuildRemovesSocketFiles() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let disk = directory + "/disk.img"
        #expect(FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20)))
        // Somebody else (QEMU, say) has the image open for writing.
        let holder = open(disk, O_RDWR)
        defer { close(holder) }
        try #require(chost_ofd_lock_whole_file(holder, 1) == 0)
        try #require(flock(holder, LOCK_EX | LOCK_NB) == 0)

        let socket = directory + "/v.sock"
        var configuration = MachineConfiguration.linux(kernel: Self.fixtures.appendingPathComponent("bzImage-gzip").path, memory: .mebibytes(64))
        configuration.vsock = VsockConfiguration(guestCID: 3, socketPath: socket)
        configuration.disks = [DiskConfiguration(path: disk)]
        #expect {
            _ = try Machine(configuration: configuration)
        } throws: { error in
            "\(error)".contains("disk.img")
        }
        #expect(!FileManager.default.fileExists(atPath: socket), "the socket file of the failed build is left behind")

        // The same configuration again in this process (as the API's next InstanceStart would): the error is
        // about the disk again, not a socket "in use by another process".
        #expect {
            _ = try Machine(configuration: configuration)
        } throws: { error in
            "\(error)".contains("disk.img") && !"\(error)".contains("listens on it")
        }
    }

    // MARK: Defect 18

    @Test("when one queue's ioeventfd cannot be registered, the ones registered before it are removed again")
    func ioeventfdRegistrationIsAllOrNone() throws {
        let vm = try KVMSystem().createVM()
        try vm.createIRQChip()
        let memory = try GuestMemory(ranges: [(start: GuestAddress(0), size: 16 << 20)])
        try vm.mapGuestMemory(memory)
        let platform = VirtioPlatform(vm: vm, logger: .init(label: "test"))
        var ports = PortIOBus()
        var mmio = MMIOBus()
        let root = try PCIPlatform.attach(ports: &ports, mmio: &mmio, onBARChange: { platform.barChanged($0) })
        let loops = try DeviceEventLoops()
        // 00:01.0 is the virtio-rng; 00:02.0 the virtio-console, with several queues.
        try platform.attach(disks: [], networks: [], console: ConsoleDevice(output: { _ in }), vsock: nil, transport: .pci, to: root,
                            mmio: &mmio, memory: memory, router: KVMMSIRouter(vm: vm), loops: loops)
        let address = PCIAddress(device: 2)
        let transport = try #require(platform.transport(at: address))
        let base: UInt64 = 0xC000_0000
        let notify = platform.notifyAddresses(of: transport, base: base)
        try #require(notify.count >= 2)

        // Something else already answers queue 1's notify address: its registration will fail (EEXIST).
        let squatter = try EventFD()
        try vm.registerIOEventFD(squatter, at: .mmio(GuestAddress(notify[1])), length: 0)
        let mapping = PCIBARMapping(index: VirtioPCILayout.barIndex, kind: .memory64, base: base, size: VirtioPCILayout.barSize)
        platform.barChanged(PCIBARChange(device: address, index: VirtioPCILayout.barIndex, old: nil, new: mapping))

        // Queue 0's address must be free again: registering another eventfd there succeeds.
        let probe = try EventFD()
        #expect(throws: Never.self) { try vm.registerIOEventFD(probe, at: .mmio(GuestAddress(notify[0])), length: 0) }
    }

    // MARK: Defect 19

    @Test("building a machine ignores SIGXFSZ, so a write past RLIMIT_FSIZE fails with EFBIG instead of killing the VMM")
    func machineBuildIgnoresSIGXFSZ() throws {
        signal(SIGXFSZ, SIG_DFL)
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let image = directory + "/hlt.bin"
        #expect(FileManager.default.createFile(atPath: image, contents: Data([0xF4])))
        _ = try Machine(configuration: MachineConfiguration(payload: .rawImage(RawImagePayload(path: image)), memory: .mebibytes(32)))
        let disposition = signal(SIGXFSZ, SIG_IGN)   // what the build left, put back as it was
        #expect(unsafeBitCast(disposition, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self), "SIGXFSZ is not ignored")
    }
}
