import Logging
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Snapshots named by two file paths, as Firecracker's API names them (`snapshot_path`, `mem_file_path`), on top of
/// the directory form (`saveSnapshot(to:)`, `Machine(restoringFrom:)`), which fixes the names `state` and `memory`.
///
/// When the two paths are a directory's `state` and `memory` files, these are the directory form exactly. Otherwise
/// a save writes into a staging directory beside the memory file and renames both files into place (memory first,
/// as the directory form does), and a restore reads through a staging directory of two symbolic links. Errors name
/// the caller's paths, never the staging ones. (The library could take two paths itself; docs/api.md says so.)
extension Machine {
    /// The configuration the machine saved in `directory` was built from (vCPUs, memory, devices), after every
    /// check a restore makes of the files, without building anything. For tools that must know what a snapshot
    /// holds before restoring it (`swiftlet restore -d` asks whether it has a vsock device).
    public static func configuration(ofSnapshot directory: String) throws(SnapshotError) -> MachineConfiguration {
        try RestoredSnapshot.load(directory: directory).configuration
    }

    /// Saves the paused machine: the state file at `statePath`, guest RAM (sparse) at `memoryPath`. Both parent
    /// directories must exist. Each file is written under a temporary name and renamed into place, so a file a
    /// running restore maps is replaced, never written into. See `saveSnapshot(to:)`.
    @discardableResult
    public func saveSnapshot(statePath: String, memoryPath: String, kind: SnapshotKind = .full) throws(SnapshotError) -> SnapshotSummary {
        let paths = try SnapshotFilePaths(statePath: statePath, memoryPath: memoryPath)
        if let directory = paths.directory { return try saveSnapshot(to: directory, kind: kind) }
        let current = state
        guard current == .paused else { throw .notPaused(current) }

        // Staged beside the memory file, so that the large file is renamed into place, never copied.
        let staging = try SnapshotFilePaths.makeDirectory(template: SnapshotFilePaths.parent(of: paths.memoryPath) + "/.swiftlet-snapshot-XXXXXX",
                                                          naming: paths.memoryPath)
        let stagedState = staging + "/" + Self.snapshotStateFile, stagedMemory = staging + "/" + Self.snapshotMemoryFile
        defer {
            unlink(stagedState)
            unlink(stagedMemory)
            rmdir(staging)
        }
        let summary: SnapshotSummary
        do throws(SnapshotError) { summary = try saveSnapshot(to: staging, kind: kind) } catch { throw paths.naming(error, staging: staging) }
        guard rename(stagedMemory, paths.memoryPath) == 0 else {
            throw .writeFailed(path: paths.memoryPath, reason: "rename: \(Errno(rawValue: errno))")
        }
        if rename(stagedState, paths.statePath) != 0 {
            let error = Errno(rawValue: errno)
            // Another file system than the memory file's: the state file is small, so it is written there anew.
            guard error == .improperLink else { throw .writeFailed(path: paths.statePath, reason: "rename: \(error)") }
            let bytes: [UInt8]
            do throws(SnapshotError) { bytes = try SnapshotFile.read(path: stagedState).encoded() } catch {
                throw paths.naming(error, staging: staging)
            }
            try SnapshotFile.writeAtomically(bytes, to: paths.statePath)
        }
        return summary
    }

    /// Builds a machine from the state file at `statePath` and the memory file at `memoryPath` (Firecracker's
    /// `snapshot_path` and `mem_backend.backend_path`). Everything `Machine(restoringFrom:)` checks is checked, and
    /// errors name these two paths. The new machine is `.stopped` and has never run: `start()` it.
    public convenience init(restoringFromState statePath: String, memoryPath: String, timeline: BootTimeline = BootTimeline(),
                            logger: Logger = Logger(label: "swiftlet"), consoleOutput: Int32 = STDOUT_FILENO,
                            metrics: MetricsRegistry = .shared, overrides: SnapshotOverrides = SnapshotOverrides()) throws(SnapshotError) {
        let paths = try SnapshotFilePaths(statePath: statePath, memoryPath: memoryPath)
        var staging: String?
        if paths.directory == nil {
            // Two symbolic links under the names the directory form reads; the memory file is mapped through its
            // link, so the links can go as soon as the machine is built.
            let directory = try SnapshotFilePaths.makeDirectory(template: SnapshotFilePaths.temporaryDirectory + "/swiftlet-restore-XXXXXX",
                                                                naming: paths.statePath)
            staging = directory
            for (target, name) in [(paths.statePath, Self.snapshotStateFile), (paths.memoryPath, Self.snapshotMemoryFile)] {
                guard symlink(SnapshotFilePaths.absolute(target), directory + "/" + name) == 0 else {
                    let error = Errno(rawValue: errno)
                    SnapshotFilePaths.removeLinks(in: directory)
                    throw .unreadable(path: target, reason: "cannot link it into \(directory): \(error)")
                }
            }
        }
        defer { if let staging { SnapshotFilePaths.removeLinks(in: staging) } }
        let directory = paths.directory ?? staging!

        do throws(SnapshotError) {
            try self.init(restoringFrom: directory, timeline: timeline, logger: logger, consoleOutput: consoleOutput, metrics: metrics,
                          overrides: overrides)
        } catch {
            throw staging.map { paths.naming(error, staging: $0) } ?? error
        }
    }
}

