import ACPI
import Testing

/// A small AML reader for the subset the writer produces, used to parse generated DSDTs back. It checks what
/// an interpreter relies on: every PkgLength ends exactly where its object's contents end, Buffer sizes match
/// their bytes, and resource templates walk descriptor by descriptor to an End Tag at the buffer's end.
indirect enum AMLNode: Equatable, CustomStringConvertible {
    case integer(UInt64)
    case string(String)
    case name(String, AMLNode)
    case scope(String, [AMLNode])
    case device(String, [AMLNode])
    case method(String, flags: UInt8, [AMLNode])
    case returnValue(AMLNode)
    case package([AMLNode])
    case buffer([UInt8])
    case ifThen(AMLNode, [AMLNode])
    case logicalEqual(AMLNode, AMLNode)
    case notify(String, AMLNode)
    case argument(Int)

    var description: String {
        switch self {
        case let .integer(value): return "0x" + String(value, radix: 16)
        case let .string(text): return "\"\(text)\""
        case let .name(name, value): return "Name(\(name), \(value))"
        case let .scope(name, terms): return "Scope(\(name)) \(terms)"
        case let .device(name, terms): return "Device(\(name)) \(terms)"
        case let .method(name, flags, terms): return "Method(\(name), \(flags)) \(terms)"
        case let .returnValue(value): return "Return(\(value))"
        case let .package(elements): return "Package \(elements)"
        case let .buffer(bytes): return "Buffer(\(bytes.count) bytes)"
        case let .ifThen(predicate, terms): return "If(\(predicate)) \(terms)"
        case let .logicalEqual(left, right): return "LEqual(\(left), \(right))"
        case let .notify(name, value): return "Notify(\(name), \(value))"
        case let .argument(index): return "Arg\(index)"
        }
    }
}

struct AMLDecodeError: Error, CustomStringConvertible {
    let offset: Int
    let reason: String
    var description: String { "AML decode error at \(offset): \(reason)" }
}

struct AMLDecoder {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    static func decode(_ bytes: [UInt8]) throws -> [AMLNode] {
        var decoder = AMLDecoder(bytes)
        return try decoder.terms(until: bytes.count)
    }

    mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw AMLDecodeError(offset: position, reason: "unexpected end") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func littleEndian(_ count: Int) throws -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<count { value |= UInt64(try byte()) << (8 * index) }
        return value
    }

    /// Reads a PkgLength and returns the offset where the object ends.
    mutating func packageEnd() throws -> Int {
        let start = position
        let lead = try byte()
        let following = Int(lead >> 6)
        var length = following == 0 ? Int(lead & 0x3F) : Int(lead & 0x0F)
        for index in 0..<following { length |= Int(try byte()) << (4 + 8 * index) }
        guard start + length <= bytes.count else { throw AMLDecodeError(offset: start, reason: "PkgLength \(length) runs past the end") }
        return start + length
    }

    mutating func nameString() throws -> String {
        var prefix = ""
        while position < bytes.count, bytes[position] == 0x5C || bytes[position] == 0x5E {
            prefix += bytes[position] == 0x5C ? "\\" : "^"
            position += 1
        }
        let count: Int
        switch try byte() {
        case 0x00: return prefix
        case 0x2E: count = 2
        case 0x2F: count = Int(try byte())
        default:
            position -= 1
            count = 1
        }
        var segments: [String] = []
        for _ in 0..<count {
            guard position + 4 <= bytes.count else { throw AMLDecodeError(offset: position, reason: "truncated name") }
            segments.append(String(decoding: bytes[position..<(position + 4)], as: UTF8.self))
            position += 4
        }
        return prefix + segments.joined(separator: ".")
    }

    mutating func terms(until end: Int) throws -> [AMLNode] {
        var nodes: [AMLNode] = []
        while position < end { nodes.append(try term()) }
        guard position == end else { throw AMLDecodeError(offset: position, reason: "object overruns its PkgLength end \(end)") }
        return nodes
    }

    mutating func term() throws -> AMLNode {
        let start = position
        switch try byte() {
        case 0x00: return .integer(0)
        case 0x01: return .integer(1)
        case 0x0A: return .integer(try littleEndian(1))
        case 0x0B: return .integer(try littleEndian(2))
        case 0x0C: return .integer(try littleEndian(4))
        case 0x0E: return .integer(try littleEndian(8))
        case 0x0D:
            var text: [UInt8] = []
            while case let character = try byte(), character != 0 { text.append(character) }
            return .string(String(decoding: text, as: UTF8.self))
        case 0x08:
            let name = try nameString()
            return .name(name, try term())
        case 0x10:
            let end = try packageEnd()
            let name = try nameString()
            return .scope(name, try terms(until: end))
        case 0x14:
            let end = try packageEnd()
            let name = try nameString()
            let flags = try byte()
            return .method(name, flags: flags, try terms(until: end))
        case 0xA4:
            return .returnValue(try term())
        case 0x12:
            let end = try packageEnd()
            let count = Int(try byte())
            let elements = try terms(until: end)
            guard elements.count == count else { throw AMLDecodeError(offset: start, reason: "Package says \(count) elements, has \(elements.count)") }
            return .package(elements)
        case 0x11:
            let end = try packageEnd()
            guard case let .integer(size) = try term() else { throw AMLDecodeError(offset: start, reason: "Buffer size is not an integer") }
            guard position + Int(size) == end else { throw AMLDecodeError(offset: start, reason: "Buffer size \(size) disagrees with its PkgLength") }
            defer { position = end }
            return .buffer(Array(bytes[position..<end]))
        case 0xA0:
            let end = try packageEnd()
            let predicate = try term()
            return .ifThen(predicate, try terms(until: end))
        case 0x93:
            let left = try term()
            return .logicalEqual(left, try term())
        case 0x86:
            let name = try nameString()
            return .notify(name, try term())
        case let opcode where (0x68...0x6E).contains(opcode):
            return .argument(Int(opcode - 0x68))
        case 0x5B where position < bytes.count && bytes[position] == 0x82:
            position += 1
            let end = try packageEnd()
            let name = try nameString()
            return .device(name, try terms(until: end))
        case let opcode:
            throw AMLDecodeError(offset: start, reason: "opcode 0x\(String(opcode, radix: 16)) not in the decoded subset")
        }
    }

    /// Walks a resource template: returns the descriptor item types, and checks the End Tag is last.
    static func resourceItems(_ buffer: [UInt8]) throws -> [UInt8] {
        var items: [UInt8] = [], offset = 0
        while offset < buffer.count {
            let tag = buffer[offset]
            if tag & 0x80 != 0 {
                guard offset + 3 <= buffer.count else { throw AMLDecodeError(offset: offset, reason: "truncated large item") }
                items.append(tag)
                offset += 3 + (Int(buffer[offset + 1]) | Int(buffer[offset + 2]) << 8)
            } else {
                items.append(tag & 0xF8)
                offset += 1 + Int(tag & 0x07)
                if tag & 0x78 == 0x78 {  // End Tag
                    guard offset == buffer.count else { throw AMLDecodeError(offset: offset, reason: "data after End Tag") }
                    return items
                }
            }
        }
        throw AMLDecodeError(offset: offset, reason: "no End Tag")
    }
}

