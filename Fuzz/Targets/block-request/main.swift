// virtio-blk requests: a chain of segments (addresses, lengths, writable bits from the input) over guest memory
// whose bytes are also the input's, parsed against a small disk with discard and write-zeroes.
import FuzzSupport
import GuestMemory
import Virtio

let memorySize: UInt64 = 1 << 20
let memory = try! GuestMemory(ranges: [(GuestAddress(0), memorySize)])
let limits = BlockRequestLimits(capacitySectors: 2048, readOnly: false,
                                discard: .init(maxSegments: 4, maxSectors: 1024),
                                writeZeroes: .init(maxSegments: 4, maxSectors: 1024))

runFuzzer { bytes in
    var input = FuzzInput(bytes)
    let count = Int(input.integer(UInt8.self) % 9)
    var segments: [BlockSegment] = []
    for _ in 0..<count {
        let address: UInt32 = input.integer()
        let length: UInt32 = input.integer()
        // Mostly inside memory, sometimes anywhere (the parser must refuse those).
        let inMemory = address & 1 == 0
        segments.append(BlockSegment(address: GuestAddress(inMemory ? UInt64(address) % memorySize : UInt64(address) << 12),
                                     length: inMemory ? length % 8192 : length, writable: length & 0x8000_0000 != 0))
    }
    let contents = input.rest()
    try! memory.write(contents.prefix(Int(memorySize)), at: GuestAddress(0))
    _ = try? BlockRequest.parse(segments, memory: memory, limits: limits)
}
