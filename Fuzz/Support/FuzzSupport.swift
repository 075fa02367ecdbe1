// The libFuzzer driver for Swift fuzz targets (scripts/fuzz builds them with -sanitize=fuzzer,address).
// SwiftPM links an executable's main.swift as `<module>_main` and points `main` at it, so each target's
// main.swift calls `runFuzzer`, which hands control to libFuzzer's own driver (LLVMFuzzerRunDriver) with the
// target's body behind the C entry point libFuzzer also expects (LLVMFuzzerTestOneInput).
#if canImport(Glibc)
import Glibc
#endif

@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(_ argc: UnsafeMutablePointer<CInt>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                       _ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) private var fuzzBody: (([UInt8]) -> Void)?

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = (data == nil || size == 0) ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    fuzzBody?(bytes)
    return 0
}

/// Runs libFuzzer with the process's arguments (`-runs=N`, `-max_total_time=S`, corpus directories).
public func runFuzzer(_ body: @escaping ([UInt8]) -> Void) -> Never {
    fuzzBody = body
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(runDriver(&argc, &argv, fuzzTestOneInput))
}

/// Takes integers and byte runs off the front of a fuzz input; past the end everything reads as zero.
public struct FuzzInput {
    public private(set) var bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isEmpty: Bool { offset >= bytes.count }

    public mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type = T.self) -> T {
        var value: T = 0
        for index in 0..<(T.bitWidth / 8) {
            let byte: UInt8 = offset < bytes.count ? bytes[offset] : 0
            offset += 1
            value |= T(byte) << (index * 8)
        }
        return value
    }

    public mutating func take(_ count: Int) -> [UInt8] {
        let end = min(bytes.count, offset + max(0, count))
        defer { offset = max(offset, end) }
        return offset < end ? Array(bytes[offset..<end]) : []
    }

    public mutating func rest() -> [UInt8] { take(bytes.count - offset) }
}
