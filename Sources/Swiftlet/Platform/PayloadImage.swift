import ACPI
import Boot
import GuestMemory
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A payload's bytes, read and checked before the VM exists, and the step that places them in guest memory.
struct PayloadImage {
    enum Contents {
        case linux(LinuxPayload, kernel: [UInt8], initrd: [UInt8]?)
        case raw(RawImagePayload, image: [UInt8])
    }

    let contents: Contents

    /// Linux needs the in-kernel PIC/IOAPIC/LAPIC and PIT. A raw test image runs without them, so that HLT
    /// exits to the VMM and ends the run.
    var wantsInKernelIRQChip: Bool {
        if case .linux = contents { return true }
        return false
    }

    /// What the loader produced: the boot vCPU's entry state and a human account of what was done.
    struct Entry {
        let cpu: InitialCPUState
        let log: [String]
        /// Where the ACPI tables keep the VM Generation ID (Linux guests), for the VMM to write it.
        var vmGenerationIDAddress: GuestAddress? = nil
    }

    static func read(_ payload: MachineConfiguration.Payload) throws(MachineError) -> PayloadImage {
        switch payload {
        case let .linux(linux):
            let kernel = try readFile(linux.kernelPath, role: "kernel")
            do { _ = try KernelKind.validate(kernel) } catch {
                throw .configuration(.notAKernel(path: linux.kernelPath, reason: "\(error)"))
            }
            let initrd = try linux.initrdPath.map { path throws(MachineError) in try readFile(path, role: "initrd") }
            return PayloadImage(contents: .linux(linux, kernel: kernel, initrd: initrd))
        case let .rawImage(raw):
            let image = try readFile(raw.path, role: "raw image")
            guard image.count <= RawImagePayload.maximumSize else {
                throw .configuration(.unreadableFile(role: "raw image", path: raw.path,
                                                     reason: "\(image.count) bytes is larger than the \(RawImagePayload.maximumSize) a raw image may have"))
            }
            return PayloadImage(contents: .raw(raw, image: image))
        }
    }

    /// `extraCommandLine` is appended to a Linux command line (the VMM's own parameters, e.g. `swiftlet.net0=`).
    /// `mmioSlots` are the virtio-mmio devices to announce, in the DSDT and on the command line (`VirtioMMIOPlatform`);
    /// their GSIs also go into the MP table, for guests that boot with acpi=off.
    func load(into memory: GuestMemory, vcpuCount: Int, extraCommandLine: [String] = [],
              mmioSlots: [VirtioMMIOPlatform.Slot] = []) throws(MachineError) -> Entry {
        switch contents {
        case let .linux(linux, kernel, initrd):
            let tables: ACPITableImage
            var acpi = Platform.acpiConfiguration(vcpuCount: vcpuCount)
            VirtioMMIOPlatform.describe(mmioSlots, in: &acpi)
            let extraCommandLine = extraCommandLine + VirtioMMIOPlatform.commandLineParameters(mmioSlots)
            do {
                // The ACPI tables end where the MP table begins (both in the e820-reserved BIOS area).
                tables = try ACPITables.writeImage(acpi, into: memory, limit: MPTable.defaultBase)
            } catch {
                throw .device("ACPI tables: \(error)")
            }
            // The MP table, for guests booted with acpi=off and kernels without ACPI.
            do throws(BootError) {
                try MPTable.write(MPTablePlatform.configuration(vcpuCount: vcpuCount, additionalGSIs: mmioSlots.map(\.gsi)),
                                  into: memory)
            } catch {
                throw .boot(error)
            }
            do {
                let loaded = try loadLinux(LinuxBootRequest(
                    kernel: kernel, initrd: initrd, commandLine: ([linux.commandLine] + extraCommandLine).joined(separator: " "),
                    entry: linux.entryPoint == .pvh ? .pvh : .automatic,
                    unpackPayloadInHost: linux.unpackKernelInHost, rsdpAddress: tables.rsdpAddress,
                    reservedRanges: PCIPlatform.reservedRanges), into: memory)
                return Entry(cpu: loaded.cpu, log: loaded.log, vmGenerationIDAddress: tables.vmGenerationIDAddress)
            } catch {
                throw Self.explain(error, extraCommandLine: extraCommandLine)
            }
        case let .raw(raw, image):
            let address = GuestAddress(RawImagePayload.loadAddress)
            do {
                try memory.write(image, at: address)
                let cpu: InitialCPUState
                switch raw.mode {
                case .realMode:
                    cpu = CPUState.realMode(rip: address.rawValue, stack: RawImagePayload.stackTop)
                case .longMode, .userMode:
                    cpu = try InitialCPUState.longModeState(entry: address, stack: GuestAddress(RawImagePayload.stackTop), in: memory,
                                             userMode: raw.mode == .userMode)
                }
                return Entry(cpu: cpu, log: ["raw image of \(image.count) bytes at \(address), \(raw.mode.rawValue) mode"])
            } catch let error as GuestMemoryError {
                throw .memory(error)
            } catch let error as BootError {
                throw .boot(error)
            } catch {
                throw .device("\(error)")
            }
        }
    }

