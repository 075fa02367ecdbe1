import Testing
@testable import Boot
import GuestMemory

/// `loadLinux` end to end on the fixture kernels: what lands where in guest memory, which entry is
/// chosen, and the vCPU state handed back.
@Suite struct LinuxLoaderTests {
    static let startup64: [UInt8] = [0x66, 0xba, 0xf8, 0x03, 0xb0, 0x4c, 0xee, 0xf4]   // out 'L' to 0x3f8; hlt

    @Test func elfKernelIsLoadedAndEnteredAtItsPhysicalEntry() throws {
        let memory = try makeGuestMemory()
        let loaded = try loadLinux(LinuxBootRequest(kernel: Fixture.bytes("tiny-kernel.elf"), commandLine: "console=ttyS0"),
                                   into: memory)
        #expect(loaded.kind == .elf)
        #expect(loaded.entry == .vmlinux64)
        #expect(loaded.cpu.rip == 0x100_0000)
        #expect(loaded.cpu.rsi == 0x7000)
        #expect(try memory.read(at: GuestAddress(0x100_0000), count: 8) == Self.startup64)
        // Zero page: made-up header, loader fields, command line, e820.
        let zeroPage = try memory.read(at: BootLayout.zeroPage, count: 4096)
        #expect(zeroPage.u32(0x202) == 0x5372_6448)
        #expect(zeroPage[0x210] == 0xff)
        #expect(zeroPage.u32(0x228) == 0x20000)
        #expect(zeroPage[0x1e8] == 4)
        #expect(try memory.readCString(at: BootLayout.commandLine, maxLength: 100) == "console=ttyS0")
        #expect(loaded.log.last == "entering vmlinux at 0x1000000 in 64-bit mode, zero page at 0x7000")
    }

    @Test func lz4BzImageIsUnpackedInTheHostAndItsVmlinuxEntered() throws {
        let memory = try makeGuestMemory()
        let loaded = try loadLinux(LinuxBootRequest(kernel: Fixture.bytes("bzImage-lz4")), into: memory)
        #expect(loaded.kind == .bzImage(protocolVersion: 0x020f, payload: .lz4))
        #expect(loaded.entry == .vmlinux64)
        #expect(loaded.cpu.rip == 0x100_0000)
        #expect(try memory.read(at: GuestAddress(0x100_0000), count: 8) == Self.startup64)
        // The zero page carries the bzImage's own header.
        let zeroPage = try memory.read(at: BootLayout.zeroPage, count: 4096)
        #expect(zeroPage.u32(0x260) == 0x40_0000)              // init_size, copied
        #expect(zeroPage.u16(0x236) == 0x3)                    // xloadflags, copied
        #expect(loaded.log[0].hasPrefix("bzImage, boot protocol 2.15, payload lz4 ("))
        #expect(loaded.log[0].contains("unpacked in the host"))
    }

    @Test func gzipBzImageIsUnpackedInTheHostToo() throws {
        let memory = try makeGuestMemory()
        let loaded = try loadLinux(LinuxBootRequest(kernel: Fixture.bytes("bzImage-gzip")), into: memory)
        #expect(loaded.entry == .vmlinux64)
        #expect(try memory.read(at: GuestAddress(0x100_0000), count: 8) == Self.startup64)
    }

    @Test func xzBzImageIsEnteredAtItsDecompressor() throws {
        let memory = try makeGuestMemory()
        let image = Fixture.bytes("bzImage-xz")
        let loaded = try loadLinux(LinuxBootRequest(kernel: image), into: memory)
        #expect(loaded.entry == .bzImage64)
        // The protected-mode part (after 2 × 512 bytes of setup) at pref_address, entered at + 0x200.
        #expect(loaded.cpu.rip == 0x100_0200)
        #expect(try memory.read(at: GuestAddress(0x100_0000), count: 0x210) == Array(image[1024..<(1024 + 0x210)]))
        #expect(try memory.load(UInt32.self, at: BootLayout.zeroPage.adding(0x214)) == 0x100_0000)   // code32_start
        #expect(loaded.kernelEnd == GuestAddress(0x140_0000))  // load address + init_size (4 MiB)
    }

    @Test func hostUnpackingCanBeTurnedOff() throws {
        let memory = try makeGuestMemory()
        let loaded = try loadLinux(LinuxBootRequest(kernel: Fixture.bytes("bzImage-lz4"), unpackPayloadInHost: false), into: memory)
        #expect(loaded.entry == .bzImage64)
        #expect(loaded.cpu.rip == 0x100_0200)
    }

