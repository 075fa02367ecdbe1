import Testing
@testable import Boot
import GuestMemory

/// The setup header of a bzImage (Documentation/arch/x86/boot.rst), read from the minimal bzImages that
/// scripts/make-boot-fixtures builds, and every way a file can fail to be one.
@Suite struct BzImageTests {
    let lz4Image = Fixture.bytes("bzImage-lz4")

    @Test func readsTheSetupHeaderFields() throws {
        let image = try BzImage(lz4Image)
        #expect(image.header.version == 0x020f)
        #expect(BzImage.versionString(image.header.version) == "2.15")
        #expect(image.header.setupSects == 1)
        #expect(image.setupSize == 1024)                       // boot sector + 1 setup sector
        #expect(image.header.loadflags & SetupHeader.LoadFlags.loadedHigh != 0)
        #expect(image.header.xloadflags & SetupHeader.XLoadFlags.kernel64 != 0)
        #expect(image.header.initrdAddrMax == 0x7fff_ffff)
        #expect(image.header.cmdlineSize == 2047)
        #expect(image.header.kernelAlignment == 0x20_0000)
        #expect(image.header.relocatableKernel)
        #expect(image.header.prefAddress == 0x100_0000)
        #expect(image.header.initSize == 0x40_0000)
    }

    @Test func relocatableKernelLoadsAtItsPreferredAddress() throws {
        #expect(try BzImage(lz4Image).loadAddress == GuestAddress(0x100_0000))
    }

    @Test func nonRelocatableKernelLoadsAtCode32Start() throws {
        var bytes = lz4Image
        bytes[SetupHeader.Offset.relocatableKernel] = 0
        #expect(try BzImage(bytes).loadAddress == GuestAddress(0x10_0000))
    }

    @Test func payloadIsFoundAndItsFormatRecognised() throws {
        #expect(try BzImage(lz4Image).payloadFormat == .lz4)
        #expect(try BzImage(Fixture.bytes("bzImage-gzip")).payloadFormat == .gzip)
        #expect(try BzImage(Fixture.bytes("bzImage-xz")).payloadFormat == .xz)
    }

    @Test func setupSectsZeroMeansFour() throws {
        // Four setup sectors + the boot sector = 2560 bytes before the protected-mode kernel.
        var bytes = lz4Image
        bytes[SetupHeader.Offset.setupSects] = 0
        bytes += [UInt8](repeating: 0, count: 4096)
        bytes.set32(0, at: SetupHeader.Offset.payloadLength)      // the payload moved; forget it
        #expect(try BzImage(bytes).setupSize == 2560)
    }

    @Test func setupHeaderBytesEndWhereTheJumpSays() throws {
        // 0x202 + byte at 0x201 (0x6a) = 0x26c.
        let header = try BzImage(lz4Image).setupHeaderBytes
        #expect(header.startIndex == 0x1f1)
        #expect(header.endIndex == 0x26c)
    }

    // MARK: Rejections

    @Test func fileWithoutHdrSIsNotAKernel() {
        var bytes = lz4Image
        bytes[0x202] = UInt8(ascii: "X")
        #expect(thrownError { try BzImage(bytes) } == .notAKernel("no HdrS magic at 0x202"))
        #expect(thrownError { try BzImage(bytes) }?.description == "not a Linux kernel (no HdrS magic at 0x202)")
    }

    @Test func oldProtocolIsRejectedByVersion() {
        var bytes = lz4Image
        bytes.set16(0x0203, at: SetupHeader.Offset.version)
        let error = thrownError { try BzImage(bytes) }
        #expect(error == .protocolTooOld(version: 0x0203))
        #expect(error?.description == "boot protocol 2.03 too old (Swiftlet needs 2.06 or newer)")
    }

    @Test func kernelWithout64BitEntryIsRejected() {
        var bytes = lz4Image
        bytes.set16(0, at: SetupHeader.Offset.xloadflags)
        #expect(thrownError { try BzImage(bytes) } == .no64BitEntry(version: 0x020f))
    }

    @Test func protocolBefore2_12HasNoXloadflagsSoNo64BitEntry() {
        var bytes = lz4Image
        bytes.set16(0x020a, at: SetupHeader.Offset.version)
        #expect(thrownError { try BzImage(bytes) } == .no64BitEntry(version: 0x020a))
    }

    @Test func everyTruncationIsAnErrorNotACrash() {
        // Cut the file at every length up to the end of the payload: all must throw.
        let image = try! BzImage(lz4Image)
        let payloadEnd = image.setupSize + Int(image.header.payloadOffset) + Int(image.header.payloadLength)
        for length in 0..<payloadEnd {
            #expect(thrownError { try BzImage(Array(lz4Image[..<length])) } != nil, "length \(length)")
        }
    }

    @Test func payloadBeyondTheFileIsTruncation() {
        var bytes = lz4Image
        bytes.set32(0xffff_fff0, at: SetupHeader.Offset.payloadOffset)
        guard case .truncated = thrownError({ try BzImage(bytes) }) else {
            Issue.record("expected .truncated")
            return
        }
    }

    @Test func headerDeclaringAnEndBeyondTheFileIsTruncation() {
        // A jump displacement of 0xff claims the header runs to 0x301; a 0x280-byte file cannot hold it.
        var bytes = Array(lz4Image[..<0x280])
        bytes[0x201] = 0xff
        guard case .truncated(what: "setup header", _, _) = thrownError({ try BzImage(bytes) }) else {
            Issue.record("expected a truncated setup header")
            return
        }
    }

    @Test func payloadFormatsAreRecognisedByMagic() {
        #expect(PayloadFormat.detect([0x1f, 0x8b, 0x08][...]) == .gzip)
        #expect(PayloadFormat.detect([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00][...]) == .xz)
        #expect(PayloadFormat.detect([0x02, 0x21, 0x4c, 0x18][...]) == .lz4)
        #expect(PayloadFormat.detect([0x28, 0xb5, 0x2f, 0xfd][...]) == .zstd)
        #expect(PayloadFormat.detect(Array("BZh9".utf8)[...]) == .bzip2)
        #expect(PayloadFormat.detect([0x5d, 0x00, 0x00, 0x80][...]) == .lzma)
        #expect(PayloadFormat.detect([0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a][...]) == .lzo)
        #expect(PayloadFormat.detect([0x7f, 0x45, 0x4c, 0x46][...]) == .uncompressed)
        #expect(PayloadFormat.detect([0x00, 0x01][...]) == .unknown)
        #expect(PayloadFormat.detect([][...]) == .unknown)
    }

    @Test func identifyTellsKernelsFromOtherFiles() {
        #expect(KernelKind.identify(lz4Image) == .bzImage(protocolVersion: 0x020f, payload: .lz4))
        #expect(KernelKind.identify(Fixture.bytes("tiny-kernel.elf")) == .elf)
        #expect(KernelKind.identify(Fixture.bytes("sample.txt")) == nil)
        #expect(KernelKind.identify([]) == nil)
    }
}
