import Swiftlet
import Testing

@testable import SwiftletAPI

/// Each endpoint through the router and controller against a fake machine: success, each refusal, and
/// Firecracker's before/after boot rules.
@Suite struct ControllerTests {
    @Test func instanceInfoFollowsTheMachine() async {
        let api = APIHarness()
        let info = await api.request("GET", "/")
        #expect(info.status == 200)
        #expect(info.member("state") == .string("Not started"))
        #expect(info.member("id") == .string("anonymous-instance"))
        #expect(info.member("app_name") == .string("Swiftlet"))
        #expect(info.member("vmm_version") == .string(APIController.firecrackerAPIVersion))
        #expect(await api.request("GET", "/version").json == .object(["firecracker_version": .string("1.17.0-dev")]))

        #expect(await api.putKernel().status == 204)
        #expect(await api.start().status == 204)
        #expect(await api.request("GET", "/").member("state") == .string("Running"))
        #expect(await api.request("PATCH", "/vm", #"{"state": "Paused"}"#).status == 204)
        #expect(await api.request("GET", "/").member("state") == .string("Paused"))
        #expect(await api.request("PATCH", "/vm", #"{"state": "Resumed"}"#).status == 204)
        #expect(api.backend.calls.dropFirst() == [.pause, .resume])
    }

    @Test func bootSourceIsCheckedWhenPut() async {
        let api = APIHarness()
        let missing = await api.request("PUT", "/boot-source", #"{"kernel_image_path": "/nonexistent/vmlinux"}"#)
        #expect(missing.status == 400)
        #expect(missing.faultMessage == "Boot source error: The kernel file cannot be opened: No such file or directory (os error 2)")
        let kernel = api.file("vmlinux")
        let badInitrd = await api.request("PUT", "/boot-source", #"{"kernel_image_path": "\#(kernel)", "initrd_path": "/nonexistent/initrd"}"#)
        #expect(badInitrd.faultMessage?.hasPrefix("Boot source error: The initrd file cannot be opened") == true)
        #expect(await api.putKernel().status == 204)
    }

    @Test func startWithoutBootSourceIsFirecrackersError() async {
        let api = APIHarness()
        let response = await api.start()
        #expect(response.status == 400)
        #expect(response.faultMessage == "Start microvm error: Cannot start microvm without kernel configuration.")
        #expect(api.backend.calls.isEmpty)
    }

    @Test func startBuildsTheLibraryConfiguration() async throws {
        let api = APIHarness()
        #expect(await api.putKernel(bootArgs: "console=ttyS0 reboot=k").status == 204)
        #expect(await api.request("PUT", "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 256}"#).status == 204)
        let data = api.file("data.img"), root = api.file("root.img")
        #expect(await api.request("PUT", "/drives/data", #"{"drive_id": "data", "path_on_host": "\#(data)", "is_root_device": false, "is_read_only": true}"#).status == 204)
        #expect(await api.request("PUT", "/drives/a_very_long_drive_identifier", #"{"drive_id": "a_very_long_drive_identifier", "path_on_host": "\#(root)", "is_root_device": true}"#).status == 204)
        #expect(await api.request("PUT", "/network-interfaces/eth0", #"{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "06:00:ac:10:00:02"}"#).status == 204)
        #expect(await api.request("PUT", "/network-interfaces/eth1", #"{"iface_id": "eth1", "host_dev_name": "tap1"}"#).status == 204)
        #expect(await api.request("PUT", "/vsock", #"{"guest_cid": 3, "uds_path": "/tmp/v.sock"}"#).status == 204)
        #expect(await api.start().status == 204)

        let configuration = try #require(api.startedConfiguration)
        #expect(configuration.vcpuCount == 2)
        #expect(configuration.memory == .mebibytes(256))
        // The root device is vda whatever the PUT order, and its serial is the id cut to 20 bytes.
        #expect(configuration.disks == [DiskConfiguration(path: root, readOnly: false, id: "a_very_long_drive_id"),
                                        DiskConfiguration(path: data, readOnly: true, id: "data")])
        #expect(configuration.commandLine == "console=ttyS0 reboot=k root=/dev/vda rw")
        #expect(configuration.networks.map(\.backend) == [.tap(name: "tap0"), .tap(name: "tap1")])
        #expect(configuration.networks.map(\.id) == ["eth0", "eth1"])
        #expect(configuration.networks[0].mac == MACAddress("06:00:ac:10:00:02"))
        // Without guest_mac: locally administered, and the same on every run.
        let derived = configuration.networks[1].mac.description
        #expect(derived.hasPrefix("02:"))
        #expect(derived == VMResources.derivedMAC(for: NetworkInterface(ifaceID: "eth1", hostDevName: "tap1")).description)
        #expect(configuration.vsock == VsockConfiguration(guestCID: 3, socketPath: "/tmp/v.sock"))
        #expect(await api.controller.startWarnings.isEmpty)
    }

