import Foundation
import GuestMemory
import Testing

@testable import Virtio

/// Feature negotiation (virtio 1.2 §2.2), the device status state machine (§2.1, §3.1.1), reset (§2.4) and
/// the queue setup registers, driven the way Linux's virtio_pci_modern does it.
@Suite("Device status and feature negotiation")
struct DeviceStateTests {
    static let deviceBit: UInt64 = 1 << 5

    func freshState() -> VirtioDeviceState {
        VirtioDeviceState(deviceFeatures: Self.deviceBit, queueMaximumSizes: [256, 128])
    }

    /// ACKNOWLEDGE, DRIVER, then the driver accepts `features`, as virtio_dev_probe does.
    func negotiate(_ state: inout VirtioDeviceState, features: UInt64) -> VirtioDeviceState.StatusWriteOutcome {
        #expect(state.writeStatus(DeviceStatus.acknowledge.rawValue) == .accepted)
        #expect(state.writeStatus(DeviceStatus([.acknowledge, .driver]).rawValue) == .accepted)
        state.driverFeatureSelect = 0
        state.writeDriverFeatureWindow(UInt32(truncatingIfNeeded: features))
        state.driverFeatureSelect = 1
        state.writeDriverFeatureWindow(UInt32(truncatingIfNeeded: features >> 32))
        return state.writeStatus(DeviceStatus([.acknowledge, .driver, .featuresOK]).rawValue)
    }

    /// Writes a queue register and checks whether the device took the write.
    func expectQueueWrite(
        _ state: inout VirtioDeviceState, _ register: VirtioDeviceState.QueueRegister, _ value: UInt32, taken: Bool,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let result = state.writeQueueRegister(register, value)
        #expect(result == taken, "write of \(value) to \(register)", sourceLocation: sourceLocation)
    }

    @Test func theDeviceOffersItsBitsPlusTheRingFeaturesAndVersion1() {
        var state = freshState()
        state.deviceFeatureSelect = 0
        #expect(state.deviceFeatureWindow == UInt32(Self.deviceBit | 1 << 28 | 1 << 29))
        state.deviceFeatureSelect = 1
        #expect(state.deviceFeatureWindow == 1)  // bit 32, VIRTIO_F_VERSION_1
        state.deviceFeatureSelect = 2
        #expect(state.deviceFeatureWindow == 0)
    }

    @Test func featuresTheCoreDoesNotImplementAreNeverOffered() {
        let state = VirtioDeviceState(
            deviceFeatures: VirtioFeature.accessPlatform | VirtioFeature.ringPacked, queueMaximumSizes: [8])
        #expect(state.offeredFeatures == VirtioFeature.offeredByCore)
    }

    @Test func theNormalSequenceNegotiatesAndActivates() throws {
        var state = freshState()
        let wanted = VirtioFeature.version1 | VirtioFeature.ringEventIndex | Self.deviceBit
        #expect(negotiate(&state, features: wanted) == .featuresAccepted)
        #expect(state.status == [.acknowledge, .driver, .featuresOK])
        #expect(state.negotiatedFeatures == wanted)
        #expect(state.writeStatus(DeviceStatus([.acknowledge, .driver, .featuresOK, .driverOK]).rawValue) == .activate)
        #expect(state.status.contains(.driverOK))
    }

