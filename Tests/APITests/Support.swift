#if canImport(Glibc)
import Glibc
#endif
import Logging
import Synchronization
import SwiftletAPI

/// A controller over a fake machine, and small files to stand in for a kernel and disks.
struct APIHarness {
    let backend = FakeBackend()
    let controller: APIController
    let records = Records()
    let directory: String

    init() {
        let records = self.records
        var quiet = Logger(label: "api-test")
        quiet.logLevel = .critical
        controller = APIController(backend: backend, logger: quiet, onRequest: { record in records.append(record) })
        var template = Array("/tmp/swiftlet-api-test-XXXXXX".utf8CString)
        directory = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    /// A file in the test's directory holding `size` bytes.
    func file(_ name: String, size: Int = 4096) -> String {
        let path = directory + "/" + name
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        precondition(fd >= 0)
        ftruncate(fd, off_t(size))
        close(fd)
        return path
    }

    @discardableResult
    func request(_ method: String, _ path: String, _ body: String = "") async -> APIResponse {
        await controller.handle(method: method, path: path, body: Array(body.utf8))
    }

    /// PUTs a boot source with the given arguments (nil: Firecracker's default).
    func putKernel(bootArgs: String? = "console=ttyS0") async -> APIResponse {
        let kernel = file("vmlinux")
        let arguments = bootArgs.map { #", "boot_args": "\#($0)""# } ?? ""
        return await request("PUT", "/boot-source", #"{"kernel_image_path": "\#(kernel)"\#(arguments)}"#)
    }

    func start() async -> APIResponse {
        await request("PUT", "/actions", #"{"action_type": "InstanceStart"}"#)
    }

    /// The configuration the fake machine was started with.
    var startedConfiguration: MachineConfiguration? {
        for call in backend.calls { if case let .start(configuration) = call { return configuration } }
        return nil
    }
}

/// What the `onRequest` hook was told, in order.
final class Records: Sendable {
    private let list = Mutex<[APIRequestRecord]>([])
    func append(_ record: APIRequestRecord) { list.withLock { $0.append(record) } }
    var all: [APIRequestRecord] { list.withLock { $0 } }
}

extension APIResponse {
    func member(_ key: String) -> JSONValue? {
        guard case let .object(members)? = json else { return nil }
        return members[key]
    }
}

import Swiftlet

extension MachineConfiguration {
    var commandLine: String? {
        if case let .linux(linux) = payload { return linux.commandLine }
        return nil
    }
}
