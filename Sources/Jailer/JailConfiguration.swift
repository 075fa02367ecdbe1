/// What `swiftlet jail` does, as a plain value checked before anything is created (Firecracker's jailer flags,
/// docs/security.md). Paths are host paths; inside the jail each file given appears at the root under its name.
public struct JailConfiguration: Sendable, Equatable {
    /// The VM's id: names the chroot directory and the cgroup. Letters, digits and '-', at most 64 (Firecracker's rule).
    public var id: String
    /// The VMM binary copied into the jail and run there (a static executable: the jail holds no libraries).
    public var execFile: String
    public var uid: UInt32
    public var gid: UInt32
    /// The jail is `<chrootBaseDirectory>/<exec file name>/<id>/root`, as Firecracker lays it out.
    public var chrootBaseDirectory: String = "/srv/jailer"
    /// A network namespace to join (e.g. /var/run/netns/vm1), so the VM's TAP lives there.
    public var networkNamespace: String?
    /// Detach from the terminal (new session, stdio to /dev/null) and supervise in the background.
    public var daemonize = false
    /// Run the VMM as PID 1 of a new PID namespace: it sees no other process.
    public var newPIDNamespace = false
    /// cgroup v2 files to write in the VM's cgroup (`memory.max=536870912`, `cpu.max=50000 100000`, `pids.max=64`).
    public var cgroups: [(file: String, value: String)] = []
    /// The cgroup the VM's cgroups go under, relative to the cgroup v2 mount.
    public var parentCgroup = "swiftlet"
    /// Resource limits: `fsize` (largest file the VMM may write, bytes) and `no-file` (open files).
    public var resourceLimits: [ResourceLimit] = [ResourceLimit(kind: .openFiles, value: 2048)]
    /// Host files placed at the jail's root (hard-linked, or copied across file systems) and given to uid:gid:
    /// the kernel, initrd, disks. A Swiftlet addition: Firecracker's users link them in by hand.
    public var files: [String] = []
    /// The VMM's arguments (everything after `--`).
    public var arguments: [String] = []
    /// Where the cgroup v2 hierarchy is mounted.
    public var cgroupRoot = "/sys/fs/cgroup"

    public init(id: String, execFile: String, uid: UInt32, gid: UInt32) {
        (self.id, self.execFile, self.uid, self.gid) = (id, execFile, uid, gid)
    }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.id == rhs.id && lhs.execFile == rhs.execFile && lhs.uid == rhs.uid && lhs.gid == rhs.gid
            && lhs.chrootBaseDirectory == rhs.chrootBaseDirectory && lhs.networkNamespace == rhs.networkNamespace
            && lhs.daemonize == rhs.daemonize && lhs.newPIDNamespace == rhs.newPIDNamespace
            && lhs.cgroups.map { "\($0.file)=\($0.value)" } == rhs.cgroups.map { "\($0.file)=\($0.value)" }
            && lhs.parentCgroup == rhs.parentCgroup && lhs.resourceLimits == rhs.resourceLimits
            && lhs.files == rhs.files && lhs.arguments == rhs.arguments && lhs.cgroupRoot == rhs.cgroupRoot
    }

    public struct ResourceLimit: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            case fileSize = "fsize"
            case openFiles = "no-file"
        }
        public var kind: Kind
        public var value: UInt64
        public init(kind: Kind, value: UInt64) { (self.kind, self.value) = (kind, value) }

        /// `fsize=N` or `no-file=N`, Firecracker's `--resource-limit` syntax.
        public init(parsing text: String) throws(JailError) {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let kind = Kind(rawValue: parts[0]), let value = UInt64(parts[1]) else {
                throw .invalid("--resource-limit \(text): use fsize=BYTES or no-file=COUNT")
            }
            (self.kind, self.value) = (kind, value)
        }
    }

    /// The jail's directories, from the base, the exec file's name and the id.
    public var jailDirectory: String { "\(chrootBaseDirectory)/\(execFileName)/\(id)" }
    public var rootDirectory: String { "\(jailDirectory)/root" }
    public var execFileName: String { String(execFile.split(separator: "/").last ?? "swiftlet") }
    public var cgroupDirectory: String { "\(cgroupRoot)/\(parentCgroup)/\(id)" }

    /// Every rule the jailer checks before it creates anything.
    public func validate() throws(JailError) {
        guard !id.isEmpty, id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw .invalid("--id \(id): use 1 to 64 letters, digits and '-'")
        }
        guard chrootBaseDirectory.hasPrefix("/") else { throw .invalid("--chroot-base-dir must be an absolute path") }
        for (file, value) in cgroups {
            guard !file.isEmpty, !file.contains("/"), !file.hasPrefix("."), file.contains("."), !value.contains("\n") else {
                throw .invalid("--cgroup \(file)=\(value): use a cgroup v2 file name such as memory.max=VALUE")
            }
        }
        guard !parentCgroup.split(separator: "/").contains(".."), !parentCgroup.isEmpty else {
            throw .invalid("--parent-cgroup \(parentCgroup): a relative cgroup path without '..'")
        }
        var names = Set([execFileName, "dev", "run", "proc", "old_root"])
        for file in files {
            let name = String(file.split(separator: "/").last ?? "")
            guard !name.isEmpty, name != ".", name != ".." else { throw .invalid("--file \(file): not a file name") }
            guard names.insert(name).inserted else { throw .invalid("--file \(file): a file named \(name) is already in the jail") }
        }
    }
}
