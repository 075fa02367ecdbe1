// swift-tools-version: 6.0
// Swiftlet: the user-space half of a KVM hypervisor.
// Layers, lowest first: CKVM (C headers) → KVM (ioctl bindings) and GuestMemory → Boot, Devices → Swiftlet (the VMM
// library) → SwiftletCLI (the `swiftlet` executable). Lower layers never import higher ones.
import PackageDescription

let package = Package(
    name: "Swiftlet",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "swiftlet", targets: ["SwiftletCLI"]),
        .library(name: "Swiftlet", targets: ["Swiftlet"]),
        // The guest agent (docs/agent.md): built static, it goes into the default guest's initramfs.
        .executable(name: "swiftlet-agent", targets: ["swiftlet-agent"]),
        .library(name: "SwiftletAgentClient", targets: ["SwiftletAgentClient"]),
        // The Swift API shaped like Virtualization.framework (docs/swift-api.md), and its runnable example.
        .library(name: "SwiftletKit", targets: ["SwiftletKit"]),
        .executable(name: "swiftlet-example", targets: ["swiftlet-example"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        // The REST API's HTTP/1.1 server on a Unix socket (NIOHTTP1 parses every request; nothing hand-written).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
    ],
    targets: [
        // <linux/kvm.h>, request numbers and fixed-arity ioctl helpers. Nothing else.
        .target(name: "CKVM"),
        // Linux host calls Swift's Glibc module leaves out (signalfd, thread names).
        .target(name: "CHost"),
        // libseccomp (Debian's libseccomp-dev; the static archive goes into the static release binary) and the
        // SIGSYS handler that names a refused system call. docs/security.md.
        .target(name: "CSeccomp", linkerSettings: [.linkedLibrary("seccomp")]),
        // The jailer's namespace, mount and privilege calls (pivot_root, unshare, setns, mknod); and the jailer
        // itself: `swiftlet jail`, Firecracker's jailer for Swiftlet (docs/security.md).
        .target(name: "CJail"),
        .target(name: "Jailer", dependencies: ["CJail"]),
        // Guest physical memory: mmap'd regions behind bounds-checked accessors.
        .target(name: "GuestMemory", dependencies: [
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // Safe Swift over the KVM system / VM / vCPU ioctls.
        .target(name: "KVM", dependencies: [
            "CKVM", "GuestMemory",
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // Linux boot protocol: bzImage / ELF / PVH loaders, zero page, e820, GDT, page tables.
        .target(name: "Boot", dependencies: ["GuestMemory"]),
        // ACPI tables (RSDP, XSDT, FADT, MADT, DSDT) generated per VM.
        .target(name: "ACPI", dependencies: ["GuestMemory"]),
        // Buses and emulated devices (legacy PC devices now; PCI and virtio later).
        .target(name: "Devices", dependencies: [
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Virtio 1.2: split virtqueues, feature negotiation, device status; device models (Block/, ...).
        .target(name: "Virtio", dependencies: [
            "CHost", "GuestMemory",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // The virtio-pci transport (virtio 1.2 §4.1): a virtio device as a PCI function with MSI-X.
        .target(name: "VirtioPCI", dependencies: [
            "Virtio", "Devices", "GuestMemory",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The virtio-mmio transport (virtio 1.2 §4.2): a virtio device as a 4 KiB MMIO window with one interrupt line.
        .target(name: "VirtioMMIO", dependencies: [
            "Virtio", "Devices", "GuestMemory",
            .product(name: "Logging", package: "swift-log"),
        ]),
        // The VMM library: configuration, builder, vCPU threads, exit dispatch, lifecycle.
        .target(name: "Swiftlet", dependencies: [
            "CHost", "CSeccomp", "KVM", "GuestMemory", "Boot", "ACPI", "Devices", "Virtio", "VirtioPCI", "VirtioMMIO",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // The guest agent's protocol (docs/agent.md): framed messages, strictly decoded. Standard library only: it is
        // shared by the static agent in the guest and the host's client.
        .target(name: "AgentProtocol"),
        // fork+exec, pidfd, pty and vsock/Unix socket calls of the agent and its client that Swift cannot make.
        .target(name: "CAgent"),
        // The agent's work on one connection (exec, copy in/out, clock) and the file-tree copy both sides use;
        // transport-free, so tests run it over a socketpair on this host.
        .target(name: "AgentCore", dependencies: ["AgentProtocol", "CAgent"]),
        // swiftlet-agent: listens on vsock port 1024 in the guest, one thread per connection. A static executable
        // in release builds (no C library or Swift runtime in the guest's initramfs).
        .executableTarget(name: "swiftlet-agent", dependencies: ["AgentCore", "AgentProtocol", "CAgent"], linkerSettings: [
            .unsafeFlags(["-static-executable"], .when(platforms: [.linux], configuration: .release)),
        ]),
        // The host's typed client of the agent, through a VM's vsock Unix socket (Firecracker's CONNECT convention).
        .target(name: "SwiftletAgentClient", dependencies: ["AgentProtocol", "AgentCore", "CAgent"]),
        // The command line's option syntax (`--disk`, `--net`, `--vsock`) for the library's plain configuration values.
        .target(name: "SwiftletCommandLine", dependencies: ["Swiftlet"]),
        // The control plane: Firecracker's REST API on a Unix socket (NIO on its own thread), its JSON resources
        // (strictly decoded), the pre-boot resource store and the one action enum every request becomes.
        .target(name: "SwiftletAPI", dependencies: [
            "Swiftlet",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // Named VMs in the background (`run -d`, `ps`, `attach`, `logs`, `stop`, `rm`): their state directories, the
        // console relay of a background VMM, and the launcher. The CLI keeps no state beyond these directories.
        .target(name: "SwiftletSandbox", dependencies: [
            "Swiftlet", "SwiftletAPI", "Virtio",
            .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // Release builds of `swiftlet` are static executables: no dynamic loader, no relocation of 14 shared
        // libraries at every start, and only the runtime pages a VM touches count against its memory
        // (docs/performance.md has the figures). FoundationEssentials comes in through swift-argument-parser,
        // compiled against the shared one, so its static archive's own dependencies are named here.
        // They link with lld and scripts/startup.order (scripts/order-startup-symbols writes it; a linker input, kept
        // out of Sources/): the code and data a VM's start-up touches are packed together, so the kernel maps fewer
        // 64 KiB stretches of the binary.
        .executableTarget(name: "SwiftletCLI", dependencies: [
            "Swiftlet", "GuestMemory", "SwiftletAPI", "SwiftletCommandLine", "Jailer", "SwiftletSandbox", "SwiftletAgentClient", "AgentCore", "CAgent",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: [
            .unsafeFlags(["-static-executable", "-l_FoundationCollections", "-l_FoundationCShims", "-lswiftSynchronization",
                          "-use-ld=lld", "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/scripts/startup.order",
                          "-Xlinker", "--no-warn-symbol-ordering"],
                         .when(platforms: [.linux], configuration: .release)),
        ]),
        // The Swift API for programs that embed VMs, shaped like Virtualization.framework: a configuration value with
        // validate(), a VirtualMachine with async start/pause/resume/stop, state, a delegate, and exec/copy through
        // the guest agent. A thin layer over Machine and SwiftletAgentClient (docs/swift-api.md).
        .target(name: "SwiftletKit", dependencies: ["Swiftlet", "SwiftletAgentClient", "AgentCore", "AgentProtocol"]),
        // Examples/BootAndExec: boots the default guest, runs `uname -a` through the agent, stops the VM. A static
        // executable in release builds, like swiftlet, so it also runs in the test host without the Swift runtime
        // (the Swiftlet library uses FoundationEssentials, whose archive's own dependencies are named, as for swiftlet).
        .executableTarget(name: "swiftlet-example", dependencies: ["SwiftletKit"], path: "Examples/BootAndExec", linkerSettings: [
            .unsafeFlags(["-static-executable", "-l_FoundationCollections", "-l_FoundationCShims", "-lswiftSynchronization"],
                         .when(platforms: [.linux], configuration: .release)),
        ]),
        // scripts/bench's lean runner of raw guests: the library without the CLI's dependencies (docs/performance.md).
        .executableTarget(name: "swiftlet-bench", dependencies: ["Swiftlet"], linkerSettings: [
            .unsafeFlags(["-static-executable"], .when(platforms: [.linux], configuration: .release)),
        ]),
        // The agent protocol's codec, and the agent's core driven by the client over a socketpair on this host.
        .testTarget(name: "AgentTests", dependencies: ["AgentProtocol", "AgentCore", "SwiftletAgentClient"]),
        .testTarget(name: "GuestMemoryTests", dependencies: ["GuestMemory"]),
        .testTarget(name: "BootTests", dependencies: ["Boot", "GuestMemory"], exclude: ["Fixtures"]),
        .testTarget(name: "ACPITests", dependencies: ["ACPI", "GuestMemory"]),
        .testTarget(name: "DevicesTests", dependencies: ["Devices"]),
        // Virtio devices and the virtio-pci transport, driven from the guest driver's side (TestDriver, PCIDriver).
        .testTarget(name: "VirtioTests", dependencies: ["Virtio", "VirtioPCI", "Devices", "GuestMemory"]),
        // The virtio-mmio register file driven as Linux's virtio_mmio driver does, against real device models.
        .testTarget(name: "VirtioMMIOTests", dependencies: ["VirtioMMIO", "Virtio", "Devices", "GuestMemory"]),
        // The API driven as a client would: requests in, status codes and JSON out, against a fake machine.
        // The fake backend's own async methods run on the caller's executor; calls through VMMBackend (declared in
        // SwiftletAPI) still hop to the global pool, which other suites' synchronous waits can hold for a minute:
        // scripts/test therefore runs these tests in a process of their own.
        .testTarget(name: "APITests", dependencies: ["SwiftletAPI", "Swiftlet"],
                    swiftSettings: [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]),
        // Metrics in Firecracker's format and the Firecracker-style log line, checked against their documented shape.
        .testTarget(name: "ObservabilityTests", dependencies: ["Swiftlet", "Virtio"]),
        .testTarget(name: "KVMTests", dependencies: ["Swiftlet", "SwiftletCommandLine", "KVM", "GuestMemory", "Boot", "Devices"]),
        // SwiftletKit: configuration validation, the lifecycle with tiny raw guests on /dev/kvm, the agent's errors
        // and exec/copy through a fake vsock bridge serving the agent's core on this host.
        .testTarget(name: "SwiftletKitTests", dependencies: ["SwiftletKit", "Swiftlet", "AgentCore"]),
        .testTarget(name: "SandboxTests", dependencies: ["SwiftletSandbox", "SwiftletAPI"]),
        // Run the built `swiftlet` binary as a subprocess (swift test builds it first).
        .testTarget(name: "CLITests", dependencies: []),
        // Boot real kernels in the QEMU test host (scripts/testhost); skipped when it is not prepared.
        .testTarget(name: "EndToEndTests", dependencies: []),
    ],
    swiftLanguageModes: [.v6]
)

// Fuzz targets (Fuzz/, docs/security.md): declared only when scripts/fuzz builds them (SWIFTLET_FUZZ=1, with
// -sanitize=fuzzer,address and its own scratch path), so the normal build and CI never compile them.
if Context.environment["SWIFTLET_FUZZ"] != nil {
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/Support"))
    let fuzzTargets: [(String, [Target.Dependency])] = [
        ("boot", ["Boot", "GuestMemory"]),
        ("virtio-queue", ["Virtio", "GuestMemory"]),
        ("block-request", ["Virtio", "GuestMemory"]),
        ("vsock-packet", ["Virtio"]),
        ("net-header", ["Virtio"]),
        ("virtio-pci", ["VirtioPCI", "Virtio", "Devices", "GuestMemory", .product(name: "Logging", package: "swift-log")]),
        ("api", ["SwiftletAPI"]),
        ("snapshot", ["Swiftlet"]),
        ("agent-frame", ["AgentProtocol"]),
        ("virtio-mmio", ["VirtioMMIO", "Virtio", "Devices", "GuestMemory", .product(name: "Logging", package: "swift-log")]),
    ]
    for (name, dependencies) in fuzzTargets {
        package.targets.append(.executableTarget(name: "fuzz-\(name)", dependencies: ["FuzzSupport"] + dependencies,
                                                 path: "Fuzz/Targets/\(name)"))
    }
}
