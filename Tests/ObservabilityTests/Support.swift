import Foundation
import Testing

@testable import Swiftlet

/// A fresh directory under /tmp for one test's files, removed with `remove()`.
struct TemporaryDirectory {
    let path: String

    init() {
        path = NSTemporaryDirectory() + "swiftlet-observability-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The lines of a text file (without their newlines).
func lines(of path: String) throws -> [String] {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    #expect(text.isEmpty || text.hasSuffix("\n"), "every line ends with a newline")
    return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
}

/// A metrics line parsed as JSON: top-level key → value.
func parse(_ line: String) throws -> [String: Any] {
    let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
    return try #require(object as? [String: Any])
}

/// `json[group][field]` as an integer.
func value(_ json: [String: Any], _ group: String, _ field: String) -> Int? {
    (json[group] as? [String: Any])?[field] as? Int
}

func fields(_ json: [String: Any], _ group: String) -> Set<String> {
    Set((json[group] as? [String: Any])?.keys.map { $0 } ?? [])
}
