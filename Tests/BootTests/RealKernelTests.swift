#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Boot
import GuestMemory

/// Against a real distribution kernel, when SWIFTLET_TEST_KERNEL names its bzImage (for example Debian's
/// /boot/vmlinuz-6.1.0-*-cloud-amd64 from `apt-get download linux-image-<version>-cloud-amd64`; `dpkg-deb -x`).
/// Optionally SWIFTLET_TEST_VMLINUX names the reference vmlinux unpacked by another tool
/// (`lz4 -d` of the payload, or scripts/extract-vmlinux) to compare byte for byte.
private let realKernelPath: String? = getenv("SWIFTLET_TEST_KERNEL").map { String(cString: $0) }

@Suite(.enabled(if: realKernelPath != nil, "set SWIFTLET_TEST_KERNEL to a bzImage"))
struct RealKernelTests {
    static var kernelPath: String? { realKernelPath }
    static var referencePath: String? { getenv("SWIFTLET_TEST_VMLINUX").map { String(cString: $0) } }

    @Test func unpacksThePayloadToASaneVmlinux() throws {
        let bytes = try #require(readFile(Self.kernelPath!))
        let image = try BzImage(bytes)
        #expect(image.header.version >= 0x020c)
        #expect(image.payloadFormat.canUnpackInHost)

        var started = timespec(), finished = timespec()
        clock_gettime(CLOCK_MONOTONIC, &started)
        let vmlinux = try image.unpackPayload()
        clock_gettime(CLOCK_MONOTONIC, &finished)
        let seconds = Double(finished.tv_sec - started.tv_sec) + Double(finished.tv_nsec - started.tv_nsec) / 1e9
        print("unpacked \(image.payloadFormat) payload of \(image.header.payloadLength) bytes to \(vmlinux.count) bytes in \(seconds) s")

        if let referencePath = Self.referencePath {
            #expect(vmlinux == readFile(referencePath), "differs from \(referencePath)")
        }

        let elf = try ElfKernel(vmlinux)
        // vmlinux is linked at 16 MiB (CONFIG_PHYSICAL_START) and enters at its physical startup_64.
        #expect(elf.entry == GuestAddress(image.header.prefAddress))
        #expect(elf.physicalStart == GuestAddress(image.header.prefAddress))
        #expect(elf.physicalEnd.rawValue - elf.physicalStart.rawValue <= UInt64(image.header.initSize))
        #expect(elf.pvhEntry != nil)
        print("entry \(elf.entry), \(elf.segments.count) segments \(elf.physicalStart) – \(elf.physicalEnd), PVH entry \(elf.pvhEntry.map(\.description) ?? "none")")
    }

    @Test func loadsIntoA256MiBGuest() throws {
        let bytes = try #require(readFile(Self.kernelPath!))
        let memory = try makeGuestMemory(mebibytes: 256)
        let loaded = try loadLinux(LinuxBootRequest(kernel: bytes, initrd: [UInt8](repeating: 0, count: 4 << 20),
                                                    commandLine: "console=ttyS0 panic=-1"), into: memory)
        for line in loaded.log { print(line) }
        #expect(loaded.entry == .vmlinux64)
        #expect(loaded.cpu.rip == 0x100_0000)
    }
}
