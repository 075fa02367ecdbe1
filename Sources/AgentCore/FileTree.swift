import AgentProtocol
#if canImport(Glibc)
import Glibc
#endif

/// A copy that failed: the path it was at and why. `errno` is 0 for a failure that is not a system call's.
public struct CopyFailure: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var errno: Int32

    public init(_ message: String, errno: Int32 = 0) { (self.message, self.errno) = (message, errno) }
    init(_ error: SystemCallError) { self.init(error.description, errno: error.errno) }

    public var description: String { message }
    public var agentError: AgentError { AgentError(code: .copyFailed, errno: errno, message: message) }
}

/// Where a copied tree named `name` goes when sent to `destination` (docker cp's rule): into an existing
/// directory under its own name; otherwise `destination` itself, whose parent directory must exist.
public func copyTarget(destination: String, name: String) throws(CopyFailure) -> String {
    guard !destination.isEmpty else { throw CopyFailure("copy: empty destination path", errno: ENOENT) }
    var status = stat()
    if stat(destination, &status) == 0 {
        guard status.st_mode & S_IFMT == S_IFDIR else { return destination }
        guard isPlainName(name) else { throw CopyFailure("copy: invalid name '\(name)'", errno: EINVAL) }
        return destination.hasSuffix("/") ? destination + name : destination + "/" + name
    }
    let error = errno
    guard error == ENOENT else { throw CopyFailure(SystemCallError(destination, errno: error)) }
    if destination.hasSuffix("/") {
        throw CopyFailure("\(destination): no such directory", errno: ENOENT)
    }
    let parent = parentDirectory(of: destination)
    if stat(parent, &status) != 0 {
        throw CopyFailure("\(parent): no such directory (the destination's parent must exist)", errno: errno)
    }
    guard status.st_mode & S_IFMT == S_IFDIR else { throw CopyFailure("\(parent): not a directory", errno: ENOTDIR) }
    return destination
}

/// The last path component, as `basename` gives it ("/a/b/" → "b"; "/" → "/").
public func lastComponent(of path: String) -> String {
    let parts = path.split(separator: "/", omittingEmptySubsequences: true)
    return parts.last.map(String.init) ?? "/"
}

func parentDirectory(of path: String) -> String {
    let trimmed = path.hasSuffix("/") ? String(path.dropLast()) : path
    guard let slash = trimmed.lastIndex(of: "/") else { return "." }
    return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
}

func isPlainName(_ name: String) -> Bool {
    !name.isEmpty && name != "." && name != ".." && !name.contains("/")
}

/// Sends the tree at `root` as entry and data frames, then copyEnd. Regular files are read and sent in chunks
/// (never whole); sockets, FIFOs and device nodes are skipped. `send` may throw to stop (the peer reported an
/// error, the connection failed).
public struct TreeSender {
    public var send: (AgentMessage) throws -> Void

    public init(send: @escaping (AgentMessage) throws -> Void) { self.send = send }

    public func sendTree(at root: String) throws {
        try sendEntry(path: root, relative: "")
        try send(.copyEnd)
    }

    private func sendEntry(path: String, relative: String) throws {
        var status = stat()
        guard lstat(path, &status) == 0 else { throw CopyFailure(SystemCallError(path)) }
        let mode = UInt32(status.st_mode) & 0o7777
        let time = Int64(status.st_mtim.tv_sec)
        switch status.st_mode & S_IFMT {
        case S_IFREG:
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw CopyFailure(SystemCallError(path)) }
            defer { Descriptor.close(fd) }
            let size = UInt64(status.st_size)
            try send(.entry(CopyEntry(path: relative, kind: .file, mode: mode, size: size, modificationTime: time)))
            var sent: UInt64 = 0
            while sent < size {
                let bytes: [UInt8]?
                do { bytes = try Descriptor.read(fd, maximum: Int(min(UInt64(AgentProtocol.chunkSize), size - sent))) } catch {
                    throw CopyFailure(SystemCallError("read \(path)", errno: error.errno))
                }
                guard let bytes, !bytes.isEmpty else { throw CopyFailure("\(path): the file shrank while it was copied", errno: EIO) }
                sent += UInt64(bytes.count)
                try send(.data(bytes))
            }
        case S_IFDIR:
            try send(.entry(CopyEntry(path: relative, kind: .directory, mode: mode, modificationTime: time)))
            let names: [String]
            do { names = try DirectoryListing.names(path) } catch { throw CopyFailure(error) }
            for name in names {
                try sendEntry(path: path == "/" ? "/" + name : path + "/" + name,
                              relative: relative.isEmpty ? name : relative + "/" + name)
            }
        case S_IFLNK:
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(path, &buffer, Int(PATH_MAX))
            guard count >= 0 else { throw CopyFailure(SystemCallError("readlink \(path)")) }
            let target = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            try send(.entry(CopyEntry(path: relative, kind: .symlink, mode: mode, modificationTime: time, linkTarget: target)))
        default:
            // Device nodes, FIFOs and sockets are not file contents; tar would warn, a copy leaves them out.
            guard relative.isEmpty else { return }
            throw CopyFailure("\(path): not a regular file, directory or symbolic link", errno: EINVAL)
        }
    }
}

