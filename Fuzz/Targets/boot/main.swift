// The kernel loaders and decompressors on hostile images: the first byte picks the parser, the rest is its
// input. None may trap, loop forever or allocate past its limit; errors are typed (BootError).
import Boot
import FuzzSupport
import GuestMemory

let memory = try! GuestMemory(ranges: [(GuestAddress(0), 64 << 20)])
let limit = 32 << 20

runFuzzer { bytes in
    guard let selector = bytes.first else { return }
    let input = Array(bytes.dropFirst())
    switch selector % 7 {
    case 0: _ = try? Gzip.decompress(input[...], maxOutputSize: limit)
    case 1: _ = try? LZ4Legacy.decompress(input[...], maxOutputSize: limit)
    case 2: _ = try? Inflate.decompress(input[...], maxOutputSize: limit)
    case 3: if let image = try? BzImage(input) { _ = try? image.unpackPayload(maxOutputSize: limit) }
    case 4: if let kernel = try? ElfKernel(input) { try? kernel.load(into: memory) }
    case 5: _ = try? loadLinux(LinuxBootRequest(kernel: input, commandLine: "console=ttyS0"), into: memory)
    default:
        // A kernel and an initrd cut from one input.
        let cut = input.isEmpty ? 0 : Int(input[0]) * input.count / 256
        _ = try? loadLinux(LinuxBootRequest(kernel: Array(input[..<cut]), initrd: Array(input[cut...])), into: memory)
    }
}
