import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftletAPI
import SwiftletSandbox

/// `swiftlet inspect NAME`: the VM's state and configuration as JSON: what `ps --json` says of it, plus (while it
/// runs) the API's own `GET /` and `GET /vm/config`, plus the arguments it was started with.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Show a named VM's state and configuration as JSON.")
    @Argument(help: "The VM's name.") var name: String

    func run() throws {
        let vm = try NamedVM(name)
        let status = SandboxStatus.of(vm.paths)
        var object: [String: JSONValue] = [:]
        let encoded = try JSONEncoder().encode(status)
        if case let .object(fields) = try JSONDecoder().decode(JSONValue.self, from: encoded) { object = fields }
        object["arguments"] = .array((vm.paths.readRecord()?.arguments ?? []).map { .string($0) })
        object["consoleLog"] = .string(vm.paths.consoleLog)
        object["vmmLog"] = .string(vm.paths.vmmLog)
        if status.state == .running || status.state == .paused {
            for (key, path) in [("instance", "/"), ("config", "/vm/config")] {
                if let response = try? APIClient.request(socket: vm.paths.apiSocket, method: "GET", path: path, timeout: 2),
                   response.status == 200, let value = try? JSONDecoder().decode(JSONValue.self, from: Data(response.body.utf8)) {
                    object[key] = value
                }
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(JSONValue.object(object)), as: UTF8.self))
    }
}
