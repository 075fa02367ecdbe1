import ACPI
import Boot
import GuestMemory
import SystemPackage

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
    func load(into memory: GuestMemory, vcpuCount: Int, extraCommandLine: [String] = []) throws(MachineError) -> Entry {
        switch contents {
        case let .linux(linux, kernel, initrd):
            let rsdp: GuestAddress
            do {
                rsdp = try ACPITables.write(Platform.acpiConfiguration(vcpuCount: vcpuCount), into: memory)
            } catch {
                throw .device("ACPI tables: \(error)")
            }
            do {
                let loaded = try loadLinux(LinuxBootRequest(
                    kernel: kernel, initrd: initrd, commandLine: ([linux.commandLine] + extraCommandLine).joined(separator: " "),
                    entry: linux.entryPoint == .pvh ? .pvh : .automatic,
                    unpackPayloadInHost: linux.unpackKernelInHost, rsdpAddress: rsdp,
                    reservedRanges: PCIPlatform.reservedRanges), into: memory)
                return Entry(cpu: loaded.cpu, log: loaded.log)
            } catch {
                throw .boot(error)
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

    /// Reads a whole file.
    static func readFile(_ path: String, role: String) throws(MachineError) -> [UInt8] {
        do {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
            defer { try? fd.close() }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
                if count == 0 { break }
                bytes.append(contentsOf: chunk[0..<count])
            }
            return bytes
        } catch {
            throw .configuration(.unreadableFile(role: role, path: path, reason: "\(error)"))
        }
    }
}
