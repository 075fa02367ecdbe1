import KVM
import Virtio

/// The machine's device threads: one loop (thread "devices") for the network, vsock, console and rng devices and
/// their backends, and one loop per disk ("disk0", "disk1", ...) that serves only that disk's queue.
///
/// Why a thread per disk: a virtio-blk request is served where its queue notification lands, and it may take
/// long — an `fdatasync` on a busy host disk, or the zero-fill fallback that writes zeros 64 KiB at a time on file
/// systems without zero-range. On a shared thread that stalled the network, vsock, the console and the other
/// disks for as long (issue 13, defect 17). A disk's loop is the same `DeviceEventLoop` with the same seccomp
/// policy; pause parks every loop after the request it is serving, as it parked the one.
final class DeviceEventLoops: @unchecked Sendable {
    // SAFETY of @unchecked Sendable: `disks` is appended to only while the machine is being built (before
    // start(), on the building thread); afterwards it is only read.
    let shared: DeviceEventLoop
    private var disks: [DeviceEventLoop] = []

    init() throws(KVMError) {
        shared = try DeviceEventLoop(threadName: "devices")
    }

    /// The loop that will answer `device`'s queue notifications: a new one of its own for a disk, the shared
    /// one for every other device.
    func loop(for device: any VirtioDevice) throws(KVMError) -> DeviceEventLoop {
        guard device is BlockDevice else { return shared }
        let loop = try DeviceEventLoop(threadName: "disk\(disks.count)")
        disks.append(loop)
        return loop
    }

    /// Every loop: the shared one first.
    var all: [DeviceEventLoop] { [shared] + disks }

    /// Starts every loop; if one cannot start, those already running are stopped again.
    func start() throws(MachineError) {
        var started: [DeviceEventLoop] = []
        for loop in all {
            do {
                try loop.start()
            } catch {
                for running in started { running.stop() }
                throw error
            }
            started.append(loop)
        }
    }

    func stop() {
        for loop in all { loop.stop() }
    }

    /// Asks every loop to park, then waits for all of them within one bound. False if any did not park in time
    /// (a handler stuck in a system call); the others stay parked until `resume()`.
    func pause(milliseconds: Int32) -> Bool {
        let loops = all
        for loop in loops { loop.requestPause() }
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(milliseconds))
        var allParked = true
        for loop in loops where !loop.waitUntilParked(milliseconds: DeviceEventLoop.milliseconds(until: deadline)) {
            allParked = false
        }
        return allParked
    }

    func resume() {
        for loop in all { loop.resume() }
    }
}
