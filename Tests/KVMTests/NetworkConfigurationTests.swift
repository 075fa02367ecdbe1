import Testing
@testable import Swiftlet
import SwiftletCommandLine

/// `--net` values as users write them, and the kernel parameter the guest's /init reads.
struct NetworkConfigurationTests {
    @Test func parsesTheFullSyntax() throws {
        let net = try NetworkConfiguration(parsing: "tap=tap0,mac=02:00:00:00:00:2a,ip=10.0.0.2/24,gateway=10.0.0.1", index: 0)
        #expect(net.backend == .tap(name: "tap0"))
        #expect(net.mac.description == "02:00:00:00:00:2a")
        #expect(net.address?.description == "10.0.0.2/24")
        #expect(net.gateway?.description == "10.0.0.1")
        #expect(net.commandLineParameter(index: 0) == "swiftlet.net0=mac=02:00:00:00:00:2a,ip=10.0.0.2/24,gw=10.0.0.1")
    }

    @Test func aMissingMACIsDerivedStablyAndLocallyAdministered() throws {
        let first = try NetworkConfiguration(parsing: "tap=tap0", index: 0)
        let again = try NetworkConfiguration(parsing: "tap=tap0", index: 0)
        let other = try NetworkConfiguration(parsing: "tap=tap1", index: 1)
        #expect(first.mac == again.mac)
        #expect(first.mac != other.mac)
        #expect(first.mac.bytes[0] == 0x02, "locally administered, unicast")
        #expect(first.commandLineParameter(index: 0) == "swiftlet.net0=mac=\(first.mac)")
    }

    @Test func parsesTheSocketBackendOnBothEnds() throws {
        let listening = try NetworkConfiguration(parsing: "socket=/tmp/n.sock,listen,ip=10.1.0.1/24", index: 0)
        let connecting = try NetworkConfiguration(parsing: "socket=/tmp/n.sock,ip=10.1.0.2/24", index: 0)
        #expect(listening.backend == .socket(path: "/tmp/n.sock", listen: true))
        #expect(connecting.backend == .socket(path: "/tmp/n.sock", listen: false))
        #expect(try NetworkConfiguration(parsing: "listen,socket=rel.sock", index: 1).backend == .socket(path: "rel.sock", listen: true),
                "listen may come first")
        // Both VMs name the same path with the same index: their derived MACs still differ.
        #expect(listening.mac != connecting.mac)
        #expect(listening.mac.bytes[0] == 0x02 && connecting.mac.bytes[0] == 0x02)
        #expect(connecting.commandLineParameter(index: 0) == "swiftlet.net0=mac=\(connecting.mac),ip=10.1.0.2/24")
    }

    @Test func theMTUIsTheOptionElseTheBackendsDefault() throws {
        #expect(try NetworkConfiguration(parsing: "tap=tap0", index: 0).advisedMTU == nil, "a TAP: Ethernet's 1500")
        #expect(try NetworkConfiguration(parsing: "socket=/tmp/s", index: 0).advisedMTU == 65520, "a socket: one 64 KiB segment a frame")
        #expect(try NetworkConfiguration(parsing: "socket=/tmp/s,mtu=1500", index: 0).advisedMTU == 1500)
        #expect(try NetworkConfiguration(parsing: "tap=tap0,mtu=9000", index: 0).advisedMTU == 9000)
        // The largest MTU still fits a socket link's largest frame, VLAN tag included.
        #expect(Int(NetworkConfiguration.mtuRange.upperBound) + 14 + 4 <= 65550)
    }

    @Test("bad values are refused with the reason", arguments: [
        ("ip=10.0.0.2/24", "no backend: add tap=NAME or socket=PATH"),
        ("tap=", "must be 1 to 15 characters"),
        ("tap=much-too-long-name", "must be 1 to 15 characters"),
        ("tap=t0,mac=02:00:00:00:00", "is not a MAC address"),
        ("tap=t0,mac=01:00:5e:00:00:01", "multicast"),
        ("tap=t0,ip=10.0.0.2", "with a prefix"),
        ("tap=t0,ip=10.0.0.256/24", "with a prefix"),
        ("tap=t0,ip=10.0.0.2/33", "with a prefix"),
        ("tap=t0,gateway=10.0.0.1", "needs ip="),
        ("tap=t0,ip=10.0.0.2/24,gateway=10.0.1.1", "is not in 10.0.0.2/24"),
        ("tap=t0,speed=fast", "unknown option"),
        ("tap", "not key=value"),
        ("tap=t0,listen", "listen goes with socket=PATH"),
        ("listen", "no backend"),
        ("tap=t0,socket=/tmp/s", "one backend per interface"),
        ("socket=/tmp/a,socket=/tmp/b", "one backend per interface"),
        ("socket=", "must be 1 to 107 bytes"),
        ("tap=t0,mtu=67", "must be 68 to 65520"),
        ("tap=t0,mtu=65521", "must be 68 to 65520"),
        ("tap=t0,mtu=big", "must be 68 to 65520"),
        ("socket=/" + String(repeating: "x", count: 107), "must be 1 to 107 bytes"),
    ])
    func refusesBadValues(text: String, reason: String) {
        do {
            _ = try NetworkConfiguration(parsing: text, index: 0)
            Issue.record("\(text) was accepted")
        } catch {
            #expect(error.description.contains(reason), "\(error)")
        }
    }
}
