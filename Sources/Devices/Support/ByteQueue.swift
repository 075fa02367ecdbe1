/// A first-in, first-out queue of bytes with a fixed capacity: a ring over storage allocated once, on the first
/// push, so a device that never receives input never pays for its buffer and a busy one never reallocates.
struct ByteQueue: Sendable {
    let capacity: Int
    private var storage: [UInt8] = []
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0, "a byte queue needs room for at least one byte")
        self.capacity = capacity
    }

    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == capacity }
    var freeSpace: Int { capacity - count }

    /// Appends `byte`; returns false (dropping nothing already queued) when the queue is full.
    @discardableResult
    mutating func push(_ byte: UInt8) -> Bool {
        guard count < capacity else { return false }
        if storage.isEmpty { storage = [UInt8](repeating: 0, count: capacity) }
        storage[(head + count) % capacity] = byte
        count += 1
        return true
    }

    mutating func pop() -> UInt8? {
        guard count > 0 else { return nil }
        let byte = storage[head]
        head = (head + 1) % capacity
        count -= 1
        return byte
    }

    var first: UInt8? { count > 0 ? storage[head] : nil }

    mutating func removeAll() {
        head = 0
        count = 0
    }

    /// The queued bytes, oldest first (for snapshots and tests; allocates).
    var elements: [UInt8] { (0..<count).map { storage[(head + $0) % capacity] } }
}
