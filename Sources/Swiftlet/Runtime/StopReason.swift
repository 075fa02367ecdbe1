/// Why a machine stopped, with the process exit code the CLI uses for it.
///
/// A guest that asks to power off or reboot stops with 0, like a real machine that was shut down; each kind of
/// guest failure has its own code so scripts can tell them apart.
public enum StopReason: Equatable, Sendable, CustomStringConvertible {
    /// The guest powered off (ACPI S5 or a KVM system event).
    case poweredOff
    /// The guest asked for a reset (i8042 0xFE, ACPI reset register, KVM system event). Swiftlet does not
    /// reboot guests: a reset ends the VM, as with Firecracker.
    case reset
    /// The user typed the console escape (Ctrl-A X) or called `Machine.stop()`.
    case stopRequested
    /// SIGINT, SIGTERM or SIGHUP reached the VMM.
    case signal(Int32)
    /// A vCPU executed HLT with nothing to wake it (only possible without the in-kernel local APIC).
    case halted(vcpu: UInt32, rip: UInt64)
    /// A vCPU triple-faulted (KVM_EXIT_SHUTDOWN).
    case tripleFault(vcpu: UInt32, rip: UInt64)
    /// KVM could not continue, e.g. an instruction it cannot emulate (KVM_EXIT_INTERNAL_ERROR).
    case internalError(vcpu: UInt32, rip: UInt64, suberror: UInt32, instruction: [UInt8]?)
    /// The hardware refused to enter the guest (KVM_EXIT_FAIL_ENTRY).
    case failedEntry(vcpu: UInt32, hardwareReason: UInt64)
    /// The guest reported a crash through a KVM system event.
    case guestCrashed(vcpu: UInt32)
    /// An exit this VMM does not handle.
    case unexpectedExit(vcpu: UInt32, detail: String)
    /// `run(timeout:)` ran out of time.
    case timedOut
    /// A host-side failure while running (an ioctl that should not fail did).
    case hostError(String)

    public var exitCode: Int32 {
        switch self {
        case .poweredOff, .reset, .stopRequested: return 0
        case .hostError: return 1
        case .halted: return 3
        case .tripleFault: return 4
        case .internalError: return 5
        case .failedEntry: return 6
        case .guestCrashed: return 7
        case .unexpectedExit: return 8
        case .timedOut: return 124
        case let .signal(number): return 128 + number
        }
    }

    /// True when the guest itself ended normally or the user asked; false for failures.
    public var isClean: Bool { exitCode == 0 }

    public var description: String {
        func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
        switch self {
        case .poweredOff: return "the guest powered off"
        case .reset: return "the guest requested a reset; the VM ends"
        case .stopRequested: return "stopped on request"
        case .timedOut: return "stopped: the time limit ran out"
        case let .signal(number): return "stopped by signal \(number)"
        case let .halted(vcpu, rip): return "vCPU \(vcpu) halted at rip \(hex(rip)) with no interrupt to wake it"
        case let .tripleFault(vcpu, rip): return "vCPU \(vcpu) triple-faulted (rip \(hex(rip))): the guest crashed"
        case let .internalError(vcpu, rip, suberror, instruction):
            var text = "KVM internal error on vCPU \(vcpu) at rip \(hex(rip)) (suberror \(suberror)"
            if suberror == 1 { text += ", emulation failure" }
            if let instruction { text += ", instruction bytes " + instruction.map { String($0, radix: 16).leftPadded(to: 2) }.joined(separator: " ") }
            return text + ")"
        case let .failedEntry(vcpu, reason): return "KVM could not enter vCPU \(vcpu) (hardware reason \(hex(reason)))"
        case let .guestCrashed(vcpu): return "the guest reported a crash on vCPU \(vcpu)"
        case let .unexpectedExit(vcpu, detail): return "unexpected exit on vCPU \(vcpu): \(detail)"
        case let .hostError(detail): return "host error: \(detail)"
        }
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
