import Synchronization

@testable import Devices

/// An interrupt line that remembers every level the device drove it to.
final class RecordingInterruptLine: InterruptLine {
    private let levels = Mutex<[Bool]>([])

    func setLevel(_ asserted: Bool) { levels.withLock { $0.append(asserted) } }

    /// Every `setLevel` call, oldest first.
    var history: [Bool] { levels.withLock { $0 } }
    /// The line's current level (low before the first call).
    var isAsserted: Bool { levels.withLock { $0.last ?? false } }
    func forgetHistory() { levels.withLock { $0.removeAll() } }
}

/// A console that keeps what the guest printed.
final class RecordingConsole: ConsoleSink {
    private let bytes = Mutex<[UInt8]>([])

    func write(_ byte: UInt8) { bytes.withLock { $0.append(byte) } }

    var output: [UInt8] { bytes.withLock { $0 } }
    var text: String { String(decoding: output, as: UTF8.self) }
}

/// Counts calls to a callback such as `onReset` or `onFirstOutput`.
final class CallCounter: Sendable {
    private let count = Mutex(0)

    var callback: @Sendable () -> Void { { [self] in count.withLock { $0 += 1 } } }
    var calls: Int { count.withLock { $0 } }
}

/// A bus device that records the accesses it receives and answers reads with a fixed pattern.
final class RecordingDevice: BusDevice {
    struct Access: Equatable {
        var isWrite: Bool
        var offset: UInt64
        var width: Int
        var value: UInt64
    }

    private let accesses = Mutex<[Access]>([])
    let readValue: UInt64

    init(readValue: UInt64 = 0x1122_3344_5566_7788) { self.readValue = readValue }

    func read(offset: UInt64, width: Int) -> UInt64 {
        accesses.withLock { $0.append(Access(isWrite: false, offset: offset, width: width, value: readValue)) }
        return readValue
    }

    func write(offset: UInt64, width: Int, value: UInt64) {
        accesses.withLock { $0.append(Access(isWrite: true, offset: offset, width: width, value: value)) }
    }

    var log: [Access] { accesses.withLock { $0 } }
}
