import Foundation
import Swiftlet

/// A tiny test guest: a few lines of assembly, assembled with the system's `as` into a flat image that
/// Swiftlet runs as a raw payload. The assembly in each test is the spec of what the guest does.
struct TinyGuest {
    let path: String

    /// Assembles `source` (AT&T syntax). `.code16` or `.code64` is prepended according to `mode`; the image
    /// is linked at `RawImagePayload.loadAddress`.
    init(_ source: String, mode: RawImagePayload.Mode = .realMode) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-tiny-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let prefix = mode == .realMode ? ".code16\n" : ".code64\n"
        let asm = directory.appendingPathComponent("guest.S"), object = directory.appendingPathComponent("guest.o")
        let linked = directory.appendingPathComponent("guest.elf"), image = directory.appendingPathComponent("guest.bin")
        try (".text\n.globl _start\n_start:\n" + prefix + source + "\n").write(to: asm, atomically: true, encoding: .utf8)
        try Self.tool("/usr/bin/as", ["--64", "-o", object.path, asm.path])
        try Self.tool("/usr/bin/ld", ["-m", "elf_x86_64", "-Ttext=0x\(String(RawImagePayload.loadAddress, radix: 16))",
                                      "-e", "_start", "-o", linked.path, object.path])
        try Self.tool("/usr/bin/objcopy", ["-O", "binary", "-j", ".text", linked.path, image.path])
        path = image.path
    }

    struct ToolFailed: Error, CustomStringConvertible { let description: String }

    private static func tool(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            throw ToolFailed(description: "\(executable) failed: \(text)")
        }
    }

    /// Runs the guest to its end and returns why it stopped and what it printed on the serial console.
    func run(mode: RawImagePayload.Mode = .realMode, input: [UInt8] = [], timeout: Double = 20) throws -> (reason: StopReason, output: String) {
        let pipe = Pipe()
        let configuration = MachineConfiguration(payload: .rawImage(RawImagePayload(path: path, mode: mode)), memory: .mebibytes(32))
        let machine = try Machine(configuration: configuration, consoleOutput: pipe.fileHandleForWriting.fileDescriptor)
        if !input.isEmpty { machine.sendConsoleInput(input) }
        let reason = machine.run(timeout: timeout, attachConsoleInput: false)
        try pipe.fileHandleForWriting.close()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return (reason, output)
    }
}

/// Assembly snippets shared by the tests.
enum Snippet {
    /// Prints the character in %al on COM1 (16-bit or 64-bit code alike).
    static func putChar(_ character: Character) -> String {
        "mov $0x3f8, %dx\nmov $\(character.asciiValue!), %al\nout %al, (%dx)\n"
    }

    static func print(_ text: String) -> String { text.map(putChar).joined() }
}