    /// The loader counts the whole command line, the parameters Swiftlet appends included: say so, or the user
    /// looks at a command line of their own that is well within the limit.
    static func explain(_ error: BootError, extraCommandLine: [String]) -> MachineError {
        guard case let .commandLineTooLong(length, maximum) = error, !extraCommandLine.isEmpty else { return .boot(error) }
        let added = extraCommandLine.reduce(0) { $0 + 1 + $1.utf8.count }
        let names = extraCommandLine.map { String($0.prefix(while: { $0 != "=" })) }.joined(separator: ", ")
        return .configuration(.invalidCommandLine(
            "\(length) bytes is longer than this kernel's limit of \(maximum); that includes \(added) bytes of parameters "
                + "Swiftlet appends for the network interfaces and virtio-mmio devices (\(names)), so shorten the command line "
                + "or use fewer devices"))
    }

    /// Reads a whole file.
    ///
    /// The bytes go straight from read(2) into the array that is returned, sized from fstat(2): no zero-filled
    /// staging buffer (each of whose pages the kernel would fault in first — expensive on a nested host, and
    /// most of a raw image's start-up time) and no copy. A file that grew since fstat is read to its end all
    /// the same; one that is not a regular file (a pipe) just starts from a small guess.
    static func readFile(_ path: String, role: String) throws(MachineError) -> [UInt8] {
        do {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
            defer { try? fd.close() }
            var status = stat()
            let knownSize = fstat(fd.rawValue, &status) == 0 && status.st_size > 0 ? Int(status.st_size) : 0
            // One byte more than the known size, so that the read that finds the end is part of this chunk.
            var bytes = try readChunk(from: fd, upTo: knownSize + 1)
            var chunkSize = 1 << 20
            while bytes.count > knownSize {   // longer than fstat said: read on to the end
                let chunk = try readChunk(from: fd, upTo: chunkSize)
                bytes.append(contentsOf: chunk)
                if chunk.count < chunkSize { break }
                chunkSize = min(chunkSize * 2, 64 << 20)
            }
            return bytes
        } catch {
            throw .configuration(.unreadableFile(role: role, path: path, reason: "\(error)"))
        }
    }

    /// Up to `limit` bytes from `fd`, fewer only at the end of the file.
    private static func readChunk(from fd: FileDescriptor, upTo limit: Int) throws -> [UInt8] {
        try [UInt8](unsafeUninitializedCapacity: limit) { buffer, initialized in
            while initialized < limit {
                let count = try fd.read(into: UnsafeMutableRawBufferPointer(UnsafeMutableBufferPointer(rebasing: buffer[initialized...])))
                if count == 0 { break }
                initialized += count
            }
        }
    }
}
