// Helpers for the virtio-console tests: a guest with a receiveq and a transmitq, and a recorder for `output`.

import GuestMemory
import Synchronization

@testable import Virtio

/// Collects what the console hands to `output`: the bytes in order, and the pieces as they came.
final class OutputRecorder: Sendable {
    private let pieces = Mutex<[[UInt8]]>([])

    var bytes: [UInt8] { pieces.withLock { $0.flatMap { $0 } } }
    var text: String { String(decoding: bytes, as: UTF8.self) }
    var calls: [[UInt8]] { pieces.withLock { $0 } }

    func record(_ slice: ArraySlice<UInt8>) { pieces.withLock { $0.append(Array(slice)) } }
}

/// A console device brought up by a fake driver. `TestDriver` lays its rings out at fixed addresses, so each
/// queue gets its own `TestDriver` and therefore its own fake guest memory: the device only ever reaches guest
/// memory through its queues and their chains, so it cannot tell.
final class ConsoleHarness {
    let device: ConsoleDevice
    let output: OutputRecorder
    let interrupt: RecordingInterrupt
    /// The driver side of receiveq (queue 0).
    private(set) var receive: TestDriver
    /// The driver side of transmitq (queue 1).
    private(set) var transmit: TestDriver

    /// A new device, activated with both queues of `size` entries and the given negotiated features.
    init(size: UInt16 = 16, features: UInt64 = VirtioFeature.version1 | VirtioFeature.ringEventIndex) throws {
        output = OutputRecorder()
        let recorder = output
        device = ConsoleDevice(output: { recorder.record($0) })
        interrupt = RecordingInterrupt()
        receive = try TestDriver(size: size)
        transmit = try TestDriver(size: size)
        try activate(features: features)
    }

    /// What a driver does after resetting the device: new, empty rings (call `activate` next).
    func freshRings() throws {
        receive = try TestDriver(size: receive.size)
        transmit = try TestDriver(size: transmit.size)
    }

    /// DRIVER_OK: hands the device queues built from the two drivers' setup.
    func activate(features: UInt64 = VirtioFeature.version1 | VirtioFeature.ringEventIndex) throws {
        let receiveQueue = try Queue(
            index: ConsoleDevice.receiveQueueIndex, configuration: receive.configuration, memory: receive.memory,
            features: features)
        let transmitQueue = try Queue(
            index: ConsoleDevice.transmitQueueIndex, configuration: transmit.configuration,
            memory: transmit.memory, features: features)
        try device.activate(VirtioActivation(
            queues: [receiveQueue, transmitQueue], memory: receive.memory, features: features, interrupt: interrupt))
    }

    /// Posts one single-buffer receive chain of `length` bytes; returns the buffer.
    @discardableResult
    func postReceiveBuffer(_ length: Int) throws -> TestDriver.Buffer {
        let buffer = try receive.writable(length)
        try receive.publish([buffer])
        return buffer
    }

    /// Puts `text` on the transmitq in one chain (split into `pieces` readable buffers) and kicks.
    @discardableResult
    func transmitText(_ text: String, pieces: Int = 1) throws -> UInt16 {
        let bytes = Array(text.utf8)
        let step = max(1, (bytes.count + pieces - 1) / pieces)
        let buffers = try stride(from: 0, to: bytes.count, by: step).map {
            try transmit.readable(Array(bytes[$0..<min($0 + step, bytes.count)]))
        }
        let head = try transmit.publish(buffers)
        device.queueNotified(index: ConsoleDevice.transmitQueueIndex)
        return head
    }
}

extension TestDriver.Buffer {
    /// The first `count` bytes a buffer received, as text.
    func text(_ driver: TestDriver, count: UInt32) throws -> String {
        String(decoding: try driver.contents(of: self).prefix(Int(count)), as: UTF8.self)
    }
}
