import Swiftlet

/// `--disk PATH[,readonly][,id=NAME]`: the command line's syntax for a `DiskConfiguration`. The library takes
/// plain values; the syntax lives here, beside the CLI.
extension DiskConfiguration {
    /// Parses the `--disk` syntax: `PATH[,readonly][,id=NAME]`.
    public init(parsing text: String) throws(ConfigurationError) {
        var parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard let first = parts.first, !first.isEmpty else { throw .invalidDisk(text, reason: "no image path") }
        parts.removeFirst()
        var readOnly = false
        var id: String?
        for option in parts {
            if option == "readonly" || option == "ro" {
                readOnly = true
            } else if option.hasPrefix("id=") {
                guard id == nil else { throw .invalidDisk(text, reason: "'id' is given more than once") }
                id = String(option.dropFirst(3))
            } else {
                throw .invalidDisk(text, reason: "unknown option '\(option)' (expected readonly or id=NAME)")
            }
        }
        self.init(path: first, readOnly: readOnly, id: id)
    }

}
