// The snapshot state file (Swiftlet/Snapshot): the container (magic, version, section table, CRC) and every
// section a restore decodes, read from a state file whose bytes are the input. The memory file is absent, so a
// state that passes every check ends at "cannot open the memory file", never in a KVM call.
import FuzzSupport
@testable import Swiftlet
#if canImport(Glibc)
import Glibc
#endif

let directory = "/tmp/swiftlet-fuzz-snapshot-\(getpid())"
mkdir(directory, 0o700)
let statePath = directory + "/" + Machine.snapshotStateFile

runFuzzer { input in
    // The length field and the CRC are made right (as a real writer would) so that mutations reach the
    // section table and the sections; the unpatched input still goes through the container checks first.
    _ = try? SnapshotFile(decoding: input, path: "fuzz")
    var bytes = input
    if bytes.count >= SnapshotFile.headerSize + SnapshotFile.trailerSize {
        withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { bytes.replaceSubrange(16..<24, with: $0) }
        let crc = CRC32.checksum(Array(bytes.dropLast(4)))
        withUnsafeBytes(of: crc.littleEndian) { bytes.replaceSubrange((bytes.count - 4)..., with: $0) }
    }
    let fd = open(statePath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return }
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    _ = try? RestoredSnapshot.load(directory: directory)
}
