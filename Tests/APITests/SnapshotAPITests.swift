import Swiftlet
import Testing

@testable import SwiftletAPI

/// `PUT /snapshot/create` and `PUT /snapshot/load` as Firecracker's swagger and `request/snapshot.rs` define them:
/// the bodies, which fields exclude or require each other, the exact faults, and when each is allowed (create after
/// boot on a paused VM; load only in a VMM that has not booted nor configured a boot-specific resource, and a load
/// that fails once begun leaves the VMM unusable). Against the fake machine.
@Suite struct SnapshotAPITests {
    static let deserialize = "An error occurred when deserializing the json body of a request: "
    static let load = #"{"snapshot_path": "/snap/state", "mem_backend": {"backend_type": "File", "backend_path": "/snap/memory"}}"#
    static let create = #"{"snapshot_path": "/snap/state", "mem_file_path": "/snap/memory"}"#

    private func route(_ path: String, _ body: String) throws(APIFault) -> APIAction {
        try APIRouter.route(method: "PUT", path: path, body: Array(body.utf8))
    }

    private func fault(_ method: String, _ path: String, _ body: String) -> String? {
        do {
            _ = try APIRouter.route(method: method, path: path, body: Array(body.utf8))
            return nil
        } catch {
            return error.message
        }
    }

    // MARK: Routing and bodies

