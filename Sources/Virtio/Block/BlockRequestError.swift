import GuestMemory

/// Why a guest's block request was refused: one case per rule the parser checks, so a log line says exactly which
/// rule the driver broke. Every case maps to the status the device answers with (§5.2.6.2: out-of-range and
/// malformed requests get IOERR, requests the device does not implement get UNSUPP).
public enum BlockRequestError: Error, Equatable, Sendable, CustomStringConvertible {
    // The chain has no usable status byte: the device cannot answer; the request is dropped (used length 0).
    case emptyChain
    /// The last segment is device-readable or zero-length, so there is no status byte to write.
    case missingStatusByte
    case statusOutsideGuestMemory(GuestAddress)

    // Layout errors the device can still answer (IOERR).
    /// A device-readable segment follows a device-writable one (§2.7.4.2: writable descriptors come last).
    case readableAfterWritable(index: Int)
    case segmentOutsideGuestMemory(index: Int, address: GuestAddress, length: UInt32)
    /// Fewer than 16 device-readable bytes: no complete `type, reserved, sector` header.
    case headerTooShort(readableBytes: UInt64)
    /// The request type moves no data to the device, yet the chain has device-readable bytes after the header.
    case unexpectedReadableData(type: UInt32, bytes: UInt64)
    /// The request type moves no data to the driver, yet the chain has device-writable bytes besides the status.
    case unexpectedWritableData(type: UInt32, bytes: UInt64)

    // Request errors (IOERR).
    /// IN/OUT data must be whole 512-byte sectors.
    case dataLengthNotSectorMultiple(UInt64)
    /// `sector` plus the data length runs past the disk's last sector (or overflows 64 bits).
    case beyondEndOfDisk(sector: UInt64, byteCount: UInt64, capacitySectors: UInt64)
    /// OUT, DISCARD or WRITE_ZEROES on a read-only disk (§5.2.6.2: IOERR, and no data written).
    case writeToReadOnlyDisk(type: UInt32)
    /// GET_ID needs room for the full 20-byte id.
    case idBufferTooSmall(UInt64)
    /// DISCARD/WRITE_ZEROES payload is empty or not a whole number of 16-byte entries.
    case rangeListLengthInvalid(UInt64)
    case tooManyRanges(count: UInt64, max: UInt32)
    case rangeTooLarge(sectorCount: UInt32, max: UInt32)
    case rangeBeyondEndOfDisk(sector: UInt64, sectorCount: UInt32, capacitySectors: UInt64)

    // Not implemented (UNSUPP).
    case unsupportedType(UInt32)
    /// DISCARD or WRITE_ZEROES when the device did not offer the feature.
    case featureNotOffered(type: UInt32)
    /// §5.2.6.2: the unmap flag is only meaningful for WRITE_ZEROES; a DISCARD with it gets UNSUPP.
    case unmapOnDiscard
    /// §5.2.6.2: reserved flag bits set in a DISCARD/WRITE_ZEROES entry get UNSUPP.
    case reservedRangeFlags(UInt32)

    /// The status the device writes for this error. Meaningless for the three "no status byte" cases.
    public var status: VirtioBlockStatus {
        switch self {
        case .unsupportedType, .featureNotOffered, .unmapOnDiscard, .reservedRangeFlags: .unsupported
        default: .ioError
        }
    }

    /// True when the chain has no status byte the device could write: drop the request (used length 0).
    public var isUnanswerable: Bool {
        switch self {
        case .emptyChain, .missingStatusByte, .statusOutsideGuestMemory: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .emptyChain: "empty descriptor chain"
        case .missingStatusByte: "no status byte: the last descriptor is not device-writable or has length 0"
        case let .statusOutsideGuestMemory(address): "status byte at \(address) is outside guest RAM"
        case let .readableAfterWritable(index): "descriptor \(index) is device-readable but follows a device-writable one"
        case let .segmentOutsideGuestMemory(index, address, length):
            "descriptor \(index) (\(length) bytes at \(address)) is outside guest RAM"
        case let .headerTooShort(bytes): "request header needs 16 device-readable bytes, chain has \(bytes)"
        case let .unexpectedReadableData(type, bytes): "request type \(type) carries \(bytes) unexpected device-readable bytes"
        case let .unexpectedWritableData(type, bytes): "request type \(type) carries \(bytes) unexpected device-writable bytes"
        case let .dataLengthNotSectorMultiple(length): "data length \(length) is not a multiple of 512"
        case let .beyondEndOfDisk(sector, count, capacity):
            "\(count) bytes at sector \(sector) run past the end of the disk (\(capacity) sectors)"
        case let .writeToReadOnlyDisk(type): "request type \(type) writes to a read-only disk"
        case let .idBufferTooSmall(length): "GET_ID buffer of \(length) bytes is shorter than 20"
        case let .rangeListLengthInvalid(length): "discard/write-zeroes payload of \(length) bytes is not a non-empty multiple of 16"
        case let .tooManyRanges(count, max): "\(count) discard/write-zeroes ranges exceed the limit of \(max)"
        case let .rangeTooLarge(count, max): "range of \(count) sectors exceeds the limit of \(max)"
        case let .rangeBeyondEndOfDisk(sector, count, capacity):
            "range of \(count) sectors at sector \(sector) runs past the end of the disk (\(capacity) sectors)"
        case let .unsupportedType(type): "unsupported request type \(type)"
        case let .featureNotOffered(type): "request type \(type) needs a feature the device did not offer"
        case .unmapOnDiscard: "DISCARD with the unmap flag set"
        case let .reservedRangeFlags(flags): "reserved flag bits set in range flags 0x\(String(flags, radix: 16))"
        }
    }
}

/// A refused request: the rule it broke, and where its status byte is (nil when it has none, so it is dropped).
public struct BlockRequestFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var reason: BlockRequestError
    public var statusAddress: GuestAddress?

    public init(_ reason: BlockRequestError, statusAddress: GuestAddress?) {
        self.reason = reason
        self.statusAddress = statusAddress
    }

    public var description: String { reason.description }
}
