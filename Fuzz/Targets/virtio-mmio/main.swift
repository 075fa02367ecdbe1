// The virtio-mmio transport (virtio 1.2 §4.2) driven by a hostile driver: register reads and writes at any
// offset in (and past) the 4 KiB window with any width, queue notifications and interrupt acknowledgements in any
// order, over guest memory whose bytes also come from the input. The device behind it is virtio-rng, whose queue
// work then reads the guest's rings.
import Devices
import FuzzSupport
import GuestMemory
import Logging
import Virtio
import VirtioMMIO

struct IgnoredLine: InterruptLine {
    func setLevel(_ asserted: Bool) {}
}

struct ZeroEntropy: EntropySource {
    func fill(_ buffer: inout [UInt8]) { for index in buffer.indices { buffer[index] = 0 } }
}

let memory = try! GuestMemory(ranges: [(GuestAddress(0), 64 << 10)])
// The transport logs what a driver does wrong, once per input here: warnings would fill the log and slow the run.
var quiet = Logger(label: "fuzz.virtio-mmio")
quiet.logLevel = .critical

runFuzzer { bytes in
    var input = FuzzInput(bytes)
    let image = input.take(Int(input.integer(UInt16.self)))
    try! memory.write(image.prefix(64 << 10), at: GuestAddress(0))
    let transport = VirtioMMIODevice(device: EntropyDevice(source: ZeroEntropy()), memory: memory, interruptLine: IgnoredLine(), logger: quiet)
    let widths = [1, 2, 4, 8, 3]
    for _ in 0..<256 where !input.isEmpty {
        let operation = input.integer(UInt8.self)
        // Mostly registers (0x000-0x0FF) and the configuration space; sometimes anywhere up to past the window.
        let offset = operation & 0x80 == 0 ? UInt64(input.integer(UInt8.self)) & 0xFC : UInt64(input.integer(UInt16.self) % 0x1100)
        switch operation % 4 {
        case 0, 1:
            transport.write(offset: offset, width: widths[Int(operation >> 2) % widths.count], value: UInt64(input.integer(UInt32.self)))
        case 2:
            _ = transport.read(offset: offset, width: widths[Int(operation >> 2) % widths.count])
        default:
            transport.queueNotified(index: Int(input.integer(UInt8.self) % 3))
        }
    }
}
