extension Queue {
    /// Serves every chain the driver has made available: `serve` handles one well-formed chain and returns the
    /// used length; a malformed chain is returned to the driver with length 0 and reported to `malformed`
    /// (the device logs it, rate-limited), and serving goes on with the next one.
    ///
    /// Notifications are off while draining (the driver need not kick for buffers it adds meanwhile) and back on
    /// at the end; if buffers slipped in between the last pop and re-enabling, it goes again. Returns whether the
    /// driver should now get a used-buffer interrupt (one per call at most; EVENT_IDX-aware).
    ///
    /// Throws only when the queue itself is broken (`VirtioError.requiresDeviceReset`): the device must stop
    /// using it and ask for a reset.
    public mutating func serveAvailable(
        malformed: (_ head: UInt16, _ reason: DescriptorChainError) -> Void,
        _ serve: (DescriptorChain) -> UInt32
    ) throws(VirtioError) -> Bool {
        var completed = 0
        repeat {
            try disableNotifications()
            while true {
                let chain: DescriptorChain?
                do {
                    chain = try popAvailable()
                } catch .malformedChain(_, let head, let reason) {
                    malformed(head, reason)
                    try addUsed(head: head, length: 0)
                    completed += 1
                    continue
                }
                guard let chain else { break }
                try addUsed(head: chain.head, length: serve(chain))
                completed += 1
            }
        } while try enableNotifications()
        return completed > 0 && needsNotification()
    }
}