    @Test func rootDeviceCommandLineVariants() async throws {
        let image = APIHarness().file("root.img")
        var resources = VMResources()
        try resources.setBootSource(BootSource(kernelImagePath: image, bootArgs: "console=ttyS0"))
        try resources.insertDrive(Drive(driveID: "root", pathOnHost: image, isRootDevice: true, isReadOnly: true))
        #expect(resources.kernelCommandLine == "console=ttyS0 root=/dev/vda ro")
        try resources.insertDrive(Drive(driveID: "root", pathOnHost: image, isRootDevice: true, partuuid: "0eaa91a0-01"))
        #expect(resources.kernelCommandLine == "console=ttyS0 root=PARTUUID=0eaa91a0-01 rw")
        // Not a root device any more: no root= at all.
        try resources.insertDrive(Drive(driveID: "root", pathOnHost: image, isRootDevice: false))
        #expect(resources.kernelCommandLine == "console=ttyS0")
    }

    @Test func defaultBootArgsAreFirecrackersAndPCIOffWarns() async throws {
        let api = APIHarness()
        #expect(await api.putKernel(bootArgs: nil).status == 204)
        let disk = api.file("disk.img")
        #expect(await api.request("PUT", "/drives/rootfs", #"{"drive_id": "rootfs", "path_on_host": "\#(disk)", "is_root_device": true}"#).status == 204)
        #expect(await api.start().status == 204)
        let configuration = try #require(api.startedConfiguration)
        #expect(configuration.commandLine == "reboot=k panic=1 pci=off nomodule 8250.nr_uarts=0 i8042.noaux i8042.nomux i8042.nopnp i8042.dumbkbd root=/dev/vda rw")
        let warnings = await api.controller.startWarnings
        #expect(warnings.contains { $0.contains("pci=off") && $0.contains("will not see") })
    }

    @Test func pciOffWithoutDevicesIsNotWorthAWarning() throws {
        var resources = VMResources()
        try resources.setBootSource(BootSource(kernelImagePath: APIHarness().file("k"), bootArgs: "console=ttyS0 pci=off"))
        #expect(try resources.machineConfiguration().warnings.isEmpty)
    }