/// The two paths of a snapshot, checked, and whether they are simply a directory's `state` and `memory`.
struct SnapshotFilePaths {
    let statePath: String
    let memoryPath: String
    /// Set when the paths are `<directory>/state` and `<directory>/memory`.
    let directory: String?

    init(statePath: String, memoryPath: String) throws(SnapshotError) {
        for path in [statePath, memoryPath] {
            guard !path.isEmpty, !path.utf8.contains(0) else { throw .unreadable(path: path, reason: "not a usable file path") }
        }
        guard Self.absolute(statePath) != Self.absolute(memoryPath) else {
            throw .writeFailed(path: statePath, reason: "the state file and the memory file must be two different files")
        }
        self.statePath = statePath
        self.memoryPath = memoryPath
        let parent = Self.parent(of: statePath)
        let isDirectoryPair = Self.lastComponent(of: statePath) == Machine.snapshotStateFile
            && Self.parent(of: memoryPath) == parent && Self.lastComponent(of: memoryPath) == Machine.snapshotMemoryFile
        directory = isDirectoryPair ? parent : nil
    }

    /// The same error, naming the caller's files instead of the staging directory's.
    func naming(_ error: SnapshotError, staging: String) -> SnapshotError {
        let state = staging + "/" + Machine.snapshotStateFile, memory = staging + "/" + Machine.snapshotMemoryFile
        func name(_ path: String) -> String {
            if path == state || path == state + ".partial" { return statePath }
            if path == memory || path == memory + ".partial" { return memoryPath }
            return path
        }
        func text(_ message: String) -> String {
            message.replacing(state, with: statePath).replacing(memory, with: memoryPath).replacing(staging, with: Self.parent(of: statePath))
        }
        switch error {
        case let .unreadable(path, reason): return .unreadable(path: name(path), reason: text(reason))
        case let .notASnapshot(path, reason): return .notASnapshot(path: name(path), reason: reason)
        case let .truncated(path, actual, expected): return .truncated(path: name(path), actual: actual, expected: expected)
        case let .newerVersion(path, version, supported): return .newerVersion(path: name(path), version: version, supported: supported)
        case let .checksumMismatch(path, stored, computed): return .checksumMismatch(path: name(path), stored: stored, computed: computed)
        case let .malformed(path, reason): return .malformed(path: name(path), reason: reason)
        case let .missingSection(path, section): return .missingSection(path: name(path), name: section)
        case let .invalidSection(path, section, reason): return .invalidSection(path: name(path), name: section, reason: text(reason))
        case let .writeFailed(path, reason): return .writeFailed(path: name(path), reason: reason)
        case let .memory(.file(path, operation, errno)): return .memory(.file(path: name(path), operation: operation, errno: errno))
        case let .memory(.fileSizeMismatch(path, expected, actual)):
            return .memory(.fileSizeMismatch(path: name(path), expected: expected, actual: actual))
        case let .unsupported(what): return .unsupported(text(what))
        case let .machine(detail): return .machine(text(detail))
        case .notPaused, .memory, .kvm: return error
        }
    }

    static var temporaryDirectory: String {
        if let value = getenv("TMPDIR"), value.pointee != 0 { return String(cString: value) }
        return "/tmp"
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let parent = String(path[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    static func lastComponent(of path: String) -> String {
        path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
    }

    /// `path` made absolute against the working directory (a symbolic link's target is read relative to the link).
    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let directory = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return (directory == "/" ? "" : directory) + "/" + path
    }

    /// A new private directory from a mkdtemp template; a failure names `path`, the file it was for.
    static func makeDirectory(template: String, naming path: String) throws(SnapshotError) -> String {
        var bytes = Array(template.utf8CString)
        let made = bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
        guard made else {
            throw .writeFailed(path: path, reason: "cannot create a staging directory \(parent(of: template)): \(Errno(rawValue: errno))")
        }
        return String(decoding: bytes.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func removeLinks(in directory: String) {
        unlink(directory + "/" + Machine.snapshotStateFile)
        unlink(directory + "/" + Machine.snapshotMemoryFile)
        rmdir(directory)
    }
}
