import Testing
@testable import Boot
import GuestMemory

/// ELF64 kernels: tiny-kernel.elf is linked like vmlinux (virtual 0xffffffff81000000, physical 16 MiB,
/// physical e_entry, text and data+bss segments, a Xen PVH note). See scripts/make-boot-fixtures.
@Suite struct ElfKernelTests {
    let kernel = Fixture.bytes("tiny-kernel.elf")

    // Offsets in the ELF64 header and in a program header.
    static let programHeaderOffset = 32, programHeaderCount = 56
    static func programHeader(_ index: Int, in bytes: [UInt8]) -> Int { Int(bytes.u64(programHeaderOffset)) + index * 56 }

    @Test func parsesEntryAndLoadSegments() throws {
        let elf = try ElfKernel(kernel)
        #expect(elf.rawEntry == 0x100_0000)
        #expect(elf.entry == GuestAddress(0x100_0000))
        #expect(elf.segments.count == 2)
        #expect(elf.segments[0].physicalAddress == GuestAddress(0x100_0000))
        #expect(elf.segments[0].virtualAddress == 0xffff_ffff_8100_0000)
        #expect(elf.segments[1].physicalAddress == GuestAddress(0x100_1000))
        #expect(elf.segments[1].fileSize == 8)
        #expect(elf.segments[1].memorySize == 8 + 8192)          // .data + .bss
        #expect(elf.physicalStart == GuestAddress(0x100_0000))
        #expect(elf.physicalEnd == GuestAddress(0x100_3008))
    }

    @Test func virtualEntryIsTranslatedThroughItsSegment() throws {
        let elf = try ElfKernel(Fixture.bytes("tiny-kernel-virtual-entry.elf"))
        #expect(elf.rawEntry == 0xffff_ffff_8100_0000)
        #expect(elf.entry == GuestAddress(0x100_0000))
    }

    @Test func loadCopiesFileBytesAndZeroesBss() throws {
        let memory = try makeGuestMemory()
        // Dirty the .bss area first: loading must clear it.
        try memory.write([UInt8](repeating: 0xaa, count: 8192), at: GuestAddress(0x100_1008))
        let elf = try ElfKernel(kernel)
        try elf.load(into: memory)
        // startup_64: mov $0x3f8, %dx; mov $'L', %al; out %al, %dx; hlt
        #expect(try memory.read(at: GuestAddress(0x100_0000), count: 8) == [0x66, 0xba, 0xf8, 0x03, 0xb0, 0x4c, 0xee, 0xf4])
        #expect(try memory.load(UInt64.self, at: GuestAddress(0x100_1000)) == 0x1122_3344_5566_7788)
        #expect(try memory.read(at: GuestAddress(0x100_1008), count: 8192).allSatisfy { $0 == 0 })
    }

    @Test func segmentOutsideGuestRAMIsRejectedAtLoad() throws {
        let memory = try makeGuestMemory(mebibytes: 8)          // the kernel wants 16 MiB
        guard case .kernelDoesNotFit = thrownError({ try ElfKernel(kernel).load(into: memory) }) else {
            Issue.record("expected kernelDoesNotFit")
            return
        }
    }

    // MARK: PVH note

    @Test func findsThePVHEntryNote() throws {
        // pvh_start is 8 bytes into the text: 0x1000008.
        #expect(try ElfKernel(kernel).pvhEntry == GuestAddress(0x100_0008))
        #expect(try ElfKernel(Fixture.bytes("tiny-kernel-no-pvh.elf")).pvhEntry == nil)
    }

    @Test func notesAreParsedWithNameTypeAndDescriptor() throws {
        let elf = try ElfKernel(kernel)
        let noteRange = 0x1010..<(0x1010 + 24)                // PT_NOTE: offset 0x1010, 24 bytes
        let notes = try ElfNotes.parse(elf.bytes, range: noteRange)
        #expect(notes == [ElfNotes.Note(name: "Xen", type: 18, descriptor: [0x08, 0, 0, 0x01, 0, 0, 0, 0])])
    }

