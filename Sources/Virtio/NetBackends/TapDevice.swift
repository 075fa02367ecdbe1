import CHost
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A host TAP interface opened for a virtio-net device: frames carry the 12-byte virtio_net_hdr_v1 in front
/// (IFF_VNET_HDR), so checksum and segmentation offloads pass between guest and host kernel untouched.
///
/// The fd is non-blocking: the VMM's event loop waits for it to become readable (frames for the guest) and
/// writable (room for the guest's frames), and never spins.
public final class TapDevice: Sendable {
    public let name: String
    public let fd: FileDescriptor

    /// TUN_F_* offload bits (<linux/if_tun.h>) the guest's offloads map onto.
    public struct Offloads: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let checksum = Offloads(rawValue: 0x01)     // TUN_F_CSUM
        public static let tso4 = Offloads(rawValue: 0x02)         // TUN_F_TSO4
        public static let tso6 = Offloads(rawValue: 0x04)         // TUN_F_TSO6
        public static let tsoECN = Offloads(rawValue: 0x08)       // TUN_F_TSO_ECN
        public static let ufo = Offloads(rawValue: 0x10)          // TUN_F_UFO
    }

    public enum OpenError: Error, Equatable, CustomStringConvertible {
        case failed(name: String, stage: String, errno: Errno)
        case invalidName(String)

        public var description: String {
            switch self {
            case let .invalidName(name):
                return "invalid TAP name '\(name)': 1 to 15 bytes, no '/' or whitespace"
            case let .failed(name, stage, errno):
                var text = "cannot open TAP device \(name): \(stage) failed: \(errno)"
                if errno == .notPermitted || errno == .permissionDenied {
                    text += ". Creating a TAP needs CAP_NET_ADMIN: create it first (`sudo ip tuntap add \(name) mode tap user $USER`) or run as root"
                } else if errno == .noSuchFileOrDirectory || errno == .operationNotSupportedByDevice {
                    text += ". Load the tun module (`sudo modprobe tun`)"
                } else if errno == .resourceBusy {
                    text += ". Another process has it open"
                }
                return text
            }
        }
    }

    /// Attaches to TAP `name` (creating it when permitted) with the vnet header and `offloads` enabled.
    public init(name: String, offloads: Offloads = []) throws(OpenError) {
        guard (1...15).contains(name.utf8.count), !name.contains("/"), !name.contains(where: \.isWhitespace) else {
            throw .invalidName(name)
        }
        var step: Int32 = 0
        let raw = name.withCString { chost_open_tap($0, offloads.rawValue, &step) }
        guard raw >= 0 else {
            let steps = ["open /dev/net/tun", "TUNSETIFF", "TUNSETVNETHDRSZ", "TUNSETOFFLOAD"]
            throw .failed(name: name, stage: steps.indices.contains(Int(step)) ? steps[Int(step)] : "open", errno: Errno(rawValue: errno))
        }
        self.name = name
        fd = FileDescriptor(rawValue: raw)
    }

    deinit { try? fd.close() }

    /// Writes one frame (vnet header + Ethernet frame). Returns false if the TAP's queue is full right now
    /// (EAGAIN): wait for the fd to become writable and try again.
    public func write(_ frame: [UInt8]) throws(Errno) -> Bool {
        do {
            _ = try frame.withUnsafeBytes { try fd.write($0, retryOnInterrupt: true) }
            return true
        } catch let error as Errno where error == .resourceTemporarilyUnavailable {
            return false
        } catch let error as Errno {
            throw error
        } catch {
            throw .ioError
        }
    }

    /// Reads one frame (vnet header + Ethernet frame) into `buffer`; nil when none is waiting (EAGAIN).
    public func read(into buffer: inout [UInt8]) throws(Errno) -> Int? {
        do {
            return try buffer.withUnsafeMutableBytes { try fd.read(into: $0, retryOnInterrupt: true) }
        } catch let error as Errno where error == .resourceTemporarilyUnavailable {
            return nil
        } catch let error as Errno {
            throw error
        } catch {
            throw .ioError
        }
    }
}
