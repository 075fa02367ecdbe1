import Devices
import KVM
import Logging

/// One vCPU's run loop: KVM_RUN, then dispatch the exit to the port-I/O or MMIO bus, or stop the machine.
///
/// Runs on the vCPU's own thread. The hot path (port and MMIO exits) allocates nothing and takes no lock of
/// its own: the buses are immutable values and each device guards only its own state.
struct VCPURunner: Sendable {
    let vcpu: VCPU
    let portBus: PortIOBus
    let mmioBus: MMIOBus
    let stop: StopController
    let gate: PauseGate
    /// Firecracker's `vcpu` metrics: one relaxed atomic add per exit.
    let counters: VCPUExitCounters
    let timeline: BootTimeline
    let logger: Logger
    /// Whether unclaimed accesses are logged: decided once, so the exit path does not consult the log handler
    /// (which copies it) on every unclaimed access.
    private let logsUnclaimed: Bool

    init(vcpu: VCPU, portBus: PortIOBus, mmioBus: MMIOBus, stop: StopController, gate: PauseGate, counters: VCPUExitCounters,
         timeline: BootTimeline, logger: Logger) {
        self.vcpu = vcpu
        self.counters = counters
        self.gate = gate
        self.portBus = portBus
        self.mmioBus = mmioBus
        self.stop = stop
        self.timeline = timeline
        self.logger = logger
        logsUnclaimed = logger.logLevel <= .debug
    }

    func run() {
        defer { gate.vcpuFinished() }
        KickSignal.unblockInCurrentThread()
        // The vCPU's own seccomp filter, before the guest's first instruction (docs/security.md).
        Seccomp.enterThread(.vcpu)
        if vcpu.id == 0 { timeline.mark(.firstGuestEntry) }
        while true {
            let exit: VCPUExit
            do {
                exit = try vcpu.run()
            } catch {
                counters.recordFailure()
                stop.request(.hostError("vCPU \(vcpu.id): \(error)"))
                return
            }
            switch exit {
            case let .portOut(port, size, count):
                counters.recordIOOut()
                for index in 0..<count {
                    let value = vcpu.portOutValue(index: index, size: size)
                    if !portBus.write(address: UInt64(port), width: size, value: value), logsUnclaimed {
                        logger.debug("unclaimed port write", metadata: ["port": "\(hex(UInt64(port)))", "size": "\(size)", "value": "\(hex(value))"])
                    }
                }
                // A device access may have ended the machine (i8042 reset, ACPI power-off): stop before the
                // guest runs on, as hardware would. One relaxed load per exit.
                if stop.requested.load(ordering: .relaxed) { return }
            case let .portIn(port, size, count):
                counters.recordIOIn()
                for index in 0..<count {
                    var value = portBus.read(address: UInt64(port), width: size)
                    if value == nil {
                        if logsUnclaimed { logger.debug("unclaimed port read", metadata: ["port": "\(hex(UInt64(port)))", "size": "\(size)"]) }
                        value = allOnes(size)
                    }
                    vcpu.setPortInValue(value!, index: index, size: size)
                }
                if stop.requested.load(ordering: .relaxed) { return }
            case let .mmioWrite(address, length, value):
                counters.recordMMIOWrite()
                if !mmioBus.write(address: address, width: length, value: value), logsUnclaimed {
                    logger.debug("unclaimed MMIO write", metadata: ["address": "\(hex(address))", "size": "\(length)", "value": "\(hex(value))"])
                }
                if stop.requested.load(ordering: .relaxed) { return }
            case let .mmioRead(address, length):
                counters.recordMMIORead()
                var value = mmioBus.read(address: address, width: length)
                if value == nil {
                    if logsUnclaimed { logger.debug("unclaimed MMIO read", metadata: ["address": "\(hex(address))", "size": "\(length)"]) }
                    value = allOnes(length)
                }
                vcpu.setMMIOReadValue(value!, length: length)
                if stop.requested.load(ordering: .relaxed) { return }
            case .interrupted:
                if stop.stopping.load(ordering: .acquiring) { return }
                if !parkIfPausedThenRunOn() { return }
            case .halt:
                stop.request(.halted(vcpu: vcpu.id, rip: rip())); return
            case .shutdown:
                counters.recordFailure()
                stop.request(.tripleFault(vcpu: vcpu.id, rip: rip())); return
            case .systemEvent(.shutdown):
                stop.request(.poweredOff); return
            case .systemEvent(.reset):
                stop.request(.reset); return
            case .systemEvent(.crash):
                stop.request(.guestCrashed(vcpu: vcpu.id)); return
            case let .systemEvent(.other(type)):
                stop.request(.unexpectedExit(vcpu: vcpu.id, detail: "system event \(type)")); return
            case let .internalError(error):
                counters.recordFailure()
                stop.request(.internalError(vcpu: vcpu.id, rip: rip(), suberror: error.suberror, instruction: error.instructionBytes)); return
            case let .failEntry(reason, _):
                counters.recordFailure()
                stop.request(.failedEntry(vcpu: vcpu.id, hardwareReason: reason)); return
            case let .debug(exception, pc):
                stop.request(.unexpectedExit(vcpu: vcpu.id, detail: "debug exit (exception \(exception), pc \(hex(pc)))")); return
            case let .unknown(reason):
                counters.recordFailure()
                stop.request(.unexpectedExit(vcpu: vcpu.id, detail: "KVM_EXIT_UNKNOWN (hardware reason \(hex(reason)))")); return
            case let .unhandled(reason):
                counters.recordFailure()
                stop.request(.unexpectedExit(vcpu: vcpu.id, detail: "exit reason \(reason)")); return
            }
        }
    }

    /// After KVM_RUN returned EINTR: parks this vCPU while the machine is paused (`PauseGate`), then clears
    /// `immediate_exit` so that the guest runs on. Returns false when the machine is stopping.
    ///
    /// The clearing happens also when no pause is wanted any more: a pause that was resumed before this vCPU
    /// got here left `immediate_exit` set, and KVM_RUN would return EINTR forever (a spinning vCPU whose guest
    /// never runs: found with 200 pause/resume cycles under load). After clearing it looks again: a stop or
    /// another pause that came in meanwhile must not be missed, since its kick may already have been spent.
    private func parkIfPausedThenRunOn() -> Bool {
        if gate.pauseRequested.load(ordering: .acquiring) {
            guard gate.park(stopping: stop.stopping) else { return false }
        }
        vcpu.requestImmediateExit(false)
        if stop.stopping.load(ordering: .acquiring) { return false }
        if gate.pauseRequested.load(ordering: .acquiring) { vcpu.requestImmediateExit(true) }
        return true
    }

    /// The instruction pointer, for stop messages (0 if it cannot be read).
    private func rip() -> UInt64 { (try? vcpu.registers().rip) ?? 0 }

    /// What an unclaimed read returns: all ones, as an ISA bus with nothing driving it.
    @inline(__always)
    private func allOnes(_ size: Int) -> UInt64 { size >= 8 ? .max : (1 << (8 * UInt64(max(size, 0)))) - 1 }

    private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
}
