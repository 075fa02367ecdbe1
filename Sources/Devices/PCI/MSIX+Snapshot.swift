/// A function's MSI-X table, pending bits and enable/mask state, for a snapshot.
public struct MSIXSnapshot: Codable, Equatable, Sendable {
    /// Per vector: message address low, address high, data, vector control.
    public var entries: [[UInt32]]
    public var pending: [UInt64]
    public var enabled: Bool
    public var functionMasked: Bool
}

extension MSIXVectors {
    public func snapshot() -> MSIXSnapshot {
        state.withLock { state in
            MSIXSnapshot(entries: state.entries.map { [$0.addressLow, $0.addressHigh, $0.data, $0.vectorControl] },
                         pending: state.pending, enabled: state.enabled, functionMasked: state.functionMasked)
        }
    }

    /// Takes a snapshot's table (checked: same vector count, four dwords each) and gives every vector that can
    /// deliver its route again, as a fresh process has none; pending vectors stay pending until unmasked, as on
    /// real hardware. Returns false, changing nothing, when the snapshot does not fit this function.
    @discardableResult
    public func restore(_ snapshot: MSIXSnapshot) -> Bool {
        guard snapshot.entries.count == vectorCount, snapshot.entries.allSatisfy({ $0.count == 4 }),
              snapshot.pending.count == (vectorCount + 63) / 64 else { return false }
        state.withLock { state in
            state.entries = snapshot.entries.map {
                // The same masks a guest write goes through (writeTableDword).
                Entry(addressLow: $0[0] & ~0x3, addressHigh: $0[1], data: $0[2], vectorControl: $0[3] & 1)
            }
            state.pending = snapshot.pending
            // Bits past the last vector do not exist.
            if vectorCount % 64 != 0 { state.pending[state.pending.count - 1] &= (1 << UInt64(vectorCount % 64)) - 1 }
            state.enabled = snapshot.enabled
            state.functionMasked = snapshot.functionMasked
            for vector in 0..<vectorCount where state.deliverable(vector) {
                routing.routeChanged(vector: vector, message: state.entries[vector].message)
            }
        }
        return true
    }
}
