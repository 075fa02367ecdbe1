/// The few AML statements a method body needs beyond `Return`: a condition and a device notification. Enough
/// for a Generic Event Device's `_EVT` (`GenericEventDevice`), which runs when its interrupt fires.

extension AMLOpcode {
    /// DefNotify := NotifyOp NotifyObject NotifyValue (ACPI 6.5 §20.2.5.3).
    static let notify: UInt8 = 0x86
    /// DefLEqual := LequalOp Operand Operand (ACPI 6.5 §20.2.5.4).
    static let logicalEqual: UInt8 = 0x93
    /// DefIfElse := IfOp PkgLength Predicate TermList DefElse (ACPI 6.5 §20.2.5.3).
    static let `if`: UInt8 = 0xA0
}

extension AML {
    /// `If (predicate) { ... }` without an `Else`: IfOp, then a PkgLength covering the predicate and the body.
    public struct If: AMLEncodable {
        public var predicate: any AMLEncodable
        public var terms: [any AMLEncodable]

        public init(_ predicate: any AMLEncodable, _ terms: [any AMLEncodable]) {
            self.predicate = predicate
            self.terms = terms
        }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes.append(AMLOpcode.if)
            var body = predicate.amlBytes
            for term in terms { term.encodeAML(into: &body) }
            AMLPackageLength.appendPackage(body, to: &bytes)
        }
    }

    /// `LEqual (left, right)` — ASL 2.0's `left == right`: One when the two integers are equal, else Zero.
    public struct LEqual: AMLEncodable {
        public var left: any AMLEncodable
        public var right: any AMLEncodable

        public init(_ left: any AMLEncodable, _ right: any AMLEncodable) {
            self.left = left
            self.right = right
        }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes.append(AMLOpcode.logicalEqual)
            left.encodeAML(into: &bytes)
            right.encodeAML(into: &bytes)
        }
    }

    /// `Notify (object, value)`: queues a notification for the device named `object`, which the OS hands to
    /// the device's driver (Linux: the `acpi_driver`'s `.notify`). Values 0x80 and up are device-specific.
    public struct Notify: AMLEncodable {
        public var object: AMLName
        public var value: UInt8

        public init(_ object: AMLName, _ value: UInt8) {
            self.object = object
            self.value = value
        }

        public func encodeAML(into bytes: inout [UInt8]) {
            bytes.append(AMLOpcode.notify)
            object.encodeAML(into: &bytes)
            value.encodeAML(into: &bytes)
        }
    }
}
