import GuestMemory
import Testing

@testable import Virtio

/// Notification suppression in both directions (virtio 1.2 §2.7.7 used buffers, §2.7.10 available buffers),
/// with and without VIRTIO_F_EVENT_IDX.
@Suite("Notification suppression")
struct NotificationTests {
    /// Publishes, pops and completes `count` one-buffer chains.
    func complete(_ count: Int, _ driver: TestDriver, _ queue: inout Queue) throws {
        for _ in 0..<count {
            try driver.publish([try driver.writable(1)])
            let chain = try #require(try queue.popAvailable())
            try queue.addUsed(head: chain.head, length: 1)
        }
    }

    /// The device's decision after a batch: does the driver get a used-buffer notification?
    func expectNotification(_ queue: inout Queue, sourceLocation: SourceLocation = #_sourceLocation) {
        let decided = queue.needsNotification()
        #expect(decided, "expected a used-buffer notification", sourceLocation: sourceLocation)
    }

    func expectNoNotification(_ queue: inout Queue, sourceLocation: SourceLocation = #_sourceLocation) {
        let decided = queue.needsNotification()
        #expect(!decided, "expected the notification to be suppressed", sourceLocation: sourceLocation)
    }

    // MARK: Without EVENT_IDX: the ring flags

    @Test func withoutEventIndexTheDriverIsInterruptedUnlessItSetNoInterrupt() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue(features: VirtioFeature.version1)
        try complete(1, driver, &queue)
        expectNotification(&queue)

        try driver.setAvailableFlags(1)  // VIRTQ_AVAIL_F_NO_INTERRUPT
        try complete(1, driver, &queue)
        expectNoNotification(&queue)
    }

    @Test func withoutEventIndexTheDeviceTogglesNoNotifyInUsedFlags() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue(features: VirtioFeature.version1)
        try queue.disableNotifications()
        #expect(try driver.usedFlags() == 1)  // VIRTQ_USED_F_NO_NOTIFY
        #expect(try queue.enableNotifications() == false)
        #expect(try driver.usedFlags() == 0)
    }

    // MARK: With EVENT_IDX: used_event and avail_event

    @Test func usedEventSaysWhichUsedEntryTheDriverWantsToHearAbout() throws {
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        // used_event = 0: interrupt once entry 0 is written, i.e. used.idx goes 0 → 1.
        try driver.setUsedEvent(0)
        try complete(1, driver, &queue)
        expectNotification(&queue)

        // The driver has not moved used_event: entry 1 does not cross it again.
        try complete(1, driver, &queue)
        expectNoNotification(&queue)

        // used_event = 3 (the driver wants to hear once entry 3 is used); 2 → 3 is not enough, 3 → 4 is.
        try driver.setUsedEvent(3)
        try complete(1, driver, &queue)
        expectNoNotification(&queue)
        try complete(1, driver, &queue)
        expectNotification(&queue)

        // A batch that jumps over used_event still notifies, once.
        try driver.setUsedEvent(5)
        try complete(3, driver, &queue)
        expectNotification(&queue)
        expectNoNotification(&queue)
    }

    @Test func theAvailFlagIsIgnoredWithEventIndex() throws {
        // §2.7.7.2: with EVENT_IDX the device MUST ignore avail.flags.
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        try driver.setAvailableFlags(1)
        try driver.setUsedEvent(0)
        try complete(1, driver, &queue)
        expectNotification(&queue)
    }

    @Test func theNeedEventFormulaHoldsAcrossWrapAround() {
        // Linux's vring_need_event(event, new, old): did the index move past `event` going from old to new?
        #expect(Queue.needEvent(event: 0, new: 1, old: 0))
        #expect(!Queue.needEvent(event: 1, new: 1, old: 0))
        #expect(Queue.needEvent(event: 5, new: 8, old: 4))
        #expect(!Queue.needEvent(event: 9, new: 8, old: 4))
        // old 65534 → new 1 passes 65535 and 0.
        #expect(Queue.needEvent(event: 65_535, new: 1, old: 65_534))
        #expect(Queue.needEvent(event: 0, new: 1, old: 65_534))
        #expect(!Queue.needEvent(event: 1, new: 1, old: 65_534))
        // Nothing new: never.
        #expect(!Queue.needEvent(event: 7, new: 7, old: 7))
    }

    @Test func eventIndexNotificationsWorkPastIndex65535() throws {
        let driver = try TestDriver(size: 4, startIndex: 65_534)
        var queue = try driver.makeQueue()
        try driver.setUsedEvent(65_535)
        try complete(1, driver, &queue)  // used.idx 65534 → 65535: entry 65534 written, not yet 65535
        expectNoNotification(&queue)
        try complete(1, driver, &queue)  // 65535 → 0: entry 65535 written
        expectNotification(&queue)
        #expect(try driver.usedIndex() == 0)
    }

    @Test func availEventFollowsWhatTheDeviceHasConsumed() throws {
        // With EVENT_IDX the device asks to be kicked when the driver publishes past avail_event (§2.7.10);
        // while notifications are on, it keeps avail_event at the next entry it will read.
        let driver = try TestDriver()
        var queue = try driver.makeQueue()
        try complete(3, driver, &queue)
        #expect(try driver.availableEvent() == 3)
        // EVENT_IDX: used.flags stays 0 (§2.7.10.1).
        try queue.disableNotifications()
        #expect(try driver.usedFlags() == 0)

        // Off: popping no longer advances it, so the driver's vring_need_event stays false and it stops kicking.
        try complete(2, driver, &queue)
        #expect(try driver.availableEvent() == 3)

        // On again: caught up.
        #expect(try queue.enableNotifications() == false)
        #expect(try driver.availableEvent() == 5)
    }

    @Test func enablingNotificationsReportsBuffersThatArrivedWhileTheyWereOff() throws {
        // The race §2.7.10 warns about: the driver published while notifications were off and did not kick.
        for features in [VirtioFeature.offeredByCore, VirtioFeature.version1] {
            let driver = try TestDriver()
            var queue = try driver.makeQueue(features: features)
            try queue.disableNotifications()
            try driver.publish([try driver.writable(1)])
            #expect(try queue.enableNotifications() == true)
            #expect(try queue.popAvailable() != nil)
            #expect(try queue.enableNotifications() == false)
        }
    }
}
