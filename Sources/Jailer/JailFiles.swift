#if canImport(Glibc)
import Glibc
#endif

/// File-system steps of the jail, each a thin throwing wrapper naming the call, the path and errno.
enum JailFiles {
    static func check(_ result: Int32, _ operation: String, _ path: String) throws(JailError) {
        guard result == 0 else { throw .system(operation: operation, path: path, errno: result < 0 && result != -1 ? -result : errno) }
    }

    /// mkdir -p with `mode` for the directories it creates.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(JailError) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, mode) != 0, errno != EEXIST { throw .system(operation: "mkdir", path: current, errno: errno) }
        }
    }

    /// Copies `source` to `destination` (new file, `mode`), in 1 MiB pieces.
    static func copy(_ source: String, to destination: String, mode: mode_t) throws(JailError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .system(operation: "open", path: source, errno: errno) }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard output >= 0 else { throw .system(operation: "create", path: destination, errno: errno) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = read(input, &buffer, buffer.count)
            if count < 0 { if errno == EINTR { continue }; throw .system(operation: "read", path: source, errno: errno) }
            if count == 0 { break }
            var written = 0
            while written < count {
                let result = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, count - written) }
                if result < 0 { if errno == EINTR { continue }; throw .system(operation: "write", path: destination, errno: errno) }
                written += result
            }
        }
        try check(fchmod(output, mode), "chmod", destination)
    }

    /// A hard link when source and jail share a file system (no copy of a large disk), else a copy.
    static func linkOrCopy(_ source: String, to destination: String) throws(JailError) {
        if link(source, destination) == 0 { return }
        guard errno == EXDEV || errno == EPERM else { throw .system(operation: "link", path: source, errno: errno) }
        var info = stat()
        try check(stat(source, &info), "stat", source)
        try copy(source, to: destination, mode: info.st_mode & 0o777)
    }

    static func chown(_ path: String, uid: UInt32, gid: UInt32) throws(JailError) {
        try check(Glibc.chown(path, uid, gid), "chown", path)
    }

    /// rm -rf that never follows a symbolic link out of `path` (a jailed VMM could have planted one).
    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if info.st_mode & S_IFMT == S_IFDIR {
            if let directory = opendir(path) {
                var names: [String] = []
                while let entry = readdir(directory) {
                    let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                    if name != ".", name != ".." { names.append(name) }
                }
                closedir(directory)
                for name in names { removeTree(path + "/" + name) }
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }

    static func writeFile(_ path: String, _ text: String) throws(JailError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .system(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        guard write(fd, &bytes, bytes.count) == bytes.count else { throw .system(operation: "write \(text) to", path: path, errno: errno) }
    }

    /// A small text file (procfs: read until end of file), at most `limit` bytes.
    static func readFile(_ path: String, limit: Int = 1 << 20) throws(JailError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .system(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = read(fd, &chunk, chunk.count)
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { throw .system(operation: "read", path: path, errno: errno) }
            if count == 0 { break }
            bytes += chunk[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
