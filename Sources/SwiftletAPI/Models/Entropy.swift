/// `PUT /entropy`: a virtio-rng device. Stored and reported; Swiftlet's `MachineConfiguration` has no RNG
/// device yet, so starting with one gives a warning.
public struct Entropy: Codable, Sendable, Equatable {
    public var rateLimiter: RateLimiter?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case rateLimiter = "rate_limiter"
    }

    public init(rateLimiter: RateLimiter? = nil) { self.rateLimiter = rateLimiter }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        rateLimiter = try container.decodeIfPresent(RateLimiter.self, forKey: .rateLimiter)
    }
}
