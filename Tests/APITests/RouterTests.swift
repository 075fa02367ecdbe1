import Testing

@testable import SwiftletAPI

/// Routing and body parsing: what Firecracker's `ParsedRequest::try_from` accepts and the exact faults it
/// gives for what it refuses.
@Suite struct RouterTests {
    private func fault(_ method: String, _ path: String, _ body: String = "") -> String? {
        do {
            _ = try APIRouter.route(method: method, path: path, body: Array(body.utf8))
            return nil
        } catch {
            return error.message
        }
    }

    @Test func knownGETsNeedNoBody() throws {
        #expect(try APIRouter.route(method: "GET", path: "/", body: []) == .getInstanceInfo)
        #expect(try APIRouter.route(method: "GET", path: "/version", body: []) == .getVersion)
        #expect(try APIRouter.route(method: "GET", path: "/machine-config", body: []) == .getMachineConfig)
        #expect(try APIRouter.route(method: "GET", path: "/vm/config", body: []) == .getFullConfiguration)
        #expect(try APIRouter.route(method: "GET", path: "/mmds", body: []) == .getMMDS)
        // A query string or trailing slash does not change the resource.
        #expect(try APIRouter.route(method: "GET", path: "/machine-config/", body: []) == .getMachineConfig)
        #expect(try APIRouter.route(method: "GET", path: "/mmds?x=1", body: []) == .getMMDS)
    }

    @Test func unknownPathOrMethodNamesBoth() {
        #expect(fault("GET", "/nothing") == "Invalid request method and/or path: GET nothing.")
        #expect(fault("GET", "/vm") == "Invalid request method and/or path: GET vm.")
        #expect(fault("DELETE", "/drives/root") == "Invalid request method and/or path: DELETE drives.")
        #expect(fault("POST", "/actions", "{}") == "Invalid request method and/or path: POST actions.")
        #expect(fault("PUT", "/nothing", "{}") == "Invalid request method and/or path: PUT nothing.")
    }

    @Test func bodyRulesPerMethod() {
        #expect(fault("GET", "/", "{}") == "GET request cannot have a body.")
        #expect(fault("PUT", "/boot-source") == "Empty PUT request.")
        #expect(fault("PATCH", "/vm") == "Empty PATCH request.")
        #expect(fault("PATCH", "/machine-config", "{}") == "Empty PATCH request.")
    }

    @Test func unknownFieldIsRefusedByName() throws {
        let message = try #require(fault("PUT", "/boot-source", #"{"kernel_image_path": "/k", "bootargs": "x"}"#))
        #expect(message.hasPrefix("An error occurred when deserializing the json body of a request: unknown field `bootargs`"))
        // Nested objects are as strict: a typo inside a token bucket names the full path.
        let nested = try #require(fault("PUT", "/drives/root", #"{"drive_id": "root", "path_on_host": "/d", "is_root_device": false, "rate_limiter": {"ops": {"size": 1, "refill_time": 1, "burst": 2}}}"#))
        #expect(nested.contains("unknown field `rate_limiter.ops.burst`"))
    }

    @Test func wrongTypesMissingFieldsAndRangesNameTheField() throws {
        #expect(try #require(fault("PUT", "/machine-config", #"{"vcpu_count": "two", "mem_size_mib": 128}"#)).contains("`vcpu_count`"))
        #expect(try #require(fault("PUT", "/machine-config", #"{"vcpu_count": 300, "mem_size_mib": 128}"#)).contains("`vcpu_count`"))
        #expect(try #require(fault("PUT", "/machine-config", #"{"vcpu_count": 2}"#)).contains("missing field `mem_size_mib`"))
        #expect(try #require(fault("PUT", "/vsock", #"{"guest_cid": -3, "uds_path": "/v"}"#)).contains("`guest_cid`"))
        #expect(try #require(fault("PUT", "/actions", #"{"action_type": "Reboot"}"#)).contains("unknown variant `Reboot`"))
        #expect(try #require(fault("PUT", "/network-interfaces/eth0", #"{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "nope"}"#)).contains("`guest_mac`"))
        #expect(try #require(fault("PUT", "/logger", #"{"level": "Loud"}"#)).contains("`level`"))
        #expect(try #require(fault("PUT", "/boot-source", "{not json")).hasPrefix("An error occurred when deserializing the json body of a request:"))
        #expect(try #require(fault("PUT", "/boot-source", "[1]")).contains("expected an object"))
    }