@Suite("AML parsed back")
struct AMLRoundTripTests {
    func dsdtBody(_ config: ACPIConfiguration) throws -> [UInt8] {
        Array(try #require(try ACPITables.build(config).table("DSDT"))[36...])
    }

    @Test("the default DSDT decodes to \\_S5_ and \\_SB_ with COM1 and RTC")
    func defaultDSDT() throws {
        let nodes = try AMLDecoder.decode(try dsdtBody(ACPIConfiguration(vcpuCount: 2)))
        #expect(nodes.count == 2)
        #expect(nodes.first == .name("\\_S5_", .package([.integer(5), .integer(0)])))
        guard case let .scope(scopeName, devices) = nodes.last else {
            Issue.record("expected \\_SB_ scope, got \(String(describing: nodes.last))")
            return
        }
        #expect(scopeName == "\\_SB_")
        guard devices.count == 2, case let .device("COM1", com1) = devices[0], case let .device("RTC_", rtc) = devices[1] else {
            Issue.record("expected COM1 and RTC_, got \(devices)")
            return
        }
        #expect(com1.prefix(2) == [.name("_HID", .integer(0x0105_D041)), .name("_UID", .integer(0))])
        #expect(rtc.first == .name("_HID", .integer(0x000B_D041)))
        for case let .name("_CRS", .buffer(template)) in com1 + rtc {
            // IO port descriptor (0x47 → small type 0x08), IRQ descriptor (0x22 → type 0x04), End Tag.
            #expect(try AMLDecoder.resourceItems(template) == [0x40, 0x20, 0x78])
        }
    }

    @Test("large trees round-trip: multi-byte PkgLengths nest correctly")
    func largeTree() throws {
        var config = ACPIConfiguration(vcpuCount: 1)
        // 60 virtio-mmio-like devices make \_SB_ over 4 KiB (3-byte PkgLength); device 7's buffer and
        // each device need 2 bytes; the rest need 1.
        config.additionalDevices = (0..<60).map { index in
            AML.Device(AMLName(String(format2: index)), [
                AML.Name("_HID", "LNRO0005"),
                AML.Name("_UID", index),
                AML.Name("_CRS", ResourceTemplate([
                    .memory32Fixed(base: 0xD000_0000 + UInt32(index) * 0x1000, length: 0x1000, writable: true),
                    .interrupt(gsis: [UInt32(5 + index % 19)], edgeTriggered: true, activeLow: false, shared: false),
                ])),
                AML.Method("_STA", [AML.Return(0x0F)]),
                AML.Name("BLOB", AML.Buffer([UInt8](repeating: UInt8(index), count: index == 7 ? 100 : 4))),
            ])
        }
        let body = try dsdtBody(config)
        #expect(body.count > 4096)
        #expect(body[12] == 0x10 && body[13] >> 6 == 2, "\\_SB_ has a 3-byte PkgLength")
        let nodes = try AMLDecoder.decode(body)
        guard case let .scope(_, devices) = nodes.last else {
            Issue.record("no scope")
            return
        }
        #expect(devices.count == 62)
        guard case let .device(name, terms) = devices[2 + 7] else {
            Issue.record("no device 7")
            return
        }
        #expect(name == "VR07")
        #expect(terms.contains(.method("_STA", flags: 0, [.returnValue(.integer(0x0F))])))
        #expect(terms.contains(.name("BLOB", .buffer([UInt8](repeating: 7, count: 100)))))
        for case let .device(_, deviceTerms) in devices {
            for case let .name("_CRS", .buffer(template)) in deviceTerms {
                _ = try AMLDecoder.resourceItems(template)
            }
        }
    }
}

extension String {
    /// "VR00", "VR01", ... for device names in tests.
    init(format2 index: Int) { self = "VR" + (index < 10 ? "0" : "") + String(index) }
}
