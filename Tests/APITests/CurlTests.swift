import Foundation
import Logging
import Testing

@testable import SwiftletAPI

/// The real client Firecracker's documentation uses: `curl --unix-socket`. Skipped where curl is missing.
extension SocketTests {
@Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/curl")))
struct CurlTests {
    /// Runs curl and returns "<status>\n<body>".
    private func curl(_ socket: String, _ arguments: [String]) throws -> (status: Int, body: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        process.arguments = ["--silent", "--show-error", "--max-time", "20", "--unix-socket", socket, "--write-out", "\n%{http_code}"] + arguments
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var text = String(decoding: data, as: UTF8.self)
        let statusText = text.split(separator: "\n").last.map(String.init) ?? ""
        text.removeLast(min(text.count, statusText.count + 1))
        return (Int(statusText) ?? 0, text)
    }

    @Test func firecrackersGettingStartedSequence() throws {
        let api = APIHarness()
        var quiet = Logger(label: "api-test")
        quiet.logLevel = .critical
        let socket = api.directory + "/firecracker.socket"
        let server = APIServer(socketPath: socket, controller: api.controller, logger: quiet)
        try server.start()
        defer { server.stop() }

        let kernel = api.file("vmlinux"), rootfs = api.file("rootfs.ext4")
        let json = ["-H", "Accept: application/json", "-H", "Content-Type: application/json"]
        #expect(try curl(socket, ["-X", "PUT", "http://localhost/boot-source"] + json
            + ["-d", #"{"kernel_image_path": "\#(kernel)", "boot_args": "console=ttyS0 reboot=k panic=1"}"#]).status == 204)
        #expect(try curl(socket, ["-X", "PUT", "http://localhost/drives/rootfs"] + json
            + ["-d", #"{"drive_id": "rootfs", "path_on_host": "\#(rootfs)", "is_root_device": true, "is_read_only": false}"#]).status == 204)
        // Over 1 KiB: curl 7.x asks `Expect: 100-continue` first.
        let metadata = #"{"latest": {"blob": "\#(String(repeating: "m", count: 4000))"}}"#
        #expect(try curl(socket, ["-X", "PUT", "http://localhost/mmds"] + json + ["-d", metadata]).status == 204)
        #expect(try curl(socket, ["-X", "PUT", "http://localhost/actions"] + json + ["-d", #"{"action_type": "InstanceStart"}"#]).status == 204)
        let info = try curl(socket, ["http://localhost/"])
        #expect(info.status == 200)
        #expect(info.body.contains(#""state":"Running""#))
        let refused = try curl(socket, ["-X", "PUT", "http://localhost/machine-config"] + json + ["-d", #"{"vcpu_count": 2, "mem_size_mib": 256}"#])
        #expect(refused.status == 400)
        #expect(refused.body == #"{"fault_message":"The requested operation is not supported after starting the microVM."}"#)
    }
}
}