    @Test func pathIDMustBePresentValidAndMatchTheBody() {
        let drive = #"{"drive_id": "root", "path_on_host": "/d", "is_root_device": true}"#
        #expect(fault("PUT", "/drives", drive) == "The ID cannot be empty.")
        #expect(fault("PUT", "/drives/ro-ot", drive) == "API Resource IDs can only contain alphanumeric characters and underscores.")
        #expect(fault("PUT", "/drives/other", drive) == "The id from the path does not match the id from the body!")
        #expect(fault("PATCH", "/drives/other", #"{"drive_id": "root"}"#) == "The id from the path does not match the id from the body!")
        #expect(fault("PUT", "/network-interfaces/eth1", #"{"iface_id": "eth0", "host_dev_name": "tap0"}"#)
            == "The id from the path [eth1] does not match the id from the body [eth0]!")
        #expect(fault("PATCH", "/network-interfaces/eth1", #"{"iface_id": "eth0"}"#)
            == "The id from the path [eth1] does not match the id from the body [eth0]!")
    }

    @Test func everyBodyBecomesItsAction() throws {
        #expect(try APIRouter.route(method: "PUT", path: "/actions", body: Array(#"{"action_type": "SendCtrlAltDel"}"#.utf8)) == .sendCtrlAltDel)
        #expect(try APIRouter.route(method: "PUT", path: "/actions", body: Array(#"{"action_type": "FlushMetrics"}"#.utf8)) == .flushMetrics)
        #expect(try APIRouter.route(method: "PATCH", path: "/vm", body: Array(#"{"state": "Paused"}"#.utf8)) == .pause)
        #expect(try APIRouter.route(method: "PATCH", path: "/vm", body: Array(#"{"state": "Resumed"}"#.utf8)) == .resume)
        #expect(try APIRouter.route(method: "PATCH", path: "/machine-config", body: Array(#"{"vcpu_count": 2}"#.utf8))
            == .patchMachineConfig(PartialMachineConfig(vcpuCount: 2)))
        #expect(try APIRouter.route(method: "PUT", path: "/mmds", body: Array(#"{"a": [1, 2.5, null, "x"]}"#.utf8))
            == .putMMDS(.object(["a": .array([.int(1), .double(2.5), .null, .string("x")])])))
        #expect(try APIRouter.route(method: "PUT", path: "/mmds/config", body: Array(#"{"network_interfaces": ["eth0"], "version": "V2"}"#.utf8))
            == .putMMDSConfig(MmdsConfig(version: .v2, networkInterfaces: ["eth0"])))
        #expect(fault("PUT", "/mmds/other", "{}") == "Unrecognized PUT request path `other`.")
        let drive = try APIRouter.route(method: "PUT", path: "/drives/root", body: Array(
            #"{"drive_id": "root", "path_on_host": "/d", "is_root_device": true, "cache_type": "Writeback", "io_engine": "Async", "rate_limiter": {"bandwidth": {"size": 100, "refill_time": 10, "one_time_burst": 5}}}"#.utf8))
        #expect(drive == .putDrive(Drive(driveID: "root", pathOnHost: "/d", isRootDevice: true, cacheType: .writeback, ioEngine: .async,
                                         rateLimiter: RateLimiter(bandwidth: TokenBucket(size: 100, oneTimeBurst: 5, refillTime: 10)))))
    }

    @Test func resourcesSwiftletLacksSaySo() {
        for (method, path) in [("PUT", "/balloon"), ("PATCH", "/balloon/statistics"),
                               ("PUT", "/cpu-config"), ("PUT", "/hotplug/memory"), ("PUT", "/pmem/p0"), ("PUT", "/serial")] {
            #expect(fault(method, path, "{}") == "\(method) \(path) is not implemented in this version of Swiftlet.")
        }
        #expect(fault("GET", "/balloon") == "GET /balloon is not implemented in this version of Swiftlet.")
    }
}
