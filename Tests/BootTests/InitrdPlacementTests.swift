import Testing
@testable import Boot
import GuestMemory

/// The initrd goes as high as it can: page-aligned, ending at or below min(end of low RAM,
/// initrd_addr_max + 1), and never over the kernel.
@Suite struct InitrdPlacementTests {
    let kernelEnd = GuestAddress(0x400_0000)     // 64 MiB

    @Test func endsAtTheTopOfLowRAM() throws {
        let address = try InitrdPlacement.address(size: 0x10_0000, lowRAMEnd: GuestAddress(512 << 20),
                                                  addressMax: 0x7fff_ffff, kernelEnd: kernelEnd)
        #expect(address == GuestAddress((512 << 20) - 0x10_0000))
    }

    @Test func startIsRoundedDownToAPage() throws {
        let address = try InitrdPlacement.address(size: 1000, lowRAMEnd: GuestAddress(512 << 20),
                                                  addressMax: 0x7fff_ffff, kernelEnd: kernelEnd)
        #expect(address == GuestAddress((512 << 20) - 4096))
    }

    @Test func staysBelowInitrdAddrMax() throws {
        // A 3 GiB guest, but the kernel wants its initrd below 2 GiB (initrd_addr_max = 0x7fffffff).
        let address = try InitrdPlacement.address(size: 0x20_0000, lowRAMEnd: GuestAddress(0xc000_0000),
                                                  addressMax: 0x7fff_ffff, kernelEnd: kernelEnd)
        #expect(address == GuestAddress(0x8000_0000 - 0x20_0000))
    }

    @Test func initrdThatWouldOverlapTheKernelIsRejected() {
        // 96 MiB of RAM, kernel up to 64 MiB: a 40 MiB initrd does not fit above it.
        let error = thrownError {
            try InitrdPlacement.address(size: 40 << 20, lowRAMEnd: GuestAddress(96 << 20), addressMax: 0x7fff_ffff, kernelEnd: kernelEnd)
        }
        #expect(error == .initrdDoesNotFit(size: 40 << 20, limit: GuestAddress(96 << 20), kernelEnd: kernelEnd))
        #expect(error?.description == "initrd of 40.0 MiB does not fit below 0x6000000 (it must lie above the kernel, which ends at 0x4000000)")
    }

    @Test func initrdLargerThanAllOfRAMIsRejected() {
        #expect(thrownError {
            try InitrdPlacement.address(size: 1 << 40, lowRAMEnd: GuestAddress(96 << 20), addressMax: 0x7fff_ffff, kernelEnd: kernelEnd)
        } != nil)
    }

    @Test func exactFitDirectlyAboveTheKernel() throws {
        let address = try InitrdPlacement.address(size: 32 << 20, lowRAMEnd: GuestAddress(96 << 20),
                                                  addressMax: 0x7fff_ffff, kernelEnd: kernelEnd)
        #expect(address == kernelEnd)
    }
}
