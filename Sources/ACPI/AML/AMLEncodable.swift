/// ACPI Machine Language (AML): the byte code in the DSDT that describes devices an OS cannot discover by
/// itself (ACPI 6.5 chapter 20, "ACPI Machine Language (AML) Specification").
///
/// Swiftlet's AML writer is a tree of small values, each of which appends its own encoding. Nothing is
/// ever patched after the fact: a parent (a `Device`, `Scope`, `Package`, ...) encodes its children into a
/// scratch buffer first and then prefixes that with its PkgLength, so every node is self-contained and new
/// node types only have to implement `encodeAML(into:)`.
///
/// The writer covers what a virtual machine's namespace needs: `Name`, `Scope`, `Device`, `Method` with
/// `Return`, `Package`, `Buffer`, integers, strings, `EISAID` and `ResourceTemplate` (see
/// `ResourceTemplate.swift`). Anything else can be added as another conforming type.
public protocol AMLEncodable: Sendable {
    /// Appends this object's AML encoding to `bytes`.
    func encodeAML(into bytes: inout [UInt8])
}

extension AMLEncodable {
    /// This object's AML encoding on its own.
    public var amlBytes: [UInt8] {
        var bytes: [UInt8] = []
        encodeAML(into: &bytes)
        return bytes
    }
}

/// AML opcodes used by the writer (ACPI 6.5 §20.3, "AML Byte Stream Byte Values").
enum AMLOpcode {
    static let zero: UInt8 = 0x00
    static let one: UInt8 = 0x01
    static let name: UInt8 = 0x08
    static let bytePrefix: UInt8 = 0x0A
    static let wordPrefix: UInt8 = 0x0B
    static let dwordPrefix: UInt8 = 0x0C
    static let stringPrefix: UInt8 = 0x0D
    static let qwordPrefix: UInt8 = 0x0E
    static let scope: UInt8 = 0x10
    static let buffer: UInt8 = 0x11
    static let package: UInt8 = 0x12
    static let method: UInt8 = 0x14
    static let dualNamePrefix: UInt8 = 0x2E
    static let multiNamePrefix: UInt8 = 0x2F
    static let extendedPrefix: UInt8 = 0x5B
    static let rootPrefix: UInt8 = 0x5C  // '\'
    static let parentPrefix: UInt8 = 0x5E  // '^'
    static let localBase: UInt8 = 0x60  // Local0..Local7 = 0x60..0x67
    static let argBase: UInt8 = 0x68  // Arg0..Arg6 = 0x68..0x6E
    static let `return`: UInt8 = 0xA4
    /// Second byte after `extendedPrefix`.
    static let device: UInt8 = 0x82
}

/// PkgLength (ACPI 6.5 §20.2.4): the length of a package-like object, counted from the first PkgLength byte
/// to the end of the object — so it includes its own 1 to 4 bytes.
///
/// One byte holds lengths up to 63 (bits 0-5). Longer lengths use a lead byte whose bits 6-7 give the
/// number (1-3) of following bytes and whose bits 0-3 hold the low nibble; each following byte holds the
/// next 8 bits. So 2 bytes reach 2^12 - 1, 3 bytes 2^20 - 1, 4 bytes 2^28 - 1.
enum AMLPackageLength {
    static let maximum = (1 << 28) - 1

    /// The PkgLength bytes for an object whose body (everything after the PkgLength) is `bodyLength` bytes.
    static func encode(bodyLength: Int) -> [UInt8] {
        precondition(bodyLength >= 0)
        if bodyLength + 1 <= 0x3F { return [UInt8(bodyLength + 1)] }
        for extraBytes in 1...3 {
            let total = bodyLength + 1 + extraBytes
            guard total < 1 << (4 + 8 * extraBytes) else { continue }
            var bytes = [UInt8(extraBytes << 6) | UInt8(total & 0x0F)]
            for index in 0..<extraBytes {
                bytes.append(UInt8(truncatingIfNeeded: total >> (4 + 8 * index)))
            }
            return bytes
        }
        preconditionFailure("AML object of \(bodyLength) bytes exceeds the PkgLength limit of \(maximum)")
    }

