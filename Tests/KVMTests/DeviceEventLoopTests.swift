import Foundation
import Synchronization
import Testing
@testable import KVM
@testable import Swiftlet
import Virtio

/// The device thread: eventfd sources call their handlers; a paused source is not polled until resumed.
struct DeviceEventLoopTests {
    @Test func signalledSourcesRunTheirHandlerAndPausedOnesWait() throws {
        let loop = try DeviceEventLoop()
        let kicks = try EventFD(), data = try EventFD()
        let kicked = Mutex(0), read = Mutex(0), paused = Mutex(true)
        loop.add(kicks) { kicked.withLock { $0 += 1 } }
        loop.add(fd: data.fd.rawValue, events: Int16(POLLIN), isPaused: { paused.withLock { $0 } }) { _ in
            _ = data.consume()
            read.withLock { $0 += 1 }
        }
        try loop.start()
        defer { loop.stop() }

        kicks.signal()
        data.signal()
        #expect(wait { kicked.withLock { $0 } == 1 })
        Thread.sleep(forTimeInterval: 0.1)
        #expect(read.withLock { $0 } == 0, "paused: not polled")

        paused.withLock { $0 = false }
        loop.reconsider()
        #expect(wait { read.withLock { $0 } == 1 }, "resumed: the pending signal is seen")
    }

    @Test("a group's fds come and go while the loop runs; its deadline calls it with nothing ready")
    func groupsChangeTheirFdsAndHaveDeadlines() throws {
        let loop = try DeviceEventLoop()
        let first = try EventFD(), second = try EventFD()
        let polled = Mutex<[Int32]>([]), deadline = Mutex<ContinuousClock.Instant?>(nil)
        let calls = Mutex<[[Int32]]>([])
        let lastAsked = Mutex<[Int32]?>(nil)   // the fds the loop was last told to poll
        loop.addGroup(interest: {
            let fds = polled.withLock { $0 }
            lastAsked.withLock { $0 = fds }
            return DeviceEventLoop.Interest(descriptors: fds.map { .init(fd: $0, events: Int16(POLLIN)) },
                                            deadline: deadline.withLock { $0 })
        }, handler: { ready in
            for descriptor in ready where descriptor.fd == first.fd.rawValue { _ = first.consume() }
            for descriptor in ready where descriptor.fd == second.fd.rawValue { _ = second.consume() }
            calls.withLock { $0.append(ready.map(\.fd)) }
            // A handler on the loop's thread changes what is polled; the next round asks again by itself.
            if ready.isEmpty { deadline.withLock { $0 = nil } }
        })
        try loop.start()
        defer { loop.stop() }

        first.signal()
        Thread.sleep(forTimeInterval: 0.1)
        #expect(calls.withLock { $0 }.isEmpty, "not in the group yet")

        polled.withLock { $0 = [first.fd.rawValue] }
        loop.reconsider()
        #expect(wait { calls.withLock { $0 } == [[first.fd.rawValue]] })

        // Switch to the other fd and let the loop start a round with it before signalling both (waiting for the
        // loop to ask again, not for a fixed time: on a loaded CI host the loop thread may not run for a while).
        polled.withLock { $0 = [second.fd.rawValue] }
        loop.reconsider()
        #expect(wait { lastAsked.withLock { $0 } == [second.fd.rawValue] })
        calls.withLock { $0 = [] }
        first.signal()
        second.signal()
        #expect(wait { calls.withLock { $0 } == [[second.fd.rawValue]] })
        Thread.sleep(forTimeInterval: 0.1)
        #expect(calls.withLock { $0 } == [[second.fd.rawValue]], "the fd that left the group is not polled")

        calls.withLock { $0 = [] }
        let started = ContinuousClock.now
        deadline.withLock { $0 = .now + .milliseconds(100) }
        loop.reconsider()
        #expect(wait { calls.withLock { $0 } == [[]] }, "called for the deadline with nothing ready")
        #expect(ContinuousClock.now - started >= .milliseconds(100))
        Thread.sleep(forTimeInterval: 0.1)
        #expect(calls.withLock { $0 } == [[]], "no deadline left: no more calls")
    }

