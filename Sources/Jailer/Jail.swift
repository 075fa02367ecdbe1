import CJail
#if canImport(Glibc)
import Glibc
#endif

/// Firecracker's jailer, for Swiftlet (docs/security.md): a chroot per VM with only the VMM binary, the files it
/// is given and the device nodes it needs; a new mount namespace entered with pivot_root; optionally a network
/// namespace and a PID namespace; a cgroup v2 with limits; resource limits; then uid/gid dropped and the VMM
/// exec'd. Unlike Firecracker's jailer, this one stays as the VMM's parent (outside the jail, still root) and
/// removes the chroot and the cgroup once the VM ends.
public enum Jail {
    /// Builds the jail, runs the VMM in it and returns its exit status (128+N if a signal ended it) once it ended
    /// and the jail is removed. Must be called before the process has other threads (it forks).
    public static func run(_ configuration: JailConfiguration, log: (String) -> Void) throws(JailError) -> Int32 {
        try configuration.validate()
        if configuration.daemonize { try daemonize() }
        try prepareRoot(configuration)
        var cgroupCreated = false
        do {
            if !configuration.cgroups.isEmpty {
                try prepareCgroup(configuration)
                cgroupCreated = true
            }
            if configuration.newPIDNamespace { try JailFiles.check(cjail_unshare_pid_namespace(), "unshare(CLONE_NEWPID)", "") }
        } catch {
            cleanUp(configuration, cgroup: cgroupCreated)
            throw error
        }
        // The termination signals go to the VMM (which stops its guest cleanly); SIGCHLD says it ended.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGINT, SIGTERM, SIGHUP, SIGCHLD] { sigaddset(&signals, signal) }
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &signals, &previous)
        let child = cjail_fork()
        if child == 0 {
            pthread_sigmask(SIG_SETMASK, &previous, nil)
            enterAndExec(configuration)   // never returns
        }
        guard child > 0 else {
            cleanUp(configuration, cgroup: cgroupCreated)
            throw .system(operation: "fork", path: "", errno: -child)
        }
        log("jail \(configuration.rootDirectory): \(configuration.execFileName) running as pid \(child), uid \(configuration.uid), gid \(configuration.gid)")
        let status = supervise(child: child, signals: signals)
        cleanUp(configuration, cgroup: cgroupCreated)
        return status
    }

    /// The chroot: the VMM binary (copied: a jailed process must not be able to write the host's copy), the
    /// given files, /dev/kvm and /dev/net/tun, a /run for sockets; owned by uid:gid where the VMM writes.
    static func prepareRoot(_ configuration: JailConfiguration) throws(JailError) {
        let root = configuration.rootDirectory
        var info = stat()
        if lstat(configuration.jailDirectory, &info) == 0 {
            throw .invalid("\(configuration.jailDirectory) exists: another VM with id \(configuration.id) runs, or a jail was left behind")
        }
        try JailFiles.makeDirectories(root)
        do {
            try JailFiles.copy(configuration.execFile, to: "\(root)/\(configuration.execFileName)", mode: 0o755)
            for file in configuration.files {
                let target = "\(root)/\(file.split(separator: "/").last!)"
                try JailFiles.linkOrCopy(file, to: target)
                try JailFiles.chown(target, uid: configuration.uid, gid: configuration.gid)
            }
            for directory in ["dev", "dev/net", "run", "proc"] {
                try JailFiles.check(mkdir("\(root)/\(directory)", 0o755), "mkdir", "\(root)/\(directory)")
            }
            try JailFiles.chown("\(root)/run", uid: configuration.uid, gid: configuration.gid)
            // The device numbers are fixed by Linux (Documentation/admin-guide/devices.txt): misc 10, kvm 232, tun 200.
            for (path, minor) in [("dev/kvm", UInt32(232)), ("dev/net/tun", UInt32(200))] {
                try JailFiles.check(cjail_make_char_device("\(root)/\(path)", 0o660, 10, minor), "mknod", "\(root)/\(path)")
                try JailFiles.chown("\(root)/\(path)", uid: configuration.uid, gid: configuration.gid)
            }
        } catch {
            JailFiles.removeTree(configuration.jailDirectory)
            throw error
        }
    }

    /// `<cgroup root>/<parent>/<id>` with the controllers the limits need enabled on the way down, then each limit.
    static func prepareCgroup(_ configuration: JailConfiguration) throws(JailError) {
        var info = stat()
        guard stat("\(configuration.cgroupRoot)/cgroup.controllers", &info) == 0 else {
            throw .invalid("--cgroup needs cgroup v2 mounted at \(configuration.cgroupRoot) (no cgroup.controllers there)")
        }
        let controllers = Set(configuration.cgroups.map { String($0.file.split(separator: ".")[0]) })
        var directory = configuration.cgroupRoot
        for component in configuration.parentCgroup.split(separator: "/") {
            // Enabling a controller for the children of `directory`; a cgroup v2 rule: only where no process is.
            for controller in controllers { try? JailFiles.writeFile("\(directory)/cgroup.subtree_control", "+\(controller)") }
            directory += "/\(component)"
            if mkdir(directory, 0o755) != 0, errno != EEXIST { throw .system(operation: "mkdir", path: directory, errno: errno) }
        }
        for controller in controllers {
            try JailFiles.writeFile("\(directory)/cgroup.subtree_control", "+\(controller)")
        }
        let cgroup = configuration.cgroupDirectory
        try JailFiles.check(mkdir(cgroup, 0o755), "mkdir", cgroup)
        for (file, value) in configuration.cgroups {
            try JailFiles.writeFile("\(cgroup)/\(file)", value)
        }
    }

    /// In the child: join the cgroup and the network namespace, set the limits, pivot into the chroot, drop
    /// privileges, exec. Any failure is printed and ends the child with status 1.
    static func enterAndExec(_ configuration: JailConfiguration) -> Never {
        do {
            if !configuration.cgroups.isEmpty {
                try JailFiles.writeFile("\(configuration.cgroupDirectory)/cgroup.procs", "\(getpid())")
            }
            if let namespace = configuration.networkNamespace {
                try JailFiles.check(cjail_join_network_namespace(namespace), "setns(CLONE_NEWNET)", namespace)
            }
            for limit in configuration.resourceLimits {
                var value = rlimit(rlim_cur: rlim_t(limit.value), rlim_max: rlim_t(limit.value))
                let resource = limit.kind == .fileSize ? RLIMIT_FSIZE : RLIMIT_NOFILE
                try JailFiles.check(setrlimit(__rlimit_resource_t(resource.rawValue), &value), "setrlimit(\(limit.kind.rawValue))", "")
            }
            let root = configuration.rootDirectory
            try JailFiles.check(cjail_unshare_mount_namespace(), "unshare(CLONE_NEWNS)", "")
            try JailFiles.check(cjail_make_root_slave(), "mount --make-rslave", "/")
            try JailFiles.check(cjail_bind_onto_itself(root), "mount --bind", root)
            try JailFiles.check(mkdir("\(root)/old_root", 0o700), "mkdir", "\(root)/old_root")
            let pivoted = cjail_pivot_root(root, "old_root")
            if pivoted == -EINVAL, isInitialRamfsRoot() {
                // The host runs from its initramfs (as the QEMU test host does): pivot_root refuses to leave
                // rootfs. Move the jail over / and chroot into it instead. Escaping a chroot needs
                // CAP_SYS_CHROOT, which the privilege drop below takes away (unless --uid 0 is given).
                rmdir("\(root)/old_root")
                try JailFiles.check(cjail_move_root(root), "mount --move + chroot", root)
                var line = "swiftlet jail: the host's root is its initramfs, which pivot_root cannot leave: moved the jail onto / and chrooted instead\n"
                line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
            } else {
                try JailFiles.check(pivoted, "pivot_root", root)
            }
            // Swift's runtime finds itself through /proc/self at start-up (and aborts without it). A procfs of
            // the jail's own: with --new-pid-ns it shows only the VMM; hidepid=2 hides other users' processes.
            try JailFiles.check(cjail_mount_proc("/proc"), "mount proc", "/proc")
            try JailFiles.check(cjail_drop_privileges(configuration.uid, configuration.gid), "setuid/setgid", "")
            let program = "/\(configuration.execFileName)"
            let argv = ([configuration.execFileName] + configuration.arguments).map { strdup($0) } + [nil]
            execv(program, argv)
            throw JailError.system(operation: "exec", path: program, errno: errno)
        } catch {
            var line = "swiftlet jail: \(error)\n"
            line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
            _exit(1)
        }
    }

    /// True when / is the kernel's initial ramfs (its mount's file system type is rootfs), which pivot_root
    /// cannot move away from.
    static func isInitialRamfsRoot() -> Bool {
        guard let mounts = try? JailFiles.readFile("/proc/self/mounts") else { return false }
        return mounts.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 2 && fields[1] == "/" && fields[2] == "rootfs"
        }
    }

    /// Waits for the VMM, passing on termination signals. Returns its status the shell's way.
    static func supervise(child: pid_t, signals: sigset_t) -> Int32 {
        var signals = signals
        while true {
            var info = siginfo_t()
            let signal = sigwaitinfo(&signals, &info)
            if signal < 0 { continue }
            if signal != SIGCHLD { kill(child, signal); continue }
            var status: Int32 = 0
            let ended = waitpid(child, &status, WNOHANG)
            guard ended == child else { continue }
            let termination = status & 0x7F
            return termination == 0 ? (status >> 8) & 0xFF : 128 + termination
        }
    }

    static func cleanUp(_ configuration: JailConfiguration, cgroup: Bool) {
        JailFiles.removeTree(configuration.jailDirectory)
        // The exec file's directory goes too once no other VM's jail is in it (rmdir refuses a non-empty one).
        rmdir("\(configuration.chrootBaseDirectory)/\(configuration.execFileName)")
        if cgroup { rmdir(configuration.cgroupDirectory) }
    }

    /// --daemonize: the caller's process returns at once; the jailer goes on in a new session, without a terminal.
    static func daemonize() throws(JailError) {
        let child = cjail_fork()
        guard child >= 0 else { throw .system(operation: "fork", path: "", errno: -child) }
        if child > 0 { _exit(0) }
        _ = cjail_new_session()
        let null = open("/dev/null", O_RDWR)
        if null >= 0 { for fd in [STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO] { dup2(null, fd) }; if null > 2 { close(null) } }
    }
}
