/// The AML objects Swiftlet's DSDT is built from. Each mirrors the ASL construct of the same name, so a
/// definition reads like the ASL it encodes:
///
///     AML.Scope("\\_SB_", [
///         AML.Device("COM1", [
///             AML.Name("_HID", AML.EISAID("PNP0501")),
///             AML.Name("_UID", 0),
///             AML.Name("_CRS", ResourceTemplate([.io(...), .irqNoFlags([4])])),
///         ]),
///     ])
public enum AML {
    /// `Name (name, data)` — DefName := NameOp NameString DataRefObject (ACPI 6.5 §20.2.5.1).
    public struct Name: AMLEncodable {
        public var name: AMLName
        public var value: any AMLEncodable

        public init(_ name: AMLName, _ value: any AMLEncodable) {
            self.name = name
            self.value = value
        }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes.append(AMLOpcode.name)
            name.encodeAML(into: &bytes)
            value.encodeAML(into: &bytes)
        }
    }

    /// `Scope (name) { ... }` — DefScope := ScopeOp PkgLength NameString TermList (ACPI 6.5 §20.2.5.1).
    public struct Scope: AMLEncodable {
        public var name: AMLName
        public var terms: [any AMLEncodable]

        public init(_ name: AMLName, _ terms: [any AMLEncodable]) {
            self.name = name
            self.terms = terms
        }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes.append(AMLOpcode.scope)
            var body = name.amlBytes
            for term in terms { term.encodeAML(into: &body) }
            AMLPackageLength.appendPackage(body, to: &bytes)
        }
    }

    /// `Device (name) { ... }` — DefDevice := DeviceOp PkgLength NameString TermList, where DeviceOp is the
    /// two bytes 0x5B 0x82 (ACPI 6.5 §20.2.5.2).
    public struct Device: AMLEncodable {
        public var name: AMLName
        public var terms: [any AMLEncodable]

        public init(_ name: AMLName, _ terms: [any AMLEncodable]) {
            self.name = name
            self.terms = terms
        }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes += [AMLOpcode.extendedPrefix, AMLOpcode.device]
            var body = name.amlBytes
            for term in terms { term.encodeAML(into: &body) }
            AMLPackageLength.appendPackage(body, to: &bytes)
        }
    }

    /// `Method (name, argumentCount, Serialized|NotSerialized) { ... }` — DefMethod := MethodOp PkgLength
    /// NameString MethodFlags TermList (ACPI 6.5 §20.2.5.2). MethodFlags: bits 0-2 argument count, bit 3
    /// serialized, bits 4-7 SyncLevel (always 0 here).
    public struct Method: AMLEncodable {
        public var name: AMLName
        public var argumentCount: Int
        public var isSerialized: Bool
        public var terms: [any AMLEncodable]

        public init(_ name: AMLName, argumentCount: Int = 0, serialized: Bool = false, _ terms: [any AMLEncodable]) {
            precondition((0...7).contains(argumentCount), "an AML method takes 0-7 arguments")
            self.name = name
            self.argumentCount = argumentCount
            self.isSerialized = serialized
            self.terms = terms
        }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes.append(AMLOpcode.method)
            var body = name.amlBytes
            body.append(UInt8(argumentCount) | (isSerialized ? 0x08 : 0))
            for term in terms { term.encodeAML(into: &body) }
            AMLPackageLength.appendPackage(body, to: &bytes)
        }
    }

    /// `Return (value)` — DefReturn := ReturnOp ArgObject (ACPI 6.5 §20.2.5.3).
    public struct Return: AMLEncodable {
        public var value: any AMLEncodable

        public init(_ value: any AMLEncodable) { self.value = value }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes.append(AMLOpcode.return)
            value.encodeAML(into: &bytes)
        }
    }

    /// `Arg0`...`Arg6`, a method's arguments (ACPI 6.5 §20.2.6.1).
    public struct Arg: AMLEncodable {
        public var index: Int

        public init(_ index: Int) {
            precondition((0...6).contains(index), "AML has Arg0-Arg6")
            self.index = index
        }

        public func encodeAML(into bytes: inout [UInt8]) { bytes.append(AMLOpcode.argBase + UInt8(index)) }
    }

    /// `Local0`...`Local7`, a method's local variables (ACPI 6.5 §20.2.6.2).
    public struct Local: AMLEncodable {
        public var index: Int

        public init(_ index: Int) {
            precondition((0...7).contains(index), "AML has Local0-Local7")
            self.index = index
        }

        public func encodeAML(into bytes: inout [UInt8]) { bytes.append(AMLOpcode.localBase + UInt8(index)) }
    }

    /// `Package () { ... }` — DefPackage := PackageOp PkgLength NumElements PackageElementList
    /// (ACPI 6.5 §20.2.5.4). NumElements is one byte; larger packages would need VarPackage.
    public struct Package: AMLEncodable {
        public var elements: [any AMLEncodable]

        public init(_ elements: [any AMLEncodable]) {
            precondition(elements.count <= 255, "AML Package holds at most 255 elements")
            self.elements = elements
        }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes.append(AMLOpcode.package)
            var body: [UInt8] = [UInt8(elements.count)]
            for element in elements { element.encodeAML(into: &body) }
            AMLPackageLength.appendPackage(body, to: &bytes)
        }
    }

    /// `Buffer () { bytes }` — DefBuffer := BufferOp PkgLength BufferSize ByteList, BufferSize being an
    /// integer term (ACPI 6.5 §20.2.5.4).
    public struct Buffer: AMLEncodable {
        public var contents: [UInt8]

        public init(_ contents: [UInt8]) { self.contents = contents }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes.append(AMLOpcode.buffer)
            var body = AMLInteger(UInt64(contents.count)).amlBytes
            body += contents
            AMLPackageLength.appendPackage(body, to: &bytes)
        }
    }

    /// `EISAID ("PNP0501")`: a 7-character EISA/PNP ID compressed into a 32-bit integer (ACPI 6.5 §6.1.5,
    /// _HID). The three letters become 5-bit values (`'A'` = 1) packed big-endian into the first two bytes,
    /// the four hex digits fill the last two bytes, and the result is stored as a little-endian DWord — so
    /// "PNP0501" is the bytes 41 D0 05 01, the integer 0x0105D041. Encoded as a DWordConst, as iasl does.
    public struct EISAID: AMLEncodable, Equatable {
        public let value: UInt32

        public init(_ id: String) {
            let characters = Array(id.utf8)
            precondition(characters.count == 7, "an EISA ID is 3 letters and 4 hex digits: \(id)")
            func letter(_ character: UInt8) -> UInt32 {
                precondition(character >= UInt8(ascii: "A") && character <= UInt8(ascii: "Z"), "EISA ID \(id): expected A-Z")
                return UInt32(character - 0x40)
            }
            func hexDigit(_ character: UInt8) -> UInt32 {
                switch character {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(character - UInt8(ascii: "0"))
                case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(character - UInt8(ascii: "A") + 10)
                default: preconditionFailure("EISA ID \(id): expected an upper-case hex digit")
                }
            }
            let vendor = letter(characters[0]) << 10 | letter(characters[1]) << 5 | letter(characters[2])
            let product = hexDigit(characters[3]) << 12 | hexDigit(characters[4]) << 8
                | hexDigit(characters[5]) << 4 | hexDigit(characters[6])
            // Both 16-bit halves are big-endian in memory; byte-swap them into a little-endian DWord.
            value = UInt32(UInt16(vendor).byteSwapped) | UInt32(UInt16(product).byteSwapped) << 16
        }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes.append(AMLOpcode.dwordPrefix)
            bytes.appendLittleEndian(value)
        }
    }
}