    @Test func noteRunningPastItsSegmentIsRejected() {
        var bytes = kernel
        bytes.set32(0x1000, at: 0x1010 + 4)                    // descsz far beyond the 24-byte segment
        guard case .invalidELF = thrownError({ try ElfKernel(bytes) }) else {
            Issue.record("expected invalidELF")
            return
        }
    }

    // MARK: Rejections

    @Test func wrongClassDataOrMachineIsRejected() {
        var class32 = kernel
        class32[4] = 1
        #expect(thrownError { try ElfKernel(class32) } == .invalidELF("ELF class 1, need 2 (64-bit)"))
        var bigEndian = kernel
        bigEndian[5] = 2
        #expect(thrownError { try ElfKernel(bigEndian) } == .invalidELF("data encoding 2, need 1 (little-endian)"))
        var arm64 = kernel
        arm64.set16(183, at: 18)
        #expect(thrownError { try ElfKernel(arm64) } == .invalidELF("machine 183, need 62 (x86-64)"))
        var sharedObject = kernel
        sharedObject.set16(3, at: 16)
        #expect(thrownError { try ElfKernel(sharedObject) } == .invalidELF("type 3, need 2 (ET_EXEC, an executable)"))
    }

    @Test func everyTruncationIsAnErrorNotACrash() {
        // The last PT_LOAD's file bytes end at 0x2008; any shorter file must be refused.
        for length in 0..<0x2008 {
            #expect(thrownError { try ElfKernel(Array(kernel[..<length])) } != nil, "length \(length)")
        }
    }

    @Test func segmentBeyondTheFileIsRejected() {
        var bytes = kernel
        let header = Self.programHeader(0, in: bytes)
        bytes.set64(0x10_0000, at: header + 32)                // p_filesz = 1 MiB
        bytes.set64(0x10_0000, at: header + 40)                // p_memsz  = 1 MiB (so it overlaps, too)
        guard case .invalidELF(let reason) = thrownError({ try ElfKernel(bytes) }) else {
            Issue.record("expected invalidELF")
            return
        }
        #expect(reason.contains("outside the"))
    }

    @Test func offsetPlusSizeThatWrapsIsRejected() {
        var bytes = kernel
        let header = Self.programHeader(0, in: bytes)
        bytes.set64(0xffff_ffff_ffff_fff0, at: header + 8)     // p_offset near 2^64
        #expect(thrownError { try ElfKernel(bytes) } != nil)
    }

    @Test func overlappingSegmentsAreRejected() {
        var bytes = kernel
        let header = Self.programHeader(1, in: bytes)
        bytes.set64(0x100_0010, at: header + 24)               // data's p_paddr inside text
        guard case .invalidELF(let reason) = thrownError({ try ElfKernel(bytes) }) else {
            Issue.record("expected invalidELF")
            return
        }
        #expect(reason.contains("overlap"))
    }

    @Test func fileSizeLargerThanMemorySizeIsRejected() {
        var bytes = kernel
        let header = Self.programHeader(1, in: bytes)
        bytes.set64(4, at: header + 40)                        // p_memsz 4 < p_filesz 8
        guard case .invalidELF = thrownError({ try ElfKernel(bytes) }) else {
            Issue.record("expected invalidELF")
            return
        }
    }

    @Test func segmentWrappingPastTheTopOfMemoryIsRejected() {
        var bytes = kernel
        let header = Self.programHeader(1, in: bytes)
        bytes.set64(0xffff_ffff_ffff_f000, at: header + 24)    // p_paddr + p_memsz wraps
        guard case .invalidELF(let reason) = thrownError({ try ElfKernel(bytes) }) else {
            Issue.record("expected invalidELF")
            return
        }
        #expect(reason.contains("wraps"))
    }

    @Test func entryOutsideEverySegmentIsRejected() {
        var bytes = kernel
        bytes.set64(0x4000_0000, at: 24)
        #expect(thrownError { try ElfKernel(bytes) } == .invalidELF("entry point 0x40000000 lies in no loadable segment"))
    }

    @Test func absurdProgramHeaderCountIsTruncationNotACrash() {
        var bytes = kernel
        bytes.set16(0xfffe, at: Self.programHeaderCount)
        guard case .truncated = thrownError({ try ElfKernel(bytes) }) else {
            Issue.record("expected truncated")
            return
        }
    }
}
