import Foundation
import GuestMemory
import Synchronization
import Testing

/// A running guest writes the virtqueue indices (avail.idx, used.idx) while the device reads them, so every
/// integer access must be one load or store of the whole value: a value assembled from two reads can be half old
/// and half new. (This once showed in the test host as "avail.idx jumped from 27938 to 28399": a 2-byte copy read
/// the low byte of 0x6DEF and then the high byte of 0x6E0x.)
@Suite struct ConcurrentAccessTests {
    @Test("a 16-bit value another thread keeps rewriting is never read half old, half new")
    func sixteenBitLoadsAreNotTorn() throws {
        let memory = try GuestMemory(ranges: [(GuestAddress(0), 0x1000)])
        let address = GuestAddress(0x100)
        // The writer flips between two values that differ in both bytes; a torn read mixes them into 0x0000 or
        // 0x01FF, which the writer never stores.
        let values: [UInt16] = [0x00FF, 0x0100]
        try memory.store(values[0], at: address)
        let stop = Atomic<Bool>(false)
        let writer = Thread {
            var index = 0
            while !stop.load(ordering: .relaxed) {
                index ^= 1
                try? memory.store(values[index], at: address)
            }
        }
        writer.start()
        defer { stop.store(true, ordering: .relaxed) }
        var torn = 0
        for _ in 0..<2_000_000 {
            let value = try memory.load(UInt16.self, at: address)
            if !values.contains(value) { torn += 1 }
        }
        #expect(torn == 0, "\(torn) torn reads")
    }
}