    /// Appends `PkgLength body` to `bytes`.
    static func appendPackage(_ body: [UInt8], to bytes: inout [UInt8]) {
        bytes += encode(bodyLength: body.count)
        bytes += body
    }
}

// MARK: - Integers (ACPI 6.5 §20.2.3, ComputationalData)

/// An AML integer constant in its shortest encoding: ZeroOp, OneOp, or a Byte/Word/DWord/QWord prefix and
/// the little-endian value. (OnesOp is avoided: its width depends on the table revision.)
public struct AMLInteger: AMLEncodable, Equatable {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }

    public func encodeAML(into bytes: inout [UInt8]) {
        switch value {
        case 0: bytes.append(AMLOpcode.zero)
        case 1: bytes.append(AMLOpcode.one)
        case ...0xFF:
            bytes.append(AMLOpcode.bytePrefix)
            bytes.appendLittleEndian(UInt8(value))
        case ...0xFFFF:
            bytes.append(AMLOpcode.wordPrefix)
            bytes.appendLittleEndian(UInt16(value))
        case ...0xFFFF_FFFF:
            bytes.append(AMLOpcode.dwordPrefix)
            bytes.appendLittleEndian(UInt32(value))
        default:
            bytes.append(AMLOpcode.qwordPrefix)
            bytes.appendLittleEndian(value)
        }
    }
}

// Integer and Boolean literals can stand wherever AML data is expected: `AML.Package([5, 0])`.
extension Int: AMLEncodable {
    public func encodeAML(into bytes: inout [UInt8]) {
        precondition(self >= 0, "AML integers are unsigned; got \(self)")
        AMLInteger(UInt64(self)).encodeAML(into: &bytes)
    }
}

extension UInt64: AMLEncodable {
    public func encodeAML(into bytes: inout [UInt8]) { AMLInteger(self).encodeAML(into: &bytes) }
}

extension UInt32: AMLEncodable {
    public func encodeAML(into bytes: inout [UInt8]) { AMLInteger(UInt64(self)).encodeAML(into: &bytes) }
}

extension UInt16: AMLEncodable {
    public func encodeAML(into bytes: inout [UInt8]) { AMLInteger(UInt64(self)).encodeAML(into: &bytes) }
}

extension UInt8: AMLEncodable {
    public func encodeAML(into bytes: inout [UInt8]) { AMLInteger(UInt64(self)).encodeAML(into: &bytes) }
}

/// `true` is OneOp, `false` ZeroOp — as ASL's `One` and `Zero` (e.g. `Name (_CCA, One)`).
extension Bool: AMLEncodable {
    public func encodeAML(into bytes: inout [UInt8]) { bytes.append(self ? AMLOpcode.one : AMLOpcode.zero) }
}

// MARK: - Strings (ACPI 6.5 §20.2.3, String := StringPrefix AsciiCharList NullChar)

/// A Swift string is an AML String: ASCII bytes 0x01-0x7F and a terminating NUL (e.g. `_HID "LNRO0005"`).
extension String: AMLEncodable {
    public func encodeAML(into bytes: inout [UInt8]) {
        bytes.append(AMLOpcode.stringPrefix)
        for unit in utf8 {
            precondition(unit >= 0x01 && unit <= 0x7F, "AML strings hold ASCII 0x01-0x7F only: \(self)")
            bytes.append(unit)
        }
        bytes.append(0x00)
    }
}

// MARK: - Little-endian helpers (x86 and ACPI tables are little-endian)

extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        for index in 0..<(T.bitWidth / 8) {
            append(UInt8(truncatingIfNeeded: value >> (8 * index)))
        }
    }

    mutating func setLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for index in 0..<(T.bitWidth / 8) {
            self[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * index))
        }
    }
}
