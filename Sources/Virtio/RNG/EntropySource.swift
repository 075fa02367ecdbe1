/// Where the entropy device's bytes come from. A protocol so that tests can see exactly what reached the
/// guest, and so a VMM could feed it from elsewhere (a hardware RNG device, a rate-limited pool).
public protocol EntropySource: Sendable {
    /// Fills all of `buffer` with random bytes.
    func fill(_ buffer: inout [UInt8])
}

/// The host kernel's CSPRNG: the standard library's `SystemRandomNumberGenerator`, which on Linux draws from
/// getrandom(2) (falling back to /dev/urandom only where the syscall does not exist). It blocks only until
/// the host's pool is initialised at boot, never afterwards, so the device never stalls the guest.
public struct HostEntropySource: EntropySource {
    public init() {}

    public func fill(_ buffer: inout [UInt8]) {
        var generator = SystemRandomNumberGenerator()
        var index = 0
        while index < buffer.count {
            var word = generator.next()
            let take = min(8, buffer.count - index)
            for offset in 0..<take {
                buffer[index + offset] = UInt8(truncatingIfNeeded: word)
                word >>= 8
            }
            index += take
        }
    }
}
