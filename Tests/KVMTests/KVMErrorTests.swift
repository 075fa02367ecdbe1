import Foundation
import GuestMemory
import SystemPackage
import Testing
@testable import KVM

/// What a user reads when /dev/kvm cannot be used: the cause, and what to do about it.
struct KVMErrorTests {
    @Test func aMissingDeviceSaysToEnableVirtualizationAndLoadTheModule() {
        #expect(throws: KVMError.deviceUnavailable(path: "/nonexistent/kvm", errno: .noSuchFileOrDirectory)) {
            try KVMSystem(path: "/nonexistent/kvm")
        }
        let text = KVMError.deviceUnavailable(path: "/dev/kvm", errno: .noSuchFileOrDirectory).description
        #expect(text.contains("modprobe kvm_intel"))
        #expect(text.contains("hardware virtualization"))
    }

    @Test func aPermissionProblemSaysToJoinTheKVMGroup() {
        let text = KVMError.deviceUnavailable(path: "/dev/kvm", errno: .permissionDenied).description
        #expect(text.contains("kvm group"))
    }

    @Test func ioctlFailuresNameTheIoctlAndErrno() {
        let text = KVMError.ioctlFailed(name: "KVM_CREATE_VM", errno: .invalidArgument).description
        #expect(text.hasPrefix("KVM_CREATE_VM failed"))
        #expect(text.contains("errno 22"))
    }

    @Test func aFileThatIsNotKVMIsRejected() {
        // /dev/null answers every ioctl with ENOTTY: the error says the file is not KVM and what /dev/kvm should be.
        #expect(throws: KVMError.notKVM(path: "/dev/null", errno: .inappropriateIOCTLForDevice)) {
            try KVMSystem(path: "/dev/null")
        }
        let text = KVMError.notKVM(path: "/dev/null", errno: .inappropriateIOCTLForDevice).description
        #expect(text.contains("/dev/null is not the KVM device"), "\(text)")
        #expect(text.contains("10:232"), "\(text)")
    }

    @Test("an emulation failure's instruction bytes are decoded from internal.data")
    func internalErrorInstructionBytes() {
        // flags = 1 (bytes present); then length 3 and `0f 01 ca` (clac), little-endian in the next word.
        let error = VCPUExit.InternalError(suberror: 1, data: [1, 0x00CA_010F_03, 0])
        #expect(error.instructionBytes == [0x0F, 0x01, 0xCA])
        #expect(VCPUExit.InternalError(suberror: 1, data: [0, 0, 0]).instructionBytes == nil)
        #expect(VCPUExit.InternalError(suberror: 1, data: [1, 0x20, 0]).instructionBytes == nil)   // length 32 > 15
    }
}

/// KVM objects the platform issue builds on, exercised directly against /dev/kvm.
@Suite(.enabled(if: FileManager.default.isReadableFile(atPath: "/dev/kvm"), "needs /dev/kvm"))
struct KVMBindingTests {
    @Test("KVM accepts the default irqchip routes plus MSI routes, and irqfd/ioeventfd registrations")
    func routingIRQFDAndIOEventFD() throws {
        let vm = try KVMSystem().createVM()
        try vm.createIRQChip()
        let routes = GSIRoute.defaultIRQChipRoutes + [.msi(gsi: 24, addressLow: 0xFEE0_0000, addressHigh: 0, data: 0x41)]
        try vm.setGSIRouting(routes)
        try vm.registerIRQFD(try EventFD(), gsi: 24)
        try vm.registerIOEventFD(try EventFD(), at: .port(0x510), length: 2)
        try vm.registerIOEventFD(try EventFD(), at: .mmio(GuestAddress(0xD000_0000)), length: 4, matching: 7)
    }

    @Test("setMSRsSkippingRefused names the MSRs KVM_SET_MSRS refuses and still sets the ones after them")
    func refusedMSRsAreSkippedNotFatal() throws {
        let vm = try KVMSystem().createVM()
        let vcpu = try vm.createVCPU(id: 0)
        // 0x174-0x176 are SYSENTER_CS/ESP/EIP, which every x86 KVM keeps; 0xDEAD0000 is no MSR at all.
        let msrs: [(index: UInt32, value: UInt64)] = [(0x174, 0x10), (0xDEAD_0000, 1), (0x175, 0x2000), (0xDEAD_0001, 2), (0x176, 0x3000)]
        let refused = try vcpu.setMSRsSkippingRefused(msrs)
        #expect(refused == [0xDEAD_0000, 0xDEAD_0001])
        let read = try vcpu.msrs([0x174, 0x175, 0x176])
        #expect(read[0x174] == 0x10 && read[0x175] == 0x2000 && read[0x176] == 0x3000, "\(read)")
    }

    @Test("the MSR walk: batches of at most 64, one call more per refused MSR, which is skipped; a short count is clamped")
    func msrBatchWalk() {
        let items = Array(0..<150)
        let refusing: Set<Int> = [3, 64, 65, 149]
        var calls: [[Int]] = [], refused: [Int] = []
        VCPU.walkMSRBatches(items, handle: { batch in
            calls.append(Array(batch))
            return batch.firstIndex { refusing.contains($0) }.map { $0 - batch.startIndex } ?? batch.count
        }, refused: { refused.append($0) })
        #expect(refused == [3, 64, 65, 149])
        #expect(calls.allSatisfy { $0.count <= 64 })
        // 0-63 stops at 3; 4-67 stops at 64; 65-128 stops at once; 66-129 goes through; 130-149 stops at 149.
        #expect(calls.map(\.count) == [64, 64, 64, 64, 20])
        #expect(Set(calls.flatMap { $0 }) == Set(items), "every item was offered")
        // A handler that claims more than it was given, or less than none, cannot move the walk outside the items.
        var offered = 0
        VCPU.walkMSRBatches(items, handle: { batch in offered += 1; return offered == 1 ? -5 : 1_000 }, refused: { _ in })
        #expect(offered == 4, "a first call that got through nothing skips one item; then 149 items in 3 whole batches")
    }

    @Test func supportedCPUIDHasTheKVMSignatureLeaf() throws {
        let entries = try KVMSystem().supportedCPUID()
        #expect(entries.contains { $0.function == 0x4000_0000 && $0.ebx == 0x4B4D_564B })   // "KVMK"
    }
}
