import Foundation
import Testing
@testable import Swiftlet

/// The state file's container (docs/snapshots.md) without KVM: what it writes, and each way a file is refused.
struct SnapshotFormatTests {
    static let path = "/snapshots/a/state"

    static func sample() -> SnapshotFile {
        var file = SnapshotFile()
        file.sections = [.init(name: "machine", payload: Array("{\"a\":1}".utf8)), .init(name: "vcpu.0", payload: [1, 2, 3])]
        return file
    }

    /// `bytes` with the trailing CRC-32 recomputed, as a tool forging a file would.
    static func resealed(_ bytes: [UInt8]) -> [UInt8] {
        var body = Array(bytes.dropLast(4))
        let crc = CRC32.checksum(body)
        withUnsafeBytes(of: crc.littleEndian) { body += $0 }
        return body
    }

    @Test("CRC-32 gives the standard check value")
    func crcCheckValue() {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        #expect(CRC32.checksum([UInt8]()) == 0)
    }

    @Test("a file round-trips: magic, version 2, declared length, sections in order")
    func roundTrip() throws {
        let bytes = Self.sample().encoded()
        #expect(Array(bytes.prefix(8)) == Array("SWLTSNAP".utf8))
        #expect(bytes[8] == 2)
        #expect(bytes[16] == UInt8(bytes.count))
        let decoded = try SnapshotFile(decoding: bytes, path: Self.path)
        #expect(decoded == Self.sample())
        #expect(decoded.section(named: "vcpu.0")?.payload == [1, 2, 3])
    }

    @Test("every way a file can be wrong is refused with the file's name and the problem")
    func refusals() {
        let good = Self.sample().encoded()
        func error(_ bytes: [UInt8]) -> SnapshotError? {
            do { _ = try SnapshotFile(decoding: bytes, path: Self.path); return nil } catch { return error }
        }
        #expect(error([]) == .notASnapshot(path: Self.path, reason: "it is 0 bytes, shorter than the magic"))
        var foreign = good
        foreign[0] = UInt8(ascii: "X")
        #expect(error(foreign) == .notASnapshot(path: Self.path, reason: "it does not start with the magic \"SWLTSNAP\""))
        #expect(error(Array(good.prefix(20))) == .truncated(path: Self.path, actual: 20, expected: 36))
        #expect(error(Array(good.dropLast(3))) == .truncated(path: Self.path, actual: UInt64(good.count - 3), expected: UInt64(good.count)))
        var newer = good
        newer[8] = 7
        #expect(error(newer) == .newerVersion(path: Self.path, version: 7, supported: 2))
        var flipped = good
        flipped[40] ^= 1
        guard case .checksumMismatch(Self.path, _, _)? = error(flipped) else { Issue.record("flipped byte accepted"); return }
        #expect(error(good + [0]).map { "\($0)" }?.contains("1 bytes follow the declared end") == true)

        // Forged files with a valid checksum: lengths and counts are still checked against the file.
        var hugeSection = good
        hugeSection[32 + 2 + 7] = 0xFF  // first section's payload length, high byte area
        hugeSection[32 + 2 + 7 + 7] = 0x7F
        guard case .malformed(Self.path, let reason)? = error(Self.resealed(hugeSection)) else { Issue.record("huge section accepted"); return }
        #expect(reason.contains("runs past the end"))
        var manySections = good
        manySections[12] = 0xFF; manySections[13] = 0xFF
        guard case .malformed? = error(Self.resealed(manySections)) else { Issue.record("section count accepted"); return }
        var fewerSections = good
        fewerSections[12] = 1
        guard case .malformed(_, let leftover)? = error(Self.resealed(fewerSections)) else { Issue.record("extra bytes accepted"); return }
        #expect(leftover.contains("after the last section"))
        var zeroVersion = good
        zeroVersion[8] = 0
        guard case .malformed? = error(zeroVersion) else { Issue.record("version 0 accepted"); return }
    }

    @Test("messages name the file")
    func messages() {
        #expect(SnapshotError.newerVersion(path: "/x/state", version: 3, supported: 2).description
                == "snapshot file /x/state has format version 3, newer than this Swiftlet reads (up to 2)")
        #expect(SnapshotError.truncated(path: "/x/state", actual: 10, expected: 99).description
                == "snapshot file /x/state is truncated: it is 10 bytes, its header says 99")
        #expect(SnapshotError.checksumMismatch(path: "/x/state", stored: 0xAB, computed: 0xCD).description
                == "snapshot file /x/state is corrupted: its CRC-32 is 0xcd, the file says 0xab")
    }
}
