import Foundation
import Synchronization
import Testing
@testable import Swiftlet

/// The pause gate's rules when pauses and resumes follow each other faster than a parked vCPU thread gets a core
/// (Sources/Swiftlet/Lifecycle/PauseGate.swift). Each test plays one vCPU with a thread of its own, holding it at
/// the point where the race would bite, so the outcome does not depend on scheduling.
@Suite struct PauseGateTests {
    /// A thread that plays a vCPU: parks when asked, then waits for `mayPark` before it may park again.
    final class FakeVCPU: @unchecked Sendable {
        let gate: PauseGate
        let stopping = Atomic<Bool>(false)
        let leftPark = DispatchSemaphore(value: 0)
        let mayPark = DispatchSemaphore(value: 0)
        let ended = DispatchSemaphore(value: 0)

        init(gate: PauseGate) { self.gate = gate }

        func start(parks: Int) {
            Thread.detachNewThread { [self] in
                for round in 0..<parks {
                    if round > 0 { mayPark.wait() }
                    _ = gate.park(stopping: stopping)
                    leftPark.signal()
                }
                gate.vcpuFinished()
                ended.signal()
            }
        }
    }

    /// A gate paused with one fake vCPU parked in it, which will park `parks` times in all.
    static func pausedWithOneVCPU(parks: Int) throws -> (PauseGate, FakeVCPU) {
        let gate = try PauseGate()
        let vcpu = FakeVCPU(gate: gate)
        gate.requestPause()
        vcpu.start(parks: parks)
        #expect(gate.waitUntilParked(total: 1, milliseconds: 10_000))
        return (gate, vcpu)
    }

    @Test("a pause right after a resume waits for the vCPU to park again: one still leaving the last pause does not count")
    func aPauseCountsOnlyVCPUsParkedInIt() throws {
        let (gate, vcpu) = try Self.pausedWithOneVCPU(parks: 2)

        gate.resume()
        gate.requestPause()   // before the vCPU thread has run again
        // The vCPU has probably not even left the first pause yet: it must not count for this one.
        #expect(gate.parkedCount == 0)
        #expect(!gate.waitUntilParked(total: 1, milliseconds: 0), "a vCPU still in the last pause counted as parked in this one")
        // The vCPU leaves the first pause (its wake-up was not lost to the second request) ...
        #expect(vcpu.leftPark.wait(timeout: .now() + 10) == .success, "the resume's wake-up reached the vCPU")
        // ... and has not parked again yet: the second pause is not done.
        #expect(!gate.waitUntilParked(total: 1, milliseconds: 200), "a vCPU on its way out of the last pause counted as parked")
        #expect(gate.parkedCount == 0)

        vcpu.mayPark.signal()
        #expect(gate.waitUntilParked(total: 1, milliseconds: 10_000))
        gate.resume()
        #expect(vcpu.leftPark.wait(timeout: .now() + 10) == .success)
        #expect(vcpu.ended.wait(timeout: .now() + 10) == .success)
    }

    @Test("a vCPU that saw the pause request just before the resume does not park: the machine runs")
    func parkAfterTheResumeReturnsAtOnce() throws {
        let gate = try PauseGate()
        gate.requestPause()
        gate.resume()
        let vcpu = FakeVCPU(gate: gate)
        vcpu.start(parks: 1)
        #expect(vcpu.leftPark.wait(timeout: .now() + 10) == .success, "parked with no pause wanted")
        #expect(gate.parkedCount == 0)
        #expect(vcpu.ended.wait(timeout: .now() + 10) == .success)
    }

    @Test("many pauses and resumes back to back with a slow vCPU: every pause sees it park, every resume frees it")
    func backToBackCycles() throws {
        let gate = try PauseGate()
        let cycles = 300
        let vcpu = FakeVCPU(gate: gate)
        gate.requestPause()
        vcpu.start(parks: cycles)
        for cycle in 0..<cycles {
            if cycle > 0 {
                gate.requestPause()
                vcpu.mayPark.signal()
            }
            #expect(gate.waitUntilParked(total: 1, milliseconds: 10_000), "pause \(cycle)")
            gate.resume()
            #expect(vcpu.leftPark.wait(timeout: .now() + 10) == .success, "resume \(cycle)")
        }
        #expect(vcpu.ended.wait(timeout: .now() + 10) == .success)
    }

    @Test("a stop wakes a parked vCPU, which then ends")
    func stopWakesParkedVCPUs() throws {
        let (gate, vcpu) = try Self.pausedWithOneVCPU(parks: 1)
        vcpu.stopping.store(true, ordering: .releasing)
        gate.wakeForStop()
        #expect(vcpu.leftPark.wait(timeout: .now() + 10) == .success)
        #expect(vcpu.ended.wait(timeout: .now() + 10) == .success)
    }
}
