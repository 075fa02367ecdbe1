// The host-side queue of console input not yet delivered to the guest.
//
// Input arrives when the host has it (the VMM's stdin thread), but can only go to the guest when the driver has
// posted receive buffers. In between it waits here, in a fixed-size ring: bounded, so a guest that never reads
// cannot make the VMM grow without limit (the caller is told how much was accepted and retries the rest), and
// allocated once, so enqueuing does not allocate.

/// A bounded first-in first-out byte queue (a ring over fixed storage).
struct ConsoleInputBuffer: Sendable {
    let capacity: Int
    private var storage: [UInt8]
    /// Index in `storage` of the oldest byte.
    private var start = 0
    /// Bytes currently held.
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0, "a console input buffer needs room for at least one byte")
        self.capacity = capacity
        storage = [UInt8](repeating: 0, count: capacity)
    }

    var isEmpty: Bool { count == 0 }
    var freeSpace: Int { capacity - count }

    /// Appends as much of `bytes` as fits, in order; returns how many were taken (a prefix of `bytes`).
    mutating func append(contentsOf bytes: some Collection<UInt8>) -> Int {
        var taken = 0
        for byte in bytes {
            guard count < capacity else { break }
            storage[(start + count) % capacity] = byte
            count += 1
            taken += 1
        }
        return taken
    }

    /// The oldest `min(limit, count)` bytes, as the (at most two) contiguous runs of the ring, oldest first.
    func front(_ limit: Int) -> (ArraySlice<UInt8>, ArraySlice<UInt8>) {
        let length = min(max(limit, 0), count)
        let firstLength = min(length, capacity - start)
        return (storage[start..<(start + firstLength)], storage[0..<(length - firstLength)])
    }

    /// Drops the oldest `n` bytes (delivered to the guest).
    mutating func removeFirst(_ n: Int) {
        precondition(n >= 0 && n <= count, "removing more console input than is queued")
        start = (start + n) % capacity
        count -= n
        if count == 0 { start = 0 }
    }
}
