import Foundation
import SystemPackage
import Testing
import Virtio

/// The TAP backend against a real TAP interface (created by the test, gone when its fd closes). Needs
/// /dev/net/tun and CAP_NET_ADMIN; traffic stays on that interface.
@Suite(.enabled(if: geteuid() == 0 && FileManager.default.fileExists(atPath: "/dev/net/tun"), "needs root and /dev/net/tun"))
struct TapDeviceTests {
    @Test("frames the host kernel sends on an up TAP arrive with a 12-byte vnet header; frames written are accepted")
    func framesFlowBothWays() throws {
        let name = "swt\(getpid() % 100_000)"
        let tap = try TapDevice(name: name, offloads: [.checksum, .tso4, .tso6])
        #expect(tap.name == name)
        try run("/sbin/ip", ["link", "set", name, "up"])
        // Bringing the link up makes the kernel send IPv6 router solicitations / MLD reports on it (if IPv6 is
        // on); wait a little for one. Absence of IPv6 is not a failure of ours.
        var buffer = [UInt8](repeating: 0, count: 65_562)
        var received: Int?
        for _ in 0..<40 where received == nil {
            received = try tap.read(into: &buffer)
            if received == nil { Thread.sleep(forTimeInterval: 0.05) }
        }
        if let received {
            #expect(received >= 12 + 14, "a vnet header and an Ethernet header")
        }
        // A broadcast ARP request from a made-up MAC, behind an all-zero vnet header.
        let vnetHeader = [UInt8](repeating: 0, count: 12)
        let ethernet: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x08, 0x06]
        let arp: [UInt8] = [0, 1, 8, 0, 6, 4, 0, 1, 0x02, 0, 0, 0, 0, 1, 10, 0, 0, 2] + [UInt8](repeating: 0, count: 6) + [10, 0, 0, 1]
        #expect(try tap.write(vnetHeader + ethernet + arp))
    }

    @Test func badNamesAreRejectedBeforeAnySystemCall() {
        #expect(throws: TapDevice.OpenError.invalidName("much-too-long-for-a-tap")) { try TapDevice(name: "much-too-long-for-a-tap") }
        #expect(throws: TapDevice.OpenError.invalidName("a/b")) { try TapDevice(name: "a/b") }
    }

    private func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
    }
}
