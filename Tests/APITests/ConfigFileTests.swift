import Swiftlet
import Testing

@testable import SwiftletAPI

/// Firecracker's `--config-file`: the same resources as one object, with the same checks.
@Suite struct ConfigFileTests {
    @Test func aFullFileBecomesTheStore() async throws {
        let api = APIHarness()
        let kernel = api.file("vmlinux"), disk = api.file("rootfs.ext4")
        let file = #"""
        {
          "boot-source": {"kernel_image_path": "\#(kernel)", "boot_args": "console=ttyS0 reboot=k"},
          "drives": [{"drive_id": "rootfs", "path_on_host": "\#(disk)", "is_root_device": true, "is_read_only": false}],
          "machine-config": {"vcpu_count": 2, "mem_size_mib": 1024},
          "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}],
          "vsock": {"guest_cid": 3, "uds_path": "/tmp/fc.vsock"},
          "logger": {"log_path": "/tmp/fc.log", "level": "Debug"},
          "metrics": {"metrics_path": "/tmp/fc.metrics"},
          "mmds-config": {"network_interfaces": ["eth0"]},
          "balloon": null,
          "something-newer": {"ignored": true}
        }
        """#
        try await api.controller.loadConfigFile(Array(file.utf8))
        #expect(api.backend.calls == [.configureLogger(LoggerSettings(logPath: "/tmp/fc.log", level: "Debug")), .configureMetrics(path: "/tmp/fc.metrics")])
        #expect(await api.controller.execute(.instanceStart).status == 204)
        let configuration = try #require(api.startedConfiguration)
        #expect(configuration.vcpuCount == 2)
        #expect(configuration.memory == .mebibytes(1024))
        #expect(configuration.commandLine == "console=ttyS0 reboot=k root=/dev/vda rw")
        #expect(configuration.disks.map(\.path) == [disk])
        #expect(configuration.networks.map(\.id) == ["eth0"])
        #expect(configuration.vsock?.guestCID == 3)
        #expect(await api.request("GET", "/vm/config").member("mmds-config") != .null)
    }

    @Test func errorsNameTheFieldAndRule() {
        func message(_ text: String) -> String? {
            do {
                _ = try VMResources(configFile: Array(text.utf8))
                return nil
            } catch {
                return error.message
            }
        }
        let kernel = APIHarness().file("vmlinux")
        #expect(message(#"{"drives": []}"#)?.contains("missing field `boot-source`") == true)
        #expect(message(#"{"boot-source": {"kernel_image_path": "\#(kernel)"}}"#)?.contains("missing field `drives`") == true)
        #expect(message(#"{"boot-source": {"kernel_image_path": "\#(kernel)", "kernel": 1}, "drives": []}"#)?.contains("unknown field `boot-source.kernel`") == true)
        #expect(message(#"{"boot-source": {"kernel_image_path": "\#(kernel)"}, "drives": [], "machine-config": {"vcpu_count": 64, "mem_size_mib": 128}}"#)?
            .hasPrefix("Machine config error: The number of vCPUs") == true)
        #expect(message(#"{"boot-source": {"kernel_image_path": "/nonexistent"}, "drives": []}"#)?.hasPrefix("Boot source error") == true)
        #expect(message(#"{"boot-source": {"kernel_image_path": "\#(kernel)"}, "drives": [], "balloon": {"amount_mib": 1}}"#)?.contains("not implemented") == true)
        #expect(message("not json")?.hasPrefix("Invalid JSON") == true)
    }
}
