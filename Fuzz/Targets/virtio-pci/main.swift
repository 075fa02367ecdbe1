// The virtio-pci transport driven by a hostile driver: PCI configuration space writes (BARs, command, MSI-X
// control), BAR accesses of any offset and width (common configuration, notify, ISR, device configuration, the
// MSI-X table and PBA), queue notifications, over guest memory whose bytes also come from the input. The device
// behind it is virtio-rng, whose queue work then reads the guest's rings.
import Devices
import FuzzSupport
import GuestMemory
import Logging
import Virtio
import VirtioPCI

struct IgnoredRouting: MSIXRouting {
    func routeChanged(vector: Int, message: MSIMessage?) {}
    func deliver(vector: Int, message: MSIMessage) {}
}

struct ZeroEntropy: EntropySource {
    func fill(_ buffer: inout [UInt8]) { for index in buffer.indices { buffer[index] = 0 } }
}

let memory = try! GuestMemory(ranges: [(GuestAddress(0), 64 << 10)])
// The transport logs what a driver does wrong, once per input here: warnings would fill the log and slow the run.
var quiet = Logger(label: "fuzz.virtio-pci")
quiet.logLevel = .critical

runFuzzer { bytes in
    var input = FuzzInput(bytes)
    let image = input.take(Int(input.integer(UInt16.self)))
    try! memory.write(image.prefix(64 << 10), at: GuestAddress(0))
    let transport = VirtioPCIDevice(device: EntropyDevice(source: ZeroEntropy()), memory: memory, msixRouting: IgnoredRouting(), logger: quiet)
    let widths = [1, 2, 4, 8]
    for _ in 0..<256 where !input.isEmpty {
        let operation = input.integer(UInt8.self)
        switch operation % 6 {
        case 0:
            let offset = Int(input.integer(UInt16.self) % 4200)
            transport.writeConfiguration(offset: offset, width: widths[Int(operation >> 3) % 3], value: input.integer())
        case 1:
            _ = transport.readConfiguration(offset: Int(input.integer(UInt16.self) % 4200), width: widths[Int(operation >> 3) % 3])
        case 2, 3:
            let offset = UInt64(input.integer(UInt32.self) % 0x5000)
            transport.writeBAR(Int(operation >> 4) % 7, offset: offset, width: widths[Int(operation >> 3) % 4], value: input.integer())
        case 4:
            _ = transport.readBAR(Int(operation >> 4) % 7, offset: UInt64(input.integer(UInt32.self) % 0x5000), width: widths[Int(operation >> 3) % 4])
        default:
            transport.queueNotified(index: Int(input.integer(UInt8.self) % 3))
        }
    }
}
