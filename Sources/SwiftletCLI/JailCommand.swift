import ArgumentParser
import Jailer
#if canImport(Glibc)
import Glibc
#endif

/// `swiftlet jail`: Firecracker's jailer for Swiftlet, with its flags (docs/security.md).
struct JailCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jail",
        abstract: "Run a VMM in a chroot of its own, in new namespaces, under a cgroup, as an unprivileged user.",
        discussion: """
            As Firecracker's jailer: the jail is <chroot-base-dir>/<exec file name>/<id>/root, holding a copy of \
            --exec-file, each --file (hard-linked or copied, given to --uid/--gid), /dev/kvm, /dev/net/tun and \
            /run. The VMM runs there as PID 1 of a new PID namespace with --new-pid-ns, in the network namespace \
            --netns, in the cgroup <parent-cgroup>/<id> with each --cgroup limit, with its privileges dropped to \
            --uid/--gid, with everything after -- as its arguments (paths as seen inside: /vmlinux, /run/api.sock). \
            The jailer stays outside as the VMM's parent, passes on SIGINT/SIGTERM/SIGHUP, removes the jail and \
            the cgroup when the VMM ends, and exits with its status. Must run as root.
            Example: swiftlet jail --id vm1 --exec-file .build/release/swiftlet --uid 1000 --gid 1000 \
            --file guest.bin --cgroup memory.max=268435456 -- run --raw /guest.bin
            """
    )

    @Option(help: ArgumentHelp("The VM's id (letters, digits, '-'; at most 64): names its jail and cgroup.", valueName: "id"))
    var id: String

    @Option(name: .customLong("exec-file"), help: ArgumentHelp("The VMM binary to run in the jail (a static executable).", valueName: "path"))
    var execFile: String?

    @Option(help: "The user id the VMM runs as.") var uid: UInt32
    @Option(help: "The group id the VMM runs as.") var gid: UInt32

    @Option(name: .customLong("chroot-base-dir"), help: ArgumentHelp("Where jails are made.", valueName: "path"))
    var chrootBaseDirectory = "/srv/jailer"

    @Option(help: ArgumentHelp("A network namespace to join (e.g. /var/run/netns/vm1).", valueName: "path"))
    var netns: String?

    @Flag(help: "Detach: new session, stdio to /dev/null; the jailer supervises in the background.")
    var daemonize = false

    @Flag(name: .customLong("new-pid-ns"), help: "Run the VMM as PID 1 of a new PID namespace.")
    var newPIDNamespace = false

    @Option(help: ArgumentHelp("A cgroup v2 limit, FILE=VALUE (memory.max=268435456, cpu.max=\"50000 100000\", pids.max=64); repeatable.", valueName: "file=value"))
    var cgroup: [String] = []

    @Option(name: .customLong("cgroup-version"), help: ArgumentHelp("Only 2 (cgroup v1 is not supported).", valueName: "2"))
    var cgroupVersion = 2

    @Option(name: .customLong("parent-cgroup"), help: ArgumentHelp("The cgroup the VM's cgroup goes under.", valueName: "path"))
    var parentCgroup = "swiftlet"

    @Option(name: .customLong("resource-limit"), help: ArgumentHelp("fsize=BYTES or no-file=COUNT (default no-file=2048); repeatable.", valueName: "limit"))
    var resourceLimit: [String] = []

    @Option(help: ArgumentHelp("A host file to put at the jail's root (kernel, initrd, disk); repeatable.", valueName: "path"))
    var file: [String] = []

    @Argument(parsing: .postTerminator, help: "The VMM's arguments, after --.")
    var arguments: [String] = []

    func validate() throws {
        guard cgroupVersion == 2 else { throw ValidationError("--cgroup-version \(cgroupVersion): only cgroup v2 is supported") }
        do { _ = try makeConfiguration().validate() } catch { throw ValidationError("\(error)") }
    }

    func makeConfiguration() throws(JailError) -> JailConfiguration {
        var configuration = JailConfiguration(id: id, execFile: execFile ?? Self.ownExecutable, uid: uid, gid: gid)
        configuration.chrootBaseDirectory = chrootBaseDirectory
        configuration.networkNamespace = netns
        configuration.daemonize = daemonize
        configuration.newPIDNamespace = newPIDNamespace
        configuration.parentCgroup = parentCgroup
        configuration.files = file
        configuration.arguments = arguments
        configuration.cgroups = try cgroup.map { text throws(JailError) in
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw .invalid("--cgroup \(text): use FILE=VALUE") }
            return (parts[0], parts[1])
        }
        var limits = try resourceLimit.map { text throws(JailError) in try JailConfiguration.ResourceLimit(parsing: text) }
        if !limits.contains(where: { $0.kind == .openFiles }) { limits.append(.init(kind: .openFiles, value: 2048)) }
        configuration.resourceLimits = limits
        return configuration
    }

    /// This binary, for a jail without --exec-file.
    static var ownExecutable: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return count > 0 ? String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "swiftlet"
    }

    func run() throws {
        do {
            let status = try Jail.run(try makeConfiguration()) { printError("swiftlet jail: \($0)") }
            Glibc.exit(status)
        } catch {
            printError("swiftlet jail: \(error)")
            throw ExitCode.failure
        }
    }
}
