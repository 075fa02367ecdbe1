import ACPI
import Foundation
import Testing

/// Disassembles the generated tables with ACPICA's `iasl -d` (Debian package `acpica-tools`) — an
/// independent parser of the same formats Linux's ACPICA reads. Skipped when iasl is not installed.
@Suite("iasl disassembly", .enabled(if: IASL.path != nil, "iasl (acpica-tools) is not installed"))
struct IASLTests {
    /// Arguments: (vCPUs, extra virtio-mmio devices). 100 devices make a DSDT of about 6 KiB, whose `\_SB_`
    /// needs a 3-byte PkgLength.
    @Test("every table disassembles without errors or warnings", arguments: [(1, 1), (8, 60), (64, 100)])
    func disassemble(vcpuCount: Int, deviceCount: Int) throws {
        var config = ACPIConfiguration(vcpuCount: vcpuCount)
        config.vmGenerationID = VMGenerationIDDescription()
        config.additionalDevices = VirtioMMIOACPI.devices((0..<deviceCount).map { index in
            VirtioMMIODescription(base: 0xD000_0000 + UInt32(index) * 0x1000, length: 0x1000, gsi: UInt32(5 + index % 19))
        })
        let image = try ACPITables.build(config)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("swiftlet-acpi-\(getpid())-\(vcpuCount)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        // The RSDP has no table header, and iasl only disassembles binary files that start with one.
        for placed in image.tables where placed.signature != "RSD PTR " {
            let bytes = try #require(image.table(placed.signature))
            let stem = placed.signature
            let file = directory.appendingPathComponent("\(stem).dat")
            try Data(bytes).write(to: file)
            let (status, output) = try IASL.run(["-d", file.path], in: directory)
            let listing = (try? String(contentsOf: directory.appendingPathComponent("\(stem).dsl"), encoding: .utf8)) ?? ""
            if let dumpDirectory = ProcessInfo.processInfo.environment["SWIFTLET_ACPI_DUMP"] {
                try? listing.write(toFile: "\(dumpDirectory)/\(stem)-\(vcpuCount).dsl", atomically: true, encoding: .utf8)
                try? output.write(toFile: "\(dumpDirectory)/\(stem)-\(vcpuCount).log", atomically: true, encoding: .utf8)
            }
            #expect(status == 0, "iasl -d \(stem): \(output)")
            #expect(!listing.isEmpty, "iasl wrote no listing for \(stem)")
            for line in (output + listing).split(separator: "\n") {
                let lowered = line.lowercased()
                #expect(!lowered.contains("error") || lowered.contains("0 errors"), "\(stem): \(line)")
                #expect(!lowered.contains("warning") || lowered.contains("0 warnings"), "\(stem): \(line)")
                #expect(!lowered.contains("invalid"), "\(stem): \(line)")
            }
            if stem == "DSDT" {
                // The disassembled ASL must compile back without complaint.
                let (status, output) = try IASL.run(["-p", "recompiled", "DSDT.dsl"], in: directory)
                #expect(status == 0 && output.contains("0 Errors, 0 Warnings"), "iasl DSDT.dsl: \(output)")
            }
        }
    }
}

enum IASL {
    static let path: String? = ["/usr/bin/iasl", "/usr/local/bin/iasl", "/usr/sbin/iasl"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }

    static func run(_ arguments: [String], in directory: URL) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path!)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output)
    }
}

/// With `SWIFTLET_ACPI_DUMP=<dir>`, writes the default tables for 1, 2 and 4 vCPUs as raw images
/// (`acpi-<n>vcpu.bin`, to be loaded at 0xE0000) for boot experiments. QEMU's microvm with its own ACPI
/// off has the same legacy devices (COM1, RTC, PIC, PIT, IOAPIC at 0xFEC00000), and its `isa-debug-exit`
/// device turns the guest's power-off write into QEMU's exit status ((value << 1) | 1, so 0x34 → 105):
///
///     qemu-system-x86_64 -M microvm,acpi=off,rtc=on,pic=on,pit=on,isa-serial=on,auto-kernel-cmdline=off \
///         -smp 2 -m 256 -nographic -no-reboot -nodefaults -serial stdio -kernel vmlinuz -initrd init.cpio \
///         -append "console=ttyS0 tsc_early_khz=2000000 reboot=a" \
///         -device loader,file=acpi-2vcpu.bin,addr=0xE0000,force-raw=on \
///         -device isa-debug-exit,iobase=0x600,iosize=1      # or iobase=0x602 for reset: exit status 3
///
/// (`tsc_early_khz` only because TCG cannot always calibrate the TSC; under KVM kvm-clock provides it.)
@Suite("table image dump", .enabled(if: ProcessInfo.processInfo.environment["SWIFTLET_ACPI_DUMP"] != nil))
struct ImageDumpTests {
    @Test("write raw table images", arguments: [1, 2, 4])
    func dump(vcpuCount: Int) throws {
        let directory = try #require(ProcessInfo.processInfo.environment["SWIFTLET_ACPI_DUMP"])
        let image = try ACPITables.build(ACPIConfiguration(vcpuCount: vcpuCount))
        try Data(image.bytes).write(to: URL(fileURLWithPath: "\(directory)/acpi-\(vcpuCount)vcpu.bin"))
    }
}
