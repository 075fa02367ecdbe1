import Devices
import Foundation
import Synchronization
import Testing

@testable import Virtio
@testable import VirtioPCI

final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// The transport's threads as the VMM runs them: an event loop delivering queue notifications (ioeventfd) while
/// a vCPU resets and re-initialises the device. Nothing may deadlock or trap, whatever the interleaving.
@Suite("virtio-pci threads")
struct ConcurrencyTests {
    // The two sides run on threads of their own, not as tasks of the two-thread concurrency pool: in the full
    // parallel test run other suites' blocking waits can hold the pool's other thread, and the kicking task then
    // spun for 20 minutes waiting for a resetting task that never got to run (seen in a CI run, 2026-12-04).
    @Test func kicksRacingResetsAndReinitialisation() throws {
        let rig = try Rig(EntropyDevice(source: CountingSource()))
        rig.bringUp()
        let ring = rig.ring
        for _ in 0..<8 { try ring.publish([try ring.writable(16)]) }
        let transport = rig.transport
        let pci = rig.pci
        let stop = StopFlag()
        let kickerDone = DispatchSemaphore(value: 0)

        // The event loop: kick as fast as it can until the vCPU side is done.
        Thread.detachNewThread {
            while !stop.value.load(ordering: .relaxed) { transport.queueNotified(index: 0) }
            kickerDone.signal()
        }
        // The vCPU (this thread): reset and bring the device up again, over and over.
        for _ in 0..<200 {
            pci.setStatus([])
            _ = pci.negotiate(VirtioFeature.version1 | VirtioFeature.ringEventIndex)
            pci.write(pci.common, PCIDriver.configMSIXVector, 2, 0)
            _ = pci.setUpQueue(0, size: 16, vector: 1)
            pci.setStatus([.acknowledge, .driver, .featuresOK, .driverOK])
        }
        stop.value.store(true, ordering: .relaxed)
        kickerDone.wait()
        #expect(transport.status.contains(.driverOK))
    }
}
