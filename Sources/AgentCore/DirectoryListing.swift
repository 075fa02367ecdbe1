#if canImport(Glibc)
import Glibc
#endif

/// The names in a directory (without `.` and `..`), sorted so copies are reproducible.
///
/// AUDITED UNSAFE FILE: readdir's entry is read in place for its name only, before the next readdir call
/// (which may reuse that memory); the DIR stream is closed on every path.
enum DirectoryListing {
    static func names(_ path: String) throws(SystemCallError) -> [String] {
        guard let stream = opendir(path) else { throw SystemCallError("open directory \(path)") }
        defer { closedir(stream) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(stream) else {
                if errno != 0 { throw SystemCallError("read directory \(path)") }
                break
            }
            // SAFETY: d_name is a NUL-terminated array inside the entry, valid until the next readdir.
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: MemoryLayout.size(ofValue: entry.pointee.d_name)) {
                    String(cString: $0)
                }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
