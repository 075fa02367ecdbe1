// Split virtqueues in hostile guest memory: the ring addresses, size and features come from the input, the
// rings and descriptors are the input's bytes. Every available chain is popped, read and written to the end,
// then returned as used, as a device does.
import FuzzSupport
import GuestMemory
import Virtio

let memorySize = 64 << 10
let memory = try! GuestMemory(ranges: [(GuestAddress(0), UInt64(memorySize))])

runFuzzer { bytes in
    var input = FuzzInput(bytes)
    var configuration = QueueConfiguration(maximumSize: 256)
    configuration.size = input.integer(UInt16.self)
    configuration.descriptorTable = GuestAddress(UInt64(input.integer(UInt32.self)) % UInt64(memorySize + 4096))
    configuration.availableRing = GuestAddress(UInt64(input.integer(UInt32.self)) % UInt64(memorySize + 4096))
    configuration.usedRing = GuestAddress(UInt64(input.integer(UInt32.self)) % UInt64(memorySize + 4096))
    configuration.nextAvailable = input.integer()
    configuration.ready = true
    let features: UInt64 = input.integer()
    let image = input.rest()
    try! memory.write(image.prefix(memorySize) + [UInt8](repeating: 0, count: max(0, memorySize - image.count)), at: GuestAddress(0))
    guard var queue = try? Queue(index: 0, configuration: configuration, memory: memory, features: features) else { return }
    for _ in 0..<64 {
        // A malformed chain is a typed error (the device would drop it), an empty ring nil: both end the round.
        guard let chain = try? queue.popAvailable() else { break }
        var reader = chain.reader()
        _ = try? reader.read(count: Int(min(chain.readableBytes, 4096)))
        var writer = chain.writer()
        try? writer.write([UInt8](repeating: 0xA5, count: 512))
        _ = try? queue.addUsed(head: chain.head, length: 512)
        _ = queue.needsNotification()
    }
}