/// Writes a tree received as entry and data frames under `target` (which the first, root entry becomes).
/// Every entry's parent must be a directory this copy created: a sent symbolic link can never redirect later
/// entries outside the tree. Directories are made writable while filled and get their modes at the end.
public final class TreeReceiver {
    private let target: String
    private var directories: Set<String> = []
    private var directoryModes: [(path: String, mode: UInt32, time: Int64)] = []
    private var sawRoot = false
    private var file: (fd: Int32, path: String, entry: CopyEntry, written: UInt64)?
    /// Bytes of file data written so far.
    public private(set) var bytesWritten: UInt64 = 0

    public init(target: String) { self.target = target }

    deinit { if let file { Descriptor.close(file.fd) } }

    public func receive(_ entry: CopyEntry) throws(CopyFailure) {
        try finishFile()
        let path: String
        if entry.path.isEmpty {
            guard !sawRoot else { throw CopyFailure("copy: a second root entry", errno: EINVAL) }
            path = target
        } else {
            guard sawRoot else { throw CopyFailure("copy: an entry before the root entry", errno: EINVAL) }
            let components = entry.path.split(separator: "/", omittingEmptySubsequences: false)
            guard components.allSatisfy({ isPlainName(String($0)) }) else {
                throw CopyFailure("copy: invalid entry path '\(entry.path)'", errno: EINVAL)
            }
            let parent = components.dropLast().joined(separator: "/")
            guard directories.contains(parent) else {
                throw CopyFailure("copy: entry '\(entry.path)' is not inside a directory of the copy", errno: EINVAL)
            }
            path = target + "/" + entry.path
        }
        sawRoot = true
        switch entry.kind {
        case .file:
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode_t(entry.mode | 0o200))
            guard fd >= 0 else { throw CopyFailure(SystemCallError(path)) }
            file = (fd, path, entry, 0)
        case .directory:
            if mkdir(path, 0o700) != 0 {
                let error = errno
                var status = stat()
                guard error == EEXIST, lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
                    throw CopyFailure(SystemCallError("mkdir \(path)", errno: error))
                }
                // An existing directory is filled; it must be writable while that happens.
                _ = chmod(path, mode_t(status.st_mode & 0o7777) | 0o700)
            }
            directories.insert(entry.path)
            directoryModes.append((path, entry.mode, entry.modificationTime))
        case .symlink:
            if symlink(entry.linkTarget, path) != 0 {
                guard errno == EEXIST, unlink(path) == 0, symlink(entry.linkTarget, path) == 0 else {
                    throw CopyFailure(SystemCallError("symlink \(path)"))
                }
            }
        }
    }

    public func receive(data: [UInt8]) throws(CopyFailure) {
        guard var current = file else { throw CopyFailure("copy: data outside a file entry", errno: EINVAL) }
        guard current.written + UInt64(data.count) <= current.entry.size else {
            throw CopyFailure("copy: more data than the size of '\(current.path)'", errno: EINVAL)
        }
        do { try Descriptor.writeAll(current.fd, data[...]) } catch {
            throw CopyFailure(SystemCallError("write \(current.path)", errno: error.errno))
        }
        current.written += UInt64(data.count)
        bytesWritten += UInt64(data.count)
        file = current
    }

    /// The tree is complete: the last file closed (its close can report ENOSPC/EIO too), directories get their
    /// modes and times, deepest first.
    public func finish() throws(CopyFailure) {
        try finishFile()
        guard sawRoot else { throw CopyFailure("copy: no entries", errno: EINVAL) }
        for directory in directoryModes.reversed() {
            _ = chmod(directory.path, mode_t(directory.mode))
            setTime(directory.path, directory.time)
        }
    }

    private func finishFile() throws(CopyFailure) {
        guard let current = file else { return }
        file = nil
        guard current.written == current.entry.size else {
            Descriptor.close(current.fd)
            throw CopyFailure("copy: '\(current.path)' ended after \(current.written) of \(current.entry.size) bytes", errno: EIO)
        }
        _ = fchmod(current.fd, mode_t(current.entry.mode))
        if fsyncDataOnClose, fdatasync(current.fd) != 0 {
            let error = errno
            Descriptor.close(current.fd)
            throw CopyFailure(SystemCallError("write \(current.path)", errno: error))
        }
        guard close(current.fd) == 0 else { throw CopyFailure(SystemCallError("close \(current.path)")) }
        setTime(current.path, current.entry.modificationTime)
    }

    /// Whether each file is flushed before it counts as copied (off: a copy reports what the page cache took,
    /// like cp; ENOSPC still shows at write time on tmpfs and ext4 with delayed allocation reserved).
    public var fsyncDataOnClose = false

    private func setTime(_ path: String, _ seconds: Int64) {
        guard seconds != 0 else { return }
        var times = [timespec(tv_sec: Int(seconds), tv_nsec: 0), timespec(tv_sec: Int(seconds), tv_nsec: 0)]
        _ = utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW)
    }

    /// Closes an unfinished file (the copy failed).
    public func abandon() {
        if let file { Descriptor.close(file.fd) }
        file = nil
    }
}
