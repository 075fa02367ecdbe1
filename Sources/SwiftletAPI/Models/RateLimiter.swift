/// Firecracker's `TokenBucket`: `size` tokens, refilled completely every `refill_time` ms, plus an initial
/// `one_time_burst`.
///
/// Swiftlet accepts, stores and reports rate limiters so that existing clients work, but does not enforce
/// them yet: a guest's I/O is not throttled.
public struct TokenBucket: Codable, Sendable, Equatable {
    public var size: UInt64
    public var oneTimeBurst: UInt64?
    public var refillTime: UInt64

    enum CodingKeys: String, CodingKey, CaseIterable {
        case size
        case oneTimeBurst = "one_time_burst"
        case refillTime = "refill_time"
    }

    public init(size: UInt64, oneTimeBurst: UInt64? = nil, refillTime: UInt64) {
        self.size = size
        self.oneTimeBurst = oneTimeBurst
        self.refillTime = refillTime
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        size = try container.decodeInteger(UInt64.self, forKey: .size)
        oneTimeBurst = try container.decodeIntegerIfPresent(UInt64.self, forKey: .oneTimeBurst)
        refillTime = try container.decodeInteger(UInt64.self, forKey: .refillTime)
    }
}

/// Firecracker's `RateLimiter`: a bandwidth bucket (bytes) and an operations bucket. Not enforced yet (see
/// `TokenBucket`).
public struct RateLimiter: Codable, Sendable, Equatable {
    public var bandwidth: TokenBucket?
    public var ops: TokenBucket?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case bandwidth, ops
    }

    public init(bandwidth: TokenBucket? = nil, ops: TokenBucket? = nil) {
        self.bandwidth = bandwidth
        self.ops = ops
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.strictContainer(keyedBy: CodingKeys.self)
        bandwidth = try container.decodeIfPresent(TokenBucket.self, forKey: .bandwidth)
        ops = try container.decodeIfPresent(TokenBucket.self, forKey: .ops)
    }
}