    @Test func featuresNeverOfferedAreRefused() {
        var state = freshState()
        let outcome = negotiate(&state, features: VirtioFeature.version1 | VirtioFeature.accessPlatform | 1 << 7)
        #expect(outcome == .featuresRefused(unoffered: VirtioFeature.accessPlatform | 1 << 7, missingVersion1: false))
        // FEATURES_OK stays clear: that is how the driver finds out (§3.1.1 step 6).
        #expect(state.status == [.acknowledge, .driver])
        #expect(state.negotiatedFeatures == 0)
        // And the driver cannot go live regardless.
        #expect(state.writeStatus(DeviceStatus([.acknowledge, .driver, .featuresOK, .driverOK]).rawValue)
            == .featuresRefused(unoffered: VirtioFeature.accessPlatform | 1 << 7, missingVersion1: false))
        #expect(!state.status.contains(.driverOK))
    }

    @Test func aLegacyDriverWithoutVersion1IsRefused() {
        var state = freshState()
        #expect(negotiate(&state, features: Self.deviceBit) == .featuresRefused(unoffered: 0, missingVersion1: true))
    }

    @Test func featureWritesOutsideNegotiationAreIgnored() {
        var state = freshState()
        // Before DRIVER.
        let takenBeforeDriver = state.writeDriverFeatureWindow(0xFFFF_FFFF)
        #expect(!takenBeforeDriver)
        #expect(state.driverFeatures == 0)
        // After FEATURES_OK.
        _ = negotiate(&state, features: VirtioFeature.version1)
        state.driverFeatureSelect = 0
        let takenAfterFeaturesOK = state.writeDriverFeatureWindow(UInt32(Self.deviceBit))
        #expect(!takenAfterFeaturesOK)
        #expect(state.negotiatedFeatures == VirtioFeature.version1)
    }

    @Test func statusBitsMustComeInOrder() {
        var state = freshState()
        // DRIVER without ACKNOWLEDGE.
        #expect(state.writeStatus(DeviceStatus.driver.rawValue) == .ignored(attempted: .driver))
        #expect(state.status == [])
        // DRIVER_OK straight after DRIVER, skipping FEATURES_OK.
        _ = state.writeStatus(DeviceStatus([.acknowledge, .driver]).rawValue)
        #expect(state.writeStatus(DeviceStatus([.acknowledge, .driver, .driverOK]).rawValue)
            == .ignored(attempted: [.acknowledge, .driver, .driverOK]))
        #expect(state.status == [.acknowledge, .driver])
    }

    @Test func aDriverCannotClearABitExceptByReset() {
        var state = freshState()
        _ = negotiate(&state, features: VirtioFeature.version1)
        #expect(state.writeStatus(DeviceStatus.acknowledge.rawValue) == .ignored(attempted: .acknowledge))
        #expect(state.status == [.acknowledge, .driver, .featuresOK])
    }

    @Test func failedIsTerminalUntilReset() {
        var state = freshState()
        _ = state.writeStatus(DeviceStatus.acknowledge.rawValue)
        #expect(state.writeStatus(DeviceStatus([.acknowledge, .failed]).rawValue) == .failed)
        #expect(state.writeStatus(DeviceStatus([.acknowledge, .failed, .driver]).rawValue)
            == .ignored(attempted: [.acknowledge, .failed, .driver]))
        #expect(state.writeStatus(0) == .reset)
        #expect(state.status == [])
    }

    @Test func needsResetIsRaisedByTheDeviceAndSurvivesDriverWrites() {
        var state = freshState()
        _ = negotiate(&state, features: VirtioFeature.version1)
        // Before DRIVER_OK the driver is not told by interrupt; it sees the bit when it reads the status.
        #expect(state.markNeedsReset() == false)
        var fresh = freshState()
        _ = negotiate(&fresh, features: VirtioFeature.version1)
        _ = fresh.writeStatus(DeviceStatus([.acknowledge, .driver, .featuresOK, .driverOK]).rawValue)
        #expect(fresh.markNeedsReset() == true)  // once DRIVER_OK: configuration change notification
        #expect(fresh.markNeedsReset() == false)  // and only once
        // Writing back the status without the bit does not clear it; only a reset does.
        #expect(fresh.writeStatus(DeviceStatus([.acknowledge, .driver, .featuresOK, .driverOK]).rawValue) == .accepted)
        #expect(fresh.status.contains(.deviceNeedsReset))
        #expect(fresh.writeStatus(0) == .reset)
        #expect(fresh.status == [])
    }

    // MARK: Queue registers

    @Test func queuesAreProgrammedBetweenFeaturesOKAndDriverOK() throws {
        var state = freshState()
        // Too early: before FEATURES_OK.
        expectQueueWrite(&state, .size, 64, taken: false)
        _ = negotiate(&state, features: VirtioFeature.version1 | VirtioFeature.ringEventIndex)

        state.queueSelect = 1
        #expect(state.readQueueRegister(.size) == 128)  // the maximum, until the driver writes it
        expectQueueWrite(&state, .size, 64, taken: true)
        expectQueueWrite(&state, .descriptorLow, 0x1_0000, taken: true)
        expectQueueWrite(&state, .descriptorHigh, 0, taken: true)
        expectQueueWrite(&state, .availableLow, 0x3_0000, taken: true)
        expectQueueWrite(&state, .usedLow, 0x4_0000, taken: true)
        expectQueueWrite(&state, .usedHigh, 0, taken: true)
        let disabled = state.writeQueueRegister(.ready, 0)
        #expect(!disabled)  // cannot disable
        expectQueueWrite(&state, .ready, 1, taken: true)
        #expect(state.readQueueRegister(.ready) == 1)
        #expect(state.readQueueRegister(.availableLow) == 0x3_0000)
        // Once enabled, the queue's registers are frozen.
        expectQueueWrite(&state, .size, 32, taken: false)
        #expect(state.readQueueRegister(.size) == 64)

        // A queue that does not exist reads as size 0 and takes no writes.
        state.queueSelect = 2
        #expect(state.readQueueRegister(.size) == 0)
        expectQueueWrite(&state, .size, 8, taken: false)

        #expect(state.writeStatus(DeviceStatus([.acknowledge, .driver, .featuresOK, .driverOK]).rawValue) == .activate)
        // Too late: after DRIVER_OK.
        state.queueSelect = 0
        expectQueueWrite(&state, .size, 8, taken: false)

        let memory = try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: 64 << 20))
        let queues = try state.makeQueues(memory: memory)
        #expect(queues.count == 2)
        #expect(queues[0] == nil)  // never enabled
        let queue = try #require(queues[1])
        #expect(queue.index == 1 && queue.size == 64)
        #expect(queue.availableRing == GuestAddress(0x3_0000))
        #expect(queue.eventIndexEnabled && !queue.indirectDescriptorsEnabled)
    }

    @Test func addressesAre64BitsWrittenInHalves() {
        var state = freshState()
        _ = negotiate(&state, features: VirtioFeature.version1)
        expectQueueWrite(&state, .descriptorHigh, 0x1, taken: true)
        expectQueueWrite(&state, .descriptorLow, 0x2000, taken: true)
        #expect(state.queues[0].descriptorTable == GuestAddress(0x1_0000_2000))
        #expect(state.readQueueRegister(.descriptorHigh) == 1)
    }

    @Test func anInvalidQueueIsReportedAtDriverOK() throws {
        var state = freshState()
        _ = negotiate(&state, features: VirtioFeature.version1)
        state.writeQueueRegister(.size, 100)
        state.writeQueueRegister(.ready, 1)
        let memory = try GuestMemory(ranges: X86MemoryLayout.ramRanges(size: 64 << 20))
        #expect(throws: VirtioError.queueSizeNotPowerOfTwo(queue: 0, size: 100)) { try state.makeQueues(memory: memory) }
    }

    @Test func resetReturnsEverythingButTheOfferToItsInitialValue() throws {
        var state = freshState()
        _ = negotiate(&state, features: VirtioFeature.version1)
        state.queueSelect = 1
        state.writeQueueRegister(.size, 16)
        state.writeQueueRegister(.usedLow, 0x4000)
        state.writeQueueRegister(.ready, 1)
        #expect(state.writeStatus(0) == .reset)
        #expect(state == freshState())
    }

    @Test func theStateRoundTripsThroughCodable() throws {
        var state = freshState()
        _ = negotiate(&state, features: VirtioFeature.version1 | Self.deviceBit)
        state.writeQueueRegister(.descriptorLow, 0x1_0000)
        state.configurationChanged()
        let decoded = try JSONDecoder().decode(VirtioDeviceState.self, from: JSONEncoder().encode(state))
        #expect(decoded == state)
    }
}