    @Test func aSourceWhoseFDChangesIsPolledOnTheFDItNamesNow() throws {
        let loop = try DeviceEventLoop()
        let first = try EventFD(), second = try EventFD()
        let current = Mutex<Int32?>(nil)
        let handled = Mutex<[Int32]>([])
        loop.add(events: Int16(POLLIN), currentFD: { current.withLock { $0 } }) { _ in
            let fd = current.withLock { $0 }
            if fd == first.fd.rawValue { _ = first.consume() } else { _ = second.consume() }
            handled.withLock { $0.append(fd ?? -1) }
        }
        try loop.start()
        defer { loop.stop() }

        first.signal()
        second.signal()
        Thread.sleep(forTimeInterval: 0.1)
        #expect(handled.withLock { $0 }.isEmpty, "no fd named: nothing polled")

        current.withLock { $0 = second.fd.rawValue }
        loop.reconsider()
        #expect(wait { handled.withLock { $0 } == [second.fd.rawValue] })
        current.withLock { $0 = first.fd.rawValue }
        loop.reconsider()
        #expect(wait { handled.withLock { $0 } == [second.fd.rawValue, first.fd.rawValue] })
    }

    @Test("a pause right after a resume, before the loop thread ran again, is still acknowledged (found as a flaky stuck-disk test under load)")
    func pauseRightAfterResumeIsAcknowledged() throws {
        let loop = try DeviceEventLoop(threadName: "devices")
        let kick = try EventFD()
        loop.add(kick) {}     // a loop with no source starts no thread
        try loop.start()
        defer { loop.stop() }
        #expect(loop.pause(milliseconds: 5000))
        // resume() then pause() back to back, with every core kept busy so that the parked loop seldom runs
        // between the two: the second request then consumes the first acknowledgement, and the loop, still
        // parked, must acknowledge again.
        let spinning = Atomic<Bool>(true)
        let spinners = (0..<4).map { _ in Thread { while spinning.load(ordering: .relaxed) {} } }
        spinners.forEach { $0.start() }
        defer { spinning.store(false, ordering: .relaxed) }
        for round in 0..<200 {
            loop.resume()
            guard loop.pause(milliseconds: 2000) else { Issue.record("round \(round): the loop did not acknowledge"); return }
        }
        loop.resume()
    }

    @Test("each disk has a loop of its own: a request stuck in one disk holds up neither the other devices nor the other disks (issue 13, defect 17)")
    func aStuckDiskHoldsUpNothingElse() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loops-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        func disk(_ name: String) throws -> BlockDevice {
            let path = directory.appendingPathComponent(name).path
            #expect(FileManager.default.createFile(atPath: path, contents: Data(count: 4096)))
            return try BlockDevice(image: RawDiskImage(path: path, readOnly: false), id: name)
        }
        let loops = try DeviceEventLoops()
        let slowDisk = try loops.loop(for: disk("a.img")), otherDisk = try loops.loop(for: disk("b.img"))
        #expect(try loops.loop(for: EntropyDevice()) === loops.shared)
        #expect(slowDisk !== loops.shared && otherDisk !== loops.shared && slowDisk !== otherDisk)
        #expect(loops.all.map(\.threadName) == ["devices", "disk0", "disk1"])

        // The first disk's handler blocks, as an fdatasync on a stalled host disk would.
        let stuck = DispatchSemaphore(value: 0), entered = DispatchSemaphore(value: 0)
        let slowKick = try EventFD(), otherKick = try EventFD(), networkKick = try EventFD()
        let served = Mutex<[String]>([])
        slowDisk.add(slowKick) { entered.signal(); stuck.wait(); served.withLock { $0.append("slow disk") } }
        otherDisk.add(otherKick) { served.withLock { $0.append("other disk") } }
        loops.shared.add(networkKick) { served.withLock { $0.append("network") } }
        try loops.start()
        defer { loops.stop() }

        slowKick.signal()
        #expect(entered.wait(timeout: .now() + 5) == .success)
        otherKick.signal()
        networkKick.signal()
        #expect(wait { Set(served.withLock { $0 }) == ["other disk", "network"] }, "served while the first disk is stuck")
        // Pause waits for the request in progress: with one stuck, it reports that in time instead of hanging.
        #expect(!loops.pause(milliseconds: 200))
        loops.resume()
        stuck.signal()
        #expect(wait { served.withLock { $0 }.last == "slow disk" })
        #expect(loops.pause(milliseconds: 5000), "every loop parks once nothing is stuck")
        loops.resume()
    }

    /// Up to 10 s: generous, because in CI's parallel run the loop thread can wait long for a core.
    private func wait(_ condition: () -> Bool) -> Bool {
        for _ in 0..<1000 where !condition() { Thread.sleep(forTimeInterval: 0.01) }
        return condition()
    }
}