    @Test func initrdLandsAtTheTopOfLowRAMAndInTheZeroPage() throws {
        let memory = try makeGuestMemory(mebibytes: 64)
        let initrd = [UInt8](repeating: 0x42, count: 10_000)
        let loaded = try loadLinux(LinuxBootRequest(kernel: Fixture.bytes("bzImage-lz4"), initrd: initrd), into: memory)
        let expected = GuestAddress((64 << 20) - 12288)         // 10 000 bytes rounded to 3 pages, below 64 MiB
        #expect(loaded.initrd?.address == expected)
        #expect(try memory.read(at: expected, count: 10_000) == initrd)
        #expect(try memory.load(UInt32.self, at: BootLayout.zeroPage.adding(0x218)) == UInt32(expected.rawValue))
        #expect(try memory.load(UInt32.self, at: BootLayout.zeroPage.adding(0x21c)) == 10_000)
    }

    @Test func rsdpAddressGoesIntoTheZeroPage() throws {
        let memory = try makeGuestMemory()
        _ = try loadLinux(LinuxBootRequest(kernel: Fixture.bytes("tiny-kernel.elf"), rsdpAddress: GuestAddress(0xe_0000)), into: memory)
        #expect(try memory.load(UInt64.self, at: BootLayout.zeroPage.adding(0x70)) == 0xe_0000)
    }

    @Test func tooLongCommandLineIsRejected() throws {
        let memory = try makeGuestMemory()
        let request = LinuxBootRequest(kernel: Fixture.bytes("bzImage-lz4"), commandLine: String(repeating: "a", count: 3000))
        #expect(thrownError { try loadLinux(request, into: memory) } == .commandLineTooLong(length: 3000, maximum: 2047))
    }

    // MARK: PVH

    @Test func pvhEntryWhenAskedAndTheNoteExists() throws {
        let memory = try makeGuestMemory()
        let loaded = try loadLinux(LinuxBootRequest(kernel: Fixture.bytes("bzImage-lz4"), initrd: [1, 2, 3],
                                                    commandLine: "quiet", entry: .pvh), into: memory)
        #expect(loaded.entry == .pvh32)
        #expect(loaded.cpu.rip == 0x100_0008)
        #expect(loaded.cpu.rbx == 0x6000)
        #expect(try memory.load(UInt32.self, at: BootLayout.pvhStartInfo) == 0x336e_c578)
        #expect(try memory.load(UInt32.self, at: BootLayout.pvhStartInfo.adding(12)) == 1)   // the initrd module
    }

    @Test func pvhWithoutTheNoteIsAnError() throws {
        let memory = try makeGuestMemory()
        let request = LinuxBootRequest(kernel: Fixture.bytes("tiny-kernel-no-pvh.elf"), entry: .pvh)
        guard case .noPVHEntry = thrownError({ try loadLinux(request, into: memory) }) else {
            Issue.record("expected noPVHEntry")
            return
        }
    }

    @Test func pvhFromAnUnpackableBzImageIsAnError() throws {
        let memory = try makeGuestMemory()
        let request = LinuxBootRequest(kernel: Fixture.bytes("bzImage-xz"), entry: .pvh)
        guard case .noPVHEntry = thrownError({ try loadLinux(request, into: memory) }) else {
            Issue.record("expected noPVHEntry")
            return
        }
    }

    // MARK: Rejections

    @Test func nonKernelIsRejectedBeforeAnythingIsWritten() throws {
        let memory = try makeGuestMemory()
        #expect(thrownError { try loadLinux(LinuxBootRequest(kernel: Fixture.bytes("sample.txt")), into: memory) }
                == .notAKernel("no HdrS magic at 0x202"))
        #expect(try memory.read(at: BootLayout.zeroPage, count: 4096).allSatisfy { $0 == 0 })
    }

    @Test func kernelLargerThanTheGuestIsRejected() throws {
        let memory = try makeGuestMemory(mebibytes: 8)
        guard case .kernelDoesNotFit = thrownError({
            try loadLinux(LinuxBootRequest(kernel: Fixture.bytes("tiny-kernel.elf")), into: memory)
        }) else {
            Issue.record("expected kernelDoesNotFit")
            return
        }
    }

    @Test func corruptPayloadIsReportedAsSuch() throws {
        var image = Fixture.bytes("bzImage-lz4")
        let header = try BzImage(image).header
        let payloadStart = 1024 + Int(header.payloadOffset)
        image.set32(0x7fff_ffff, at: payloadStart + 4)         // first block's size: absurd
        let memory = try makeGuestMemory()
        guard case .corruptPayload(.lz4, _, _) = thrownError({ try loadLinux(LinuxBootRequest(kernel: image), into: memory) }) else {
            Issue.record("expected corruptPayload")
            return
        }
    }
}