    @Test func createBodyDefaultsToFull() throws {
        #expect(try route("/snapshot/create", Self.create)
            == .createSnapshot(SnapshotCreateParams(snapshotType: .full, snapshotPath: "/snap/state", memFilePath: "/snap/memory")))
        #expect(try route("/snapshot/create", #"{"snapshot_type": "Diff", "snapshot_path": "s", "mem_file_path": "m"}"#)
            == .createSnapshot(SnapshotCreateParams(snapshotType: .diff, snapshotPath: "s", memFilePath: "m")))
    }

    @Test("create: both paths are required, unknown fields and types are refused by name",
          arguments: [
            (#"{"snapshot_path": "s"}"#, "missing field `mem_file_path`"),
            (#"{"mem_file_path": "m"}"#, "missing field `snapshot_path`"),
            (#"{"snapshot_path": "s", "mem_file_path": "m", "version": "1.0"}"#, "unknown field `version`"),
            (#"{"snapshot_type": "Incremental", "snapshot_path": "s", "mem_file_path": "m"}"#, "unknown variant `Incremental` for `snapshot_type`"),
            (#"{"snapshot_path": 3, "mem_file_path": "m"}"#, "`snapshot_path`"),
          ])
    func createBodyRules(body: String, message: String) throws {
        let text = try #require(fault("PUT", "/snapshot/create", body))
        #expect(text.hasPrefix(Self.deserialize), "\(text)")
        #expect(text.contains(message), "\(text)")
    }

    @Test func loadBodyWithMemBackend() throws {
        let action = try route("/snapshot/load", #"""
            {"snapshot_path": "/s", "mem_backend": {"backend_type": "File", "backend_path": "/m"}, "track_dirty_pages": true,
             "resume_vm": true, "network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap7"}],
             "vsock_override": {"uds_path": "/v.sock"}, "clock_realtime": true, "huge_pages": "None"}
            """#)
        #expect(action == .loadSnapshot(SnapshotLoad(
            snapshotPath: "/s", memBackend: MemoryBackend(backendType: .file, backendPath: "/m"), trackDirtyPages: true, resumeVM: true,
            networkOverrides: [NetworkOverride(ifaceID: "eth0", hostDevName: "tap7")], vsockOverride: VsockOverride(udsPath: "/v.sock"),
            clockRealtime: true, hugePages: .none, usedDeprecatedFields: false)))
    }

    @Test("load: the deprecated mem_file_path becomes a File backend; enable_diff_snapshots means track_dirty_pages")
    func loadDeprecatedFields() throws {
        #expect(try route("/snapshot/load", #"{"snapshot_path": "/s", "mem_file_path": "/m", "enable_diff_snapshots": true}"#)
            == .loadSnapshot(SnapshotLoad(snapshotPath: "/s", memBackend: MemoryBackend(backendType: .file, backendPath: "/m"),
                                          trackDirtyPages: true, usedDeprecatedFields: true)))
        // Defaults: no resume, no dirty tracking, no overrides, the snapshot's huge-page setting.
        #expect(try route("/snapshot/load", #"{"snapshot_path": "/s", "mem_file_path": "/m"}"#)
            == .loadSnapshot(SnapshotLoad(snapshotPath: "/s", memBackend: MemoryBackend(backendType: .file, backendPath: "/m"),
                                          usedDeprecatedFields: true)))
    }

    @Test("load: exactly one of mem_backend and mem_file_path, with Firecracker's words")
    func loadMemoryFieldsExcludeEachOther() {
        #expect(fault("PUT", "/snapshot/load", #"{"snapshot_path": "/s"}"#)
            == Self.deserialize + "missing field: either `mem_backend` or `mem_file_path` is required.")
        #expect(fault("PUT", "/snapshot/load", #"{"snapshot_path": "/s", "mem_file_path": "/m", "mem_backend": {"backend_type": "File", "backend_path": "/m"}}"#)
            == Self.deserialize + "too many fields: either `mem_backend` or `mem_file_path` exclusively is required.")
    }

    @Test("load: unknown fields refused at the top and in mem_backend, ignored in the overrides (as serde is told in Firecracker)",
          arguments: [
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "resume": true}"#, "unknown field `resume`"),
            (#"{"snapshot_path": "/s", "mem_backend": {"backend_type": "File", "backend_path": "/m", "size": 4}}"#, "unknown field `mem_backend.size`"),
            (#"{"snapshot_path": "/s", "mem_backend": {"backend_type": "Disk", "backend_path": "/m"}}"#, "unknown variant `Disk` for `mem_backend.backend_type`"),
            (#"{"snapshot_path": "/s", "mem_backend": {"backend_path": "/m"}}"#, "missing field `mem_backend.backend_type`"),
            (#"{"mem_file_path": "/m"}"#, "missing field `snapshot_path`"),
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "resume_vm": "yes"}"#, "`resume_vm`"),
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "network_overrides": [{"iface_id": "eth0"}]}"#, "missing field `network_overrides[0].host_dev_name`"),
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "huge_pages": "1G"}"#, "unknown variant `1G` for `huge_pages`"),
          ])
    func loadBodyRules(body: String, message: String) throws {
        let text = try #require(fault("PUT", "/snapshot/load", body))
        #expect(text.hasPrefix(Self.deserialize), "\(text)")
        #expect(text.contains(message), "\(text)")
    }

    @Test func overridesIgnoreUnknownFields() throws {
        let action = try route("/snapshot/load", #"""
            {"snapshot_path": "/s", "mem_file_path": "/m", "network_overrides": [{"iface_id": "a", "host_dev_name": "t", "x": 1}],
             "vsock_override": {"uds_path": "/v", "y": 2}}
            """#)
        guard case let .loadSnapshot(load) = action else { Issue.record("not a load: \(action)"); return }
        #expect(load.networkOverrides == [NetworkOverride(ifaceID: "a", hostDevName: "t")])
        #expect(load.vsockOverride == VsockOverride(udsPath: "/v"))
    }

    @Test func snapshotPaths() {
        #expect(fault("PUT", "/snapshot", "{}") == "Missing snapshot operation type.")
        #expect(fault("PUT", "/snapshot/restore", "{}") == "Invalid request method and/or path: PUT /snapshot/restore.")
        #expect(fault("PUT", "/snapshot/create", "") == "Empty PUT request.")
        #expect(fault("GET", "/snapshot/create", "") == "Invalid request method and/or path: GET snapshot.")
        #expect(fault("PATCH", "/snapshot/create", Self.create) == "Invalid request method and/or path: PATCH snapshot.")
    }

    // MARK: Create, through the controller

    @Test func createBeforeBootIsRefused() async {
        let api = APIHarness()
        let response = await api.request("PUT", "/snapshot/create", Self.create)
        #expect(response.status == 400)
        #expect(response.faultMessage == "The requested operation is not supported before starting the microVM.")
        #expect(api.backend.calls.isEmpty)
    }

    @Test("create needs a paused VM, saves to the two paths, and leaves it paused")
    func createOnAPausedVM() async {
        let api = APIHarness()
        _ = await api.putKernel()
        #expect(await api.start().status == 204)

        let running = await api.request("PUT", "/snapshot/create", Self.create)
        #expect(running.status == 400)
        #expect(running.faultMessage?.hasPrefix("Create snapshot error: the microVM must be paused first") == true, "\(running.text)")
        #expect(!api.backend.calls.contains(.createSnapshot(statePath: "/snap/state", memoryPath: "/snap/memory", kind: .full)))

        #expect(await api.request("PATCH", "/vm", #"{"state": "Paused"}"#).status == 204)
        let saved = await api.request("PUT", "/snapshot/create", Self.create)
        #expect(saved.status == 204, "\(saved.text)")
        #expect(saved.body.isEmpty)
        #expect(api.backend.calls.last == .createSnapshot(statePath: "/snap/state", memoryPath: "/snap/memory", kind: .full))
        #expect(await api.request("GET", "/").member("state") == .string("Paused"))
    }

    @Test("Diff reaches the backend as a Diff; machine-config's track_dirty_pages turns tracking on before the start, and only then")
    func diffAndTracking() async {
        let plain = APIHarness()
        _ = await plain.putKernel()
        _ = await plain.start()
        #expect(!plain.backend.calls.contains(.trackDirtyPages))

        let api = APIHarness()
        _ = await api.putKernel()
        #expect(await api.request("PATCH", "/machine-config", #"{"track_dirty_pages": true}"#).status == 204)
        _ = await api.start()
        let calls = api.backend.calls
        guard let at = calls.firstIndex(of: .trackDirtyPages), at + 1 < calls.count, case .start = calls[at + 1] else {
            Issue.record("tracking is not turned on right before the start: \(calls)")
            return
        }
        _ = await api.request("PATCH", "/vm", #"{"state": "Paused"}"#)
        let response = await api.request("PUT", "/snapshot/create", #"{"snapshot_type": "Diff", "snapshot_path": "/s", "mem_file_path": "/m"}"#)
        #expect(response.status == 204, "\(response.text)")
        #expect(api.backend.calls.last == .createSnapshot(statePath: "/s", memoryPath: "/m", kind: .diff))
    }

    @Test("load: track_dirty_pages reaches the backend with the request")
    func loadWithTracking() async {
        let api = APIHarness()
        let response = await api.request("PUT", "/snapshot/load", #"""
            {"snapshot_path": "/s", "mem_backend": {"backend_type": "File", "backend_path": "/m"}, "track_dirty_pages": true}
            """#)
        #expect(response.status == 204, "\(response.text)")
        #expect(api.backend.calls.last == .loadSnapshot(SnapshotLoadRequest(statePath: "/s", memoryPath: "/m", trackDirtyPages: true)))
    }

    @Test func createFailureIsAFault() async {
        let api = APIHarness()
        _ = await api.putKernel()
        _ = await api.start()
        _ = await api.request("PATCH", "/vm", #"{"state": "Paused"}"#)
        api.backend.failNextCalls(with: "cannot write snapshot file /snap/state: Permission denied")
        let response = await api.request("PUT", "/snapshot/create", Self.create)
        #expect(response.status == 400)
        #expect(response.faultMessage == "Create snapshot error: cannot write snapshot file /snap/state: Permission denied")
        // Not fatal: the VM and the API go on.
        api.backend.failNextCalls(with: nil)
        #expect(await api.request("GET", "/").status == 200)
    }

    // MARK: Load, through the controller

    @Test("load in a fresh VMM: the overrides reach the machine, the VM is paused until resumed, pre-boot PUTs are over")
    func loadThenResume() async {
        let api = APIHarness()
        // Logger and metrics may be configured first (Firecracker: they are not boot-specific).
        #expect(await api.request("PUT", "/metrics", #"{"metrics_path": "\#(api.file("metrics"))"}"#).status == 204)
        let response = await api.request("PUT", "/snapshot/load", #"""
            {"snapshot_path": "/snap/state", "mem_backend": {"backend_type": "File", "backend_path": "/snap/memory"},
             "network_overrides": [{"iface_id": "net0", "host_dev_name": "tap9"}], "vsock_override": {"uds_path": "/run/v.sock"},
             "drive_overrides": [{"drive_id": "rootfs", "path_on_host": "/clones/2/rootfs.ext4"}], "clock_realtime": true}
            """#)
        #expect(response.status == 204, "\(response.text)")
        let expected = SnapshotLoadRequest(
            statePath: "/snap/state", memoryPath: "/snap/memory",
            overrides: SnapshotOverrides(networks: [.init(interfaceID: "net0", backend: .tap(name: "tap9"))],
                                         drives: [.init(driveID: "rootfs", path: "/clones/2/rootfs.ext4")], vsockSocketPath: "/run/v.sock",
                                         advanceGuestClock: true),
            resume: false)
        #expect(api.backend.calls.last == .loadSnapshot(expected))
        #expect(await api.request("GET", "/").member("state") == .string("Paused"))
        // GET /machine-config shows the restored machine.
        let config = await api.request("GET", "/machine-config")
        #expect(config.member("vcpu_count") == .int(2) && config.member("mem_size_mib") == .int(64), "\(config.text)")
        #expect(await api.request("GET", "/vm/config").status == 200)

        #expect(await api.request("PUT", "/boot-source", #"{"kernel_image_path": "/k"}"#).faultMessage
            == "The requested operation is not supported after starting the microVM.")
        #expect(await api.request("PUT", "/snapshot/load", Self.load).faultMessage
            == "The requested operation is not supported after starting the microVM.")
        #expect(await api.request("PATCH", "/vm", #"{"state": "Resumed"}"#).status == 204)
        #expect(api.backend.calls.last == .resume)
        #expect(await api.request("GET", "/").member("state") == .string("Running"))
    }

    @Test func loadWithResumeRuns() async {
        let api = APIHarness()
        let response = await api.request("PUT", "/snapshot/load", #"{"snapshot_path": "/s", "mem_file_path": "/m", "resume_vm": true}"#)
        #expect(response.status == 204)
        #expect(api.backend.calls == [.loadSnapshot(SnapshotLoadRequest(statePath: "/s", memoryPath: "/m", resume: true))])
        #expect(await api.request("GET", "/").member("state") == .string("Running"))
    }

    @Test("load is refused after a boot-specific resource, with Firecracker's message, and after InstanceStart",
          arguments: [
            ("/boot-source", #"{"kernel_image_path": "/k"}"#),
            ("/machine-config", #"{"vcpu_count": 1, "mem_size_mib": 128}"#),
            ("/vsock", #"{"guest_cid": 3, "uds_path": "/v.sock"}"#),
            ("/entropy", "{}"),
          ])
    func loadAfterBootResources(path: String, body: String) async {
        let api = APIHarness()
        _ = await api.request("PUT", path, body)
        let response = await api.request("PUT", "/snapshot/load", Self.load)
        #expect(response.status == 400)
        #expect(response.faultMessage == "Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources.")
        #expect(!api.backend.calls.contains { if case .loadSnapshot = $0 { true } else { false } })
        // Refused, not fatal.
        #expect(await api.request("GET", "/").status == 200)
    }

    @Test func loadAfterStartIsRefused() async {
        let api = APIHarness()
        _ = await api.putKernel()
        _ = await api.start()
        #expect(await api.request("PUT", "/snapshot/load", Self.load).faultMessage
            == "The requested operation is not supported after starting the microVM.")
    }

    @Test("what Swiftlet cannot do is refused before anything is built, and a later load still works",
          arguments: [
            (#"{"snapshot_path": "/s", "mem_backend": {"backend_type": "Uffd", "backend_path": "/uffd.sock"}}"#, "the Uffd memory backend is not supported"),
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "huge_pages": "2M"}"#, "huge_pages 2M is not supported"),
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "huge_pages": "Transparent"}"#, "huge_pages Transparent is not supported"),
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "network_overrides": [{"iface_id": "a", "host_dev_name": "t"}, {"iface_id": "a", "host_dev_name": "u"}]}"#,
             "names iface_id a twice"),
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "network_overrides": [{"iface_id": "a", "host_dev_name": ""}]}"#, "non-empty"),
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "vsock_override": {"uds_path": ""}}"#, "uds_path is empty"),
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "drive_overrides": [{"drive_id": "d", "path_on_host": "/a"}, {"drive_id": "d", "path_on_host": "/b"}]}"#,
             "names drive_id d twice"),
            (#"{"snapshot_path": "/s", "mem_file_path": "/m", "drive_overrides": [{"drive_id": "d", "path_on_host": ""}]}"#, "non-empty drive_id"),
          ])
    func unsupportedLoadsAreRefusedFirst(body: String, message: String) async throws {
        let api = APIHarness()
        let response = await api.request("PUT", "/snapshot/load", body)
        #expect(response.status == 400)
        let text = try #require(response.faultMessage)
        #expect(text.hasPrefix("Load snapshot error: ") && text.contains(message), "\(text)")
        #expect(api.backend.calls.isEmpty)
        #expect(await api.controller.fatalLoadFailure == nil)
        #expect(await api.request("PUT", "/snapshot/load", Self.load).status == 204)
    }

    @Test("a load that fails once begun is fatal: answered with the reason, then every request is refused")
    func failedLoadIsFatal() async {
        let api = APIHarness()
        api.backend.failNextCalls(with: "snapshot file /snap/state is corrupted: its CRC-32 is 0x1, the file says 0x2")
        let response = await api.request("PUT", "/snapshot/load", Self.load)
        #expect(response.status == 400)
        let message = "Load snapshot error: Failed to restore from snapshot: snapshot file /snap/state is corrupted: its CRC-32 is 0x1, the file says 0x2"
        #expect(response.faultMessage == message)
        #expect(await api.controller.fatalLoadFailure == message)
        api.backend.failNextCalls(with: nil)
        for (method, path, body) in [("GET", "/", ""), ("PUT", "/snapshot/load", Self.load), ("PUT", "/boot-source", #"{"kernel_image_path": "/k"}"#)] {
            let later = await api.request(method, path, body)
            #expect(later.status == 400)
            #expect(later.faultMessage?.contains("unusable after a failed snapshot load") == true, "\(later.text)")
        }
        #expect(api.backend.calls.count == 1)
    }
}