    @Test func drivesFollowFirecrackersRules() async {
        let api = APIHarness()
        let one = api.file("one.img"), two = api.file("two.img")
        #expect(await api.request("PUT", "/drives/a", #"{"drive_id": "a", "path_on_host": "\#(one)", "is_root_device": true}"#).status == 204)
        let second = await api.request("PUT", "/drives/b", #"{"drive_id": "b", "path_on_host": "\#(two)", "is_root_device": true}"#)
        #expect(second.faultMessage == "Drive config error: A root block device already exists!")
        // PUT on a known id replaces it, keeping its place.
        #expect(await api.request("PUT", "/drives/b", #"{"drive_id": "b", "path_on_host": "\#(two)", "is_root_device": false}"#).status == 204)
        #expect(await api.request("PUT", "/drives/a", #"{"drive_id": "a", "path_on_host": "\#(two)", "is_root_device": true, "is_read_only": true}"#).status == 204)
        let drives = await api.controller.resources.drives
        #expect(drives.map(\.driveID) == ["a", "b"])
        #expect(drives[0].pathOnHost == two)
        let missing = await api.request("PUT", "/drives/c", #"{"drive_id": "c", "path_on_host": "/nonexistent.img", "is_root_device": false}"#)
        #expect(missing.faultMessage?.hasPrefix("Drive config error: Unable to create the virtio block device") == true)
        let vhost = await api.request("PUT", "/drives/c", #"{"drive_id": "c", "socket": "/tmp/vhost.sock", "is_root_device": false}"#)
        #expect(vhost.faultMessage?.contains("not implemented") == true)
    }

    @Test func machineConfigLimits() async {
        let api = APIHarness()
        #expect(await api.request("GET", "/machine-config").json
            == .object(["vcpu_count": .int(1), "mem_size_mib": .int(128), "smt": .bool(false), "track_dirty_pages": .bool(false), "huge_pages": .string("None")]))
        let vcpuMessage = "Machine config error: The number of vCPUs must be greater than 0, less than 32 and must be 1 or an even number if SMT is enabled."
        #expect(await api.request("PUT", "/machine-config", #"{"vcpu_count": 0, "mem_size_mib": 128}"#).faultMessage == vcpuMessage)
        #expect(await api.request("PUT", "/machine-config", #"{"vcpu_count": 33, "mem_size_mib": 128}"#).faultMessage == vcpuMessage)
        #expect(await api.request("PUT", "/machine-config", #"{"vcpu_count": 3, "mem_size_mib": 128, "smt": true}"#).faultMessage == vcpuMessage)
        #expect(await api.request("PUT", "/machine-config", #"{"vcpu_count": 1, "mem_size_mib": 0}"#).faultMessage
            == "Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size.")
        #expect(await api.request("PUT", "/machine-config", #"{"vcpu_count": 1, "mem_size_mib": 129, "huge_pages": "2M"}"#).status == 400)
        #expect(await api.request("PUT", "/machine-config", #"{"vcpu_count": 4, "mem_size_mib": 1024, "cpu_template": "T2"}"#).status == 204)
        #expect(await api.request("PATCH", "/machine-config", #"{"mem_size_mib": 512}"#).status == 204)
        let config = await api.request("GET", "/machine-config")
        #expect(config.member("vcpu_count") == .int(4))
        #expect(config.member("mem_size_mib") == .int(512))
        #expect(config.member("cpu_template") == .string("T2"))
    }

    @Test func preBootOnlyRequestsAreRefusedAfterBoot() async {
        let api = APIHarness()
        #expect(await api.putKernel().status == 204)
        #expect(await api.start().status == 204)
        let disk = api.file("late.img"), kernel = api.file("k2")
        let refused = [
            ("PUT", "/boot-source", #"{"kernel_image_path": "\#(kernel)"}"#),
            ("PUT", "/machine-config", #"{"vcpu_count": 1, "mem_size_mib": 128}"#),
            ("PATCH", "/machine-config", #"{"vcpu_count": 2}"#),
            ("PUT", "/drives/late", #"{"drive_id": "late", "path_on_host": "\#(disk)", "is_root_device": false}"#),
            ("PUT", "/network-interfaces/eth0", #"{"iface_id": "eth0", "host_dev_name": "tap0"}"#),
            ("PUT", "/vsock", #"{"guest_cid": 3, "uds_path": "/tmp/v"}"#),
            ("PUT", "/entropy", "{}"),
            ("PUT", "/logger", #"{"level": "Info"}"#),
            ("PUT", "/metrics", #"{"metrics_path": "/tmp/m"}"#),
            ("PUT", "/mmds/config", #"{"network_interfaces": ["eth0"]}"#),
            ("PUT", "/actions", #"{"action_type": "InstanceStart"}"#),
        ]
        for (method, path, body) in refused {
            let response = await api.request(method, path, body)
            #expect(response.status == 400, "\(method) \(path)")
            #expect(response.faultMessage == "The requested operation is not supported after starting the microVM.", "\(method) \(path)")
        }
        #expect(api.backend.calls.count == 1)   // only the start
    }

    @Test func runtimeOnlyRequestsAreRefusedBeforeBoot() async {
        let api = APIHarness()
        let refused = [
            ("PATCH", "/vm", #"{"state": "Paused"}"#),
            ("PATCH", "/vm", #"{"state": "Resumed"}"#),
            ("PATCH", "/drives/root", #"{"drive_id": "root", "path_on_host": "/x"}"#),
            ("PATCH", "/network-interfaces/eth0", #"{"iface_id": "eth0"}"#),
            ("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#),
            ("PUT", "/actions", #"{"action_type": "FlushMetrics"}"#),
        ]
        for (method, path, body) in refused {
            let response = await api.request(method, path, body)
            #expect(response.faultMessage == "The requested operation is not supported before starting the microVM.", "\(method) \(path)")
        }
        #expect(api.backend.calls.isEmpty)
    }

    @Test func runtimeRequestsReachTheMachine() async {
        let api = APIHarness()
        let disk = api.file("root.img"), replacement = api.file("new.img")
        #expect(await api.putKernel().status == 204)
        #expect(await api.request("PUT", "/drives/root", #"{"drive_id": "root", "path_on_host": "\#(disk)", "is_root_device": true}"#).status == 204)
        #expect(await api.request("PUT", "/network-interfaces/eth0", #"{"iface_id": "eth0", "host_dev_name": "tap0"}"#).status == 204)
        #expect(await api.start().status == 204)

        #expect(await api.request("PATCH", "/drives/root", #"{"drive_id": "root", "path_on_host": "\#(replacement)"}"#).status == 204)
        #expect(await api.request("PATCH", "/drives/nope", #"{"drive_id": "nope", "path_on_host": "/x"}"#).faultMessage?.contains("Unable to patch the block device") == true)
        #expect(await api.request("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#).status == 204)
        #expect(await api.request("PUT", "/actions", #"{"action_type": "FlushMetrics"}"#).status == 204)
        let limiter = #"{"bandwidth": {"size": 1000, "refill_time": 100}}"#
        #expect(await api.request("PATCH", "/network-interfaces/eth0", #"{"iface_id": "eth0", "rx_rate_limiter": \#(limiter)}"#).status == 204)
        #expect(await api.request("PATCH", "/network-interfaces/eth9", #"{"iface_id": "eth9"}"#).status == 400)
        #expect(Array(api.backend.calls.dropFirst()) == [.replaceDrive(id: "root", path: replacement), .sendCtrlAltDel, .flushMetrics])

        // The patched values show in the full configuration, which is available after boot too.
        let full = await api.request("GET", "/vm/config")
        #expect(full.status == 200)
        guard case let .array(drives)? = full.member("drives"), case let .object(drive)? = drives.first,
              case let .array(interfaces)? = full.member("network-interfaces"), case let .object(interface)? = interfaces.first else {
            Issue.record("no drives or interfaces in \(full.text)")
            return
        }
        #expect(drive["path_on_host"] == .string(replacement))
        #expect(interface["rx_rate_limiter"] == .object(["bandwidth": .object(["size": .int(1000), "refill_time": .int(100)])]))
    }

    @Test func backendErrorsBecomeFaults() async {
        let api = APIHarness()
        #expect(await api.putKernel().status == 204)
        api.backend.failNextCalls(with: "KVM_CREATE_VM failed: EPERM")
        let start = await api.start()
        #expect(start.faultMessage == "Start microvm error: KVM_CREATE_VM failed: EPERM")
        #expect(await api.request("GET", "/").member("state") == .string("Not started"))
        let metrics = await api.request("PUT", "/metrics", #"{"metrics_path": "/nonexistent/m"}"#)
        #expect(metrics.faultMessage == "Metrics error: KVM_CREATE_VM failed: EPERM")
        #expect(await api.controller.resources.metrics == nil)
    }

    @Test func loggerAndMetricsGoToTheBackend() async {
        let api = APIHarness()
        #expect(await api.request("PUT", "/logger", #"{"log_path": "/tmp/log", "level": "warning", "show_level": true, "show_log_origin": false}"#).status == 204)
        #expect(await api.request("PUT", "/metrics", #"{"metrics_path": "/tmp/metrics"}"#).status == 204)
        #expect(api.backend.calls == [.configureLogger(LoggerSettings(logPath: "/tmp/log", level: "warning", showLevel: true, showLogOrigin: false)),
                                      .configureMetrics(path: "/tmp/metrics")])
    }

    @Test func mmdsIsStoredAndMergePatched() async {
        let api = APIHarness()
        #expect(await api.request("GET", "/mmds").text == "{}")
        #expect(await api.request("PATCH", "/mmds", #"{"a": 1}"#).faultMessage == "MMDS error: The MMDS data store is not initialized.")
        #expect(await api.request("PUT", "/mmds", #"{"latest": {"meta-data": {"ami-id": "ami-1", "hostname": "vm"}}, "keep": [1, 2]}"#).status == 204)
        // RFC 7396: objects merge, null removes, anything else replaces.
        #expect(await api.request("PATCH", "/mmds", #"{"latest": {"meta-data": {"hostname": null, "zone": "z1"}}, "keep": "now a string"}"#).status == 204)
        #expect(await api.request("GET", "/mmds").json == .object([
            "latest": .object(["meta-data": .object(["ami-id": .string("ami-1"), "zone": .string("z1")])]),
            "keep": .string("now a string"),
        ]))
        // Each body fits the 51200-byte limit, but the merged document would not.
        let half = String(repeating: "x", count: 30_000)
        #expect(await api.request("PATCH", "/mmds", #"{"one": "\#(half)"}"#).status == 204)
        let tooMuch = await api.request("PATCH", "/mmds", #"{"two": "\#(half)", "one": null}"#)
        #expect(tooMuch.status == 204)
        let overflow = await api.request("PATCH", "/mmds", #"{"three": "\#(half)"}"#)
        #expect(overflow.status == 413)
        #expect(overflow.faultMessage == "MMDS limit exceeded error: The MMDS patch request doesn't fit.")
        #expect(await api.request("PATCH", "/mmds", #"{"two": null}"#).status == 204)
        #expect(await api.request("GET", "/mmds").member("keep") == .string("now a string"))
    }

    @Test func mmdsConfigNeedsKnownInterfaces() async {
        let api = APIHarness()
        #expect(await api.request("PUT", "/mmds/config", #"{"network_interfaces": []}"#).faultMessage?.contains("is empty") == true)
        #expect(await api.request("PUT", "/mmds/config", #"{"network_interfaces": ["eth0"]}"#).faultMessage?.contains("does not correspond") == true)
        #expect(await api.request("PUT", "/network-interfaces/eth0", #"{"iface_id": "eth0", "host_dev_name": "tap0"}"#).status == 204)
        #expect(await api.request("PUT", "/mmds/config", #"{"network_interfaces": ["eth0"], "ipv4_address": "10.0.0.1"}"#).faultMessage?.contains("not link local") == true)
        #expect(await api.request("PUT", "/mmds/config", #"{"network_interfaces": ["eth0"], "ipv4_address": "169.254.170.2", "version": "V2"}"#).status == 204)
    }

    @Test func guestMACsMustDiffer() async {
        let api = APIHarness()
        #expect(await api.request("PUT", "/network-interfaces/a", #"{"iface_id": "a", "host_dev_name": "tap0", "guest_mac": "06:00:00:00:00:01"}"#).status == 204)
        let clash = await api.request("PUT", "/network-interfaces/b", #"{"iface_id": "b", "host_dev_name": "tap1", "guest_mac": "06:00:00:00:00:01"}"#)
        #expect(clash.faultMessage == "Network config error: The MAC address is already in use: 06:00:00:00:00:01")
        // Replacing the same interface with its own MAC is fine.
        #expect(await api.request("PUT", "/network-interfaces/a", #"{"iface_id": "a", "host_dev_name": "tap2", "guest_mac": "06:00:00:00:00:01"}"#).status == 204)
    }

    @Test func fullConfigurationShowsAbsentResourcesAsFirecrackerDoes() async {
        let api = APIHarness()
        let full = await api.request("GET", "/vm/config")
        #expect(full.status == 200)
        #expect(full.member("boot-source") == .object(["kernel_image_path": .string(""), "initrd_path": .null]))
        #expect(full.member("drives") == .array([]))
        #expect(full.member("network-interfaces") == .array([]))
        for key in ["vsock", "entropy", "balloon", "logger", "metrics", "mmds-config"] {
            #expect(full.member(key) == .null, "\(key)")
        }
        #expect(full.member("machine-config")?.objectKeys.contains("vcpu_count") == true)
    }

    @Test func oversizeBodyIsRefused() async {
        let api = APIHarness()
        let body = #"{"kernel_image_path": "\#(String(repeating: "k", count: 60_000))"}"#
        let response = await api.request("PUT", "/boot-source", body)
        #expect(response.status == 400)
        #expect(response.faultMessage == "Request payload with size \(body.utf8.count) is larger than the limit of 51200 allowed by server.")
    }

    @Test func everyRequestIsCountedOnce() async {
        let api = APIHarness()
        await api.request("GET", "/")
        await api.request("PUT", "/drives/x", "{}")
        await api.request("GET", "/nothing")
        #expect(api.records.all == [
            APIRequestRecord(method: "GET", resource: "", failed: false),
            APIRequestRecord(method: "PUT", resource: "drives", failed: true),
            APIRequestRecord(method: "GET", resource: "nothing", failed: true),
        ])
    }

    @Test func concurrentRequestsRunOneAtATime() async {
        let api = APIHarness()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<20 {
                group.addTask { await api.request("PUT", "/mmds", #"{"n": \#(index)}"#) }
                group.addTask { await api.request("GET", "/mmds") }
            }
        }
        #expect(api.records.all.count == 40)
        #expect(api.records.all.allSatisfy { !$0.failed })
    }

    @Test func apiAfterACLIStartIsInRuntimeMode() async {
        // `swiftlet run --api-sock`: the machine already runs when the API comes up.
        let api = APIHarness()
        api.backend.setState(.running)
        #expect(await api.request("GET", "/").member("state") == .string("Running"))
        #expect(await api.request("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#).status == 204)
        #expect(await api.putKernel().faultMessage == "The requested operation is not supported after starting the microVM.")
    }
}

extension JSONValue {
    var objectKeys: [String] {
        if case let .object(members) = self { return Array(members.keys) }
        return []
    }
}
