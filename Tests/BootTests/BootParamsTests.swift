import Testing
@testable import Boot
import GuestMemory

/// The zero page (struct boot_params): each field the loader fills, at its documented offset
/// (Documentation/arch/x86/zero-page.rst and boot.rst), plus the command line.
@Suite struct BootParamsTests {
    @Test func headerIsCopiedFromTheBzImage() throws {
        let image = try BzImage(Fixture.bytes("bzImage-lz4"))
        let params = BootParams(copyingHeaderOf: image)
        // Byte for byte from 0x1f1 to the header's end (0x26c)...
        #expect(Array(params.bytes[0x1f1..<0x26c]) == Array(image.bytes[0x1f1..<0x26c]))
        // ...and nothing before it (the sentinel at 0x1ef must stay 0).
        #expect(params.bytes[0..<0x1f1].allSatisfy { $0 == 0 })
        #expect(params.bytes[0x26c...].allSatisfy { $0 == 0 })
        #expect(params.u32(at: 0x202) == 0x5372_6448)          // "HdrS"
        #expect(params.u16(at: 0x206) == 0x020f)
    }

    @Test func elfKernelGetsAHeaderMadeFromScratch() {
        let params = BootParams.forELFKernel()
        #expect(params.u16(at: 0x1fe) == 0xaa55)               // boot_flag
        #expect(params.u32(at: 0x202) == 0x5372_6448)          // header "HdrS"
        #expect(params.u16(at: 0x206) == 0x020f)               // version 2.15
        #expect(params.u32(at: 0x230) == 0x20_0000)            // kernel_alignment
        #expect(params.u32(at: 0x238) == 2047)                 // cmdline_size
        #expect(params.u8(at: 0x1ef) == 0)                     // sentinel
    }

    @Test func loaderFields() {
        var params = BootParams()
        params.setLoaderFields()
        #expect(params.u8(at: 0x210) == 0xff)                  // type_of_loader: "undefined"
        #expect(params.u8(at: 0x211) == 0x81)                  // loadflags: LOADED_HIGH | CAN_USE_HEAP
        #expect(params.u16(at: 0x224) == 0xfe00)               // heap_end_ptr
        #expect(params.u16(at: 0x1fa) == 0xffff)               // vid_mode: normal
    }

    @Test func commandLinePointer() {
        var params = BootParams()
        params.setCommandLine(at: BootLayout.commandLine)
        #expect(params.u32(at: 0x228) == 0x20000)              // cmd_line_ptr
        #expect(params.u32(at: 0x0c8) == 0)                    // ext_cmd_line_ptr
    }

    @Test func ramdiskBelowAndAbove4GiB() {
        var params = BootParams()
        params.setRamdisk(at: GuestAddress(0x7f00_0000), size: 0x80_0000)
        #expect(params.u32(at: 0x218) == 0x7f00_0000)          // ramdisk_image
        #expect(params.u32(at: 0x21c) == 0x80_0000)            // ramdisk_size
        #expect(params.u32(at: 0x0c0) == 0)                    // ext_ramdisk_image
        params.setRamdisk(at: GuestAddress(0x1_2345_6000), size: 0x1_0000_1000)
        #expect(params.u32(at: 0x218) == 0x2345_6000)
        #expect(params.u32(at: 0x0c0) == 1)
        #expect(params.u32(at: 0x21c) == 0x1000)
        #expect(params.u32(at: 0x0c4) == 1)                    // ext_ramdisk_size
    }

    @Test func acpiRSDPAddress() {
        var params = BootParams()
        params.setACPIRSDP(GuestAddress(0xe_0000))
        #expect(params.u64(at: 0x070) == 0xe_0000)             // acpi_rsdp_addr
    }

    @Test func e820TableEntriesAre20BytesFrom0x2d0() throws {
        var params = BootParams()
        params.setE820(try E820Map(ramRanges: X86MemoryLayout.ramRanges(size: 512 << 20)))
        #expect(params.u8(at: 0x1e8) == 4)                     // e820_entries
        // Entry 3: {addr u64, size u64, type u32} at 0x2d0 + 3 × 20.
        #expect(params.u64(at: 0x2d0 + 60) == 0x10_0000)
        #expect(params.u64(at: 0x2d0 + 68) == (512 << 20) - 0x10_0000)
        #expect(params.u32(at: 0x2d0 + 76) == 1)
    }

    @Test func writtenToTheZeroPageAddress() throws {
        let memory = try makeGuestMemory()
        var params = BootParams()
        params.setLoaderFields()
        try params.write(to: memory)
        #expect(try memory.load(UInt8.self, at: GuestAddress(0x7000 + 0x210)) == 0xff)
    }

    // MARK: Command line

    @Test func commandLineIsWrittenNULTerminated() throws {
        let memory = try makeGuestMemory()
        try memory.write([UInt8](repeating: 0xee, count: 32), at: BootLayout.commandLine)
        try KernelCommandLine.write("console=ttyS0", maximum: 2047, to: memory)
        #expect(try memory.read(at: BootLayout.commandLine, count: 14) == Array("console=ttyS0".utf8) + [0])
    }

    @Test func commandLineAtTheLimitFitsAndOneMoreByteDoesNot() throws {
        let memory = try makeGuestMemory()
        try KernelCommandLine.write(String(repeating: "x", count: 2047), maximum: 2047, to: memory)
        let error = thrownError { try KernelCommandLine.write(String(repeating: "x", count: 2048), maximum: 2047, to: memory) }
        #expect(error == .commandLineTooLong(length: 2048, maximum: 2047))
        #expect(error?.description == "kernel command line of 2048 bytes is too long (this kernel accepts at most 2047)")
    }
}
