import Foundation
import Testing
@testable import Swiftlet

/// `PayloadImage.readFile`: a kernel, initrd or raw image read whole, straight into the array it returns, sized
/// from fstat — and still whole when the file is not what fstat said (a pipe reports size 0).
@Suite struct PayloadReadTests {
    static func pattern(_ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) } }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-read-\(name)-\(UUID().uuidString)").path
    }

    @Test("regular files of several sizes come back byte for byte", arguments: [0, 1, 4096, 3 << 20 | 5])
    func regularFile(size: Int) throws {
        let path = Self.temporaryPath("file")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = Self.pattern(size)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try PayloadImage.readFile(path, role: "test") == bytes)
    }

    @Test("a FIFO, whose fstat size is 0, is read to its end")
    func fifo() throws {
        let path = Self.temporaryPath("fifo")
        #expect(mkfifo(path, 0o600) == 0)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = Self.pattern(2 << 20 | 123)   // more than one chunk after the first
        let writer = Thread {
            guard let handle = FileHandle(forWritingAtPath: path) else { return }
            handle.write(Data(bytes))
            try? handle.close()
        }
        writer.start()
        #expect(try PayloadImage.readFile(path, role: "test") == bytes)
    }

    @Test("a missing file is a configuration error naming its role and path")
    func missingFile() {
        #expect {
            _ = try PayloadImage.readFile("/nonexistent/kernel", role: "kernel")
        } throws: { error in
            guard case .configuration(.unreadableFile(role: "kernel", path: "/nonexistent/kernel", _)) = error as? MachineError else {
                return false
            }
            return true
        }
    }
}
