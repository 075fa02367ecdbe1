import Testing

@testable import Virtio
@testable import VirtioPCI

/// virtio-net behind the virtio-pci transport, as Linux's virtio_pci + virtio_net probe it: the PCI identity,
/// the features it can accept, and the MAC read through the device-specific configuration structure.
@Suite("virtio-net over virtio-pci")
struct NetPCITests {
    @Test func probesAsAnEthernetControllerWithItsMAC() throws {
        let rig = try Rig(NetDevice(mac: NetHarness.mac, mtu: 1500, backend: RecordingNetworkBackend()))
        let pci = rig.pci
        #expect(pci.config(0x02, 2) == 0x1041)  // 0x1040 + virtio-net's ID 1
        #expect(pci.config(0x08, 4) >> 8 == 0x020000)  // network controller, Ethernet
        #expect(pci.config(0x2E, 2) == 1)

        // Linux's virtnet accepts everything offered that it knows: all of it must pass FEATURES_OK.
        let offered = pci.deviceFeatures()
        #expect(offered & VirtioFeature.version1 != 0)
        #expect(offered & VirtioFeature.ringEventIndex != 0)
        #expect(offered & VirtioNetFeature.mergeableReceiveBuffers != 0)
        #expect(offered & VirtioNetFeature.offloads == VirtioNetFeature.offloads)
        #expect(pci.negotiate(offered) & DeviceStatus.featuresOK.rawValue != 0)

        // virtio_cread_bytes of mac, then status and mtu.
        let device = try #require(pci.device)
        #expect((0..<6).map { UInt8(pci.read(device, UInt64($0), 1)) } == NetHarness.mac)
        #expect(pci.read(device, 6, 2) == 1)
        #expect(pci.read(device, 8, 2) == 1)
        #expect(pci.read(device, 10, 2) == 1500)
        #expect(pci.read(pci.common, PCIDriver.numQueues, 2) == 2)
    }
}
