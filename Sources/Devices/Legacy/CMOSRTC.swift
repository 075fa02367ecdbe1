// The PC's CMOS real-time clock (Motorola MC146818A) behind the index/data port pair 0x70/0x71.
//
// Port 0x70 (write-only) selects a register: bits 0-6 are the index, bit 7 on PCs masks NMIs and is not part of the
// index (Linux's CMOS_READ writes the bare index; other code writes index | 0x80). Port 0x71 reads or writes the
// selected register. Reading port 0x70 returns 0xFF, as on hardware where it is not readable.
//
// Registers (MC146818A data sheet):
//   0x00 seconds  0x02 minutes  0x04 hours  0x06 day of week (1 = Sunday)  0x07 day  0x08 month  0x09 year
//   0x01/0x03/0x05 alarm seconds/minutes/hours — kept as RAM; alarms are not raised
//   0x0A status A: bit 7 UIP (update in progress), divider and rate bits. UIP always reads 0: the time is computed
//        on every read, so there is never a half-updated moment for Linux's mc146818_avoid_UIP to wait out.
//   0x0B status B: bit 7 SET (halt updates so software can set the time), 6-4 interrupt enables, 2 DM (1 = binary,
//        0 = BCD), 1 24/12 (1 = 24-hour). The default 0x02 is what PC firmware leaves: BCD, 24-hour.
//   0x0C status C: interrupt flags, read-to-clear. No RTC interrupts are generated (IRQ 8 stays low), so it reads 0.
//   0x0D status D: bit 7 VRT (valid RAM and time) — always set, or Linux reports the RTC as invalid.
//   0x32 century: not part of the chip but the de-facto PC location (ACPI's FADT "century" field points here;
//        Linux's mach_get_cmos_time reads it when the FADT says so). Derived from the date like the other fields.
//   Everything else is 114 bytes of battery-backed RAM, stored and returned as written.
//
// Time: the fields show the injected clock (host UTC by default) plus an offset. A guest that sets the clock
// (Linux's mc146818_set_time: set SET, write the fields, clear SET; or a single field write) moves the offset, so
// `hwclock --systohc` followed by `hwclock --hctosys` round-trips. While SET is on, the fields read back exactly as
// written. Fields are encoded per status B at every read, so changing DM or 24/12 changes how the time reads out.
//
// Threads: vCPU threads only, through one Mutex (no callouts, so no lock order to keep).

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Synchronization

public final class CMOSRTC: BusDevice {
    /// The index port; the registration covers 0x70 and 0x71.
    public static let basePort: UInt64 = 0x70
    public static let portCount: UInt64 = 2
    /// The RTC's ISA interrupt (not raised by this model).
    public static let irq: UInt32 = 8
    /// CMOS index of the century byte, for the ACPI FADT.
    public static let centuryRegister: UInt8 = 0x32

    /// Seconds since the Unix epoch, UTC.
    public typealias Clock = @Sendable () -> Int64

    /// The host's wall clock.
    public static let hostClock: Clock = {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec)
    }

    /// The RTC's registers and RAM, for snapshot and restore.
    public struct State: Codable, Equatable, Sendable {
        /// The register selected through port 0x70 (0...127).
        public var index: UInt8 = 0
        /// Bit 7 of the last index write: on PCs it masks NMIs. Recorded, not acted on (KVM owns NMI delivery).
        public var nmiMasked = false
        /// All 128 CMOS bytes. Time fields (0x00, 0x02, 0x04, 0x06-0x09, 0x32) hold meaningful values only while
        /// status B's SET bit is on; otherwise they are computed from the clock at each read.
        public var ram: [UInt8] = CMOSRTC.initialRAM
        /// Guest time minus clock time, in seconds (moved when the guest sets the clock).
        public var clockOffset: Int64 = 0

        public init() {}
    }

    static let initialRAM: [UInt8] = {
        var ram = [UInt8](repeating: 0, count: 128)
        ram[Int(Register.statusA)] = 0x26  // 32.768 kHz time base, 1.024 kHz periodic rate: the PC default
        ram[Int(Register.statusB)] = StatusB.twentyFourHour
        return ram
    }()

    enum Register {
        static let seconds: UInt8 = 0x00
        static let minutes: UInt8 = 0x02
        static let hours: UInt8 = 0x04
        static let dayOfWeek: UInt8 = 0x06
        static let dayOfMonth: UInt8 = 0x07
        static let month: UInt8 = 0x08
        static let year: UInt8 = 0x09
        static let statusA: UInt8 = 0x0A
        static let statusB: UInt8 = 0x0B
        static let statusC: UInt8 = 0x0C
        static let statusD: UInt8 = 0x0D
        static let century: UInt8 = CMOSRTC.centuryRegister
        static let timeFields: [UInt8] = [seconds, minutes, hours, dayOfWeek, dayOfMonth, month, year, century]

        static func isTimeField(_ index: UInt8) -> Bool {
            switch index {
            case seconds, minutes, hours, dayOfWeek, dayOfMonth, month, year, century: return true
            default: return false
            }
        }
    }

    enum StatusB {
        static let set: UInt8 = 0x80
        static let updateEndedInterruptEnable: UInt8 = 0x10
        static let binary: UInt8 = 0x04  // DM
        static let twentyFourHour: UInt8 = 0x02
    }

    private let state = Mutex(State())
    private let clock: Clock

    /// - Parameter clock: the time source (injectable for tests); host UTC by default.
    public init(clock: @escaping Clock = CMOSRTC.hostClock) {
        self.clock = clock
    }

    // MARK: - Bus access

    public func read(offset: UInt64, width: Int) -> UInt64 {
        guard width == 1, offset == 1 else { return .max }
        let now = clock()
        return state.withLock { state in UInt64(Self.readRegister(&state, now: now)) }
    }

    public func write(offset: UInt64, width: Int, value: UInt64) {
        guard width == 1 else { return }
        let byte = UInt8(truncatingIfNeeded: value)
        let now = clock()
        state.withLock { state in
            switch offset {
            case 0:
                state.index = byte & 0x7F
                state.nmiMasked = byte & 0x80 != 0
            case 1:
                Self.writeRegister(&state, value: byte, now: now)
            default:
                break
            }
        }
    }

    // MARK: - Snapshot

    public func saveState() -> State { state.withLock { $0 } }

    /// Loads a snapshot; a RAM image of the wrong size is padded or truncated to 128 bytes.
    public func restoreState(_ snapshot: State) {
        var snapshot = snapshot
        snapshot.index &= 0x7F
        snapshot.ram = Array((snapshot.ram + [UInt8](repeating: 0, count: 128)).prefix(128))
        state.withLock { $0 = snapshot }
    }

    // MARK: - Registers

    private static func readRegister(_ state: inout State, now: Int64) -> UInt8 {
        let index = state.index
        let statusB = state.ram[Int(Register.statusB)]
        switch index {
        case Register.statusA:
            return state.ram[Int(index)] & 0x7F  // UIP clear
        case Register.statusC:
            return 0  // no interrupt flags; reading would clear them
        case Register.statusD:
            return 0x80  // VRT
        case _ where Register.isTimeField(index) && statusB & StatusB.set == 0:
            return encodedField(index, of: CivilTime(secondsSinceEpoch: now + state.clockOffset), statusB: statusB)
        default:
            return state.ram[Int(index)]
        }
    }

    private static func writeRegister(_ state: inout State, value: UInt8, now: Int64) {
        let index = state.index
        switch index {
        case Register.statusA:
            state.ram[Int(index)] = value & 0x7F  // UIP is read-only
        case Register.statusB:
            let wasSet = state.ram[Int(index)] & StatusB.set != 0
            var value = value
            // Setting SET also clears the update-ended interrupt enable (data sheet, register B bit 7).
            if value & StatusB.set != 0 { value &= ~StatusB.updateEndedInterruptEnable }
            state.ram[Int(index)] = value
            let isSet = value & StatusB.set != 0
            if !wasSet, isSet { latchTime(&state, now: now) }
            if wasSet, !isSet { commitTime(&state, now: now) }
        case Register.statusC, Register.statusD:
            break  // read-only
        case _ where Register.isTimeField(index):
            if state.ram[Int(Register.statusB)] & StatusB.set != 0 {
                state.ram[Int(index)] = value
            } else {
                // A single field written while the clock runs: change that field of the current time.
                latchTime(&state, now: now)
                state.ram[Int(index)] = value
                commitTime(&state, now: now)
            }
        default:
            state.ram[Int(index)] = value
        }
    }

    /// Copies the current time into the RAM bytes of the time fields (on entering SET mode).
    private static func latchTime(_ state: inout State, now: Int64) {
        let statusB = state.ram[Int(Register.statusB)]
        let time = CivilTime(secondsSinceEpoch: now + state.clockOffset)
        for index in Register.timeFields { state.ram[Int(index)] = encodedField(index, of: time, statusB: statusB) }
    }

    /// Makes the time in the RAM fields the current time by moving the offset. Fields that do not form a valid
    /// date (the guest wrote garbage) leave the clock as it was.
    private static func commitTime(_ state: inout State, now: Int64) {
        guard let written = decodedTime(state.ram, statusB: state.ram[Int(Register.statusB)]),
            let seconds = written.secondsSinceEpoch
        else { return }
        state.clockOffset = seconds - now
    }

    // MARK: - Encoding

    /// One time field as the guest reads it, in BCD or binary per status B's DM bit.
    private static func encodedField(_ index: UInt8, of time: CivilTime, statusB: UInt8) -> UInt8 {
        let binary = statusB & StatusB.binary != 0
        func encode(_ value: Int64) -> UInt8 {
            binary ? UInt8(truncatingIfNeeded: value) : UInt8(truncatingIfNeeded: (value / 10) << 4 | value % 10)
        }
        switch index {
        case Register.seconds: return encode(time.second)
        case Register.minutes: return encode(time.minute)
        case Register.hours:
            if statusB & StatusB.twentyFourHour != 0 { return encode(time.hour) }
            // 12-hour mode: 12 AM, 1 AM ... 11 AM, 12 PM, 1 PM ... 11 PM, with bit 7 meaning PM.
            let hour12 = time.hour % 12 == 0 ? 12 : time.hour % 12
            return encode(hour12) | (time.hour >= 12 ? 0x80 : 0)
        case Register.dayOfWeek: return encode(time.dayOfWeek)
        case Register.dayOfMonth: return encode(time.day)
        case Register.month: return encode(time.month)
        case Register.year: return encode(time.year % 100)
        case Register.century: return encode(time.year / 100)
        default: return 0
        }
    }

    /// The date the RAM time fields describe, or nil when a BCD field holds a non-decimal digit or a 12-hour
    /// field is out of range. (Calendar validity is checked by `CivilTime.secondsSinceEpoch`.)
    private static func decodedTime(_ ram: [UInt8], statusB: UInt8) -> CivilTime? {
        let binary = statusB & StatusB.binary != 0
        func decode(_ index: UInt8, mask: UInt8 = 0xFF) -> Int64? {
            let raw = ram[Int(index)] & mask
            if binary { return Int64(raw) }
            guard raw >> 4 <= 9, raw & 0x0F <= 9 else { return nil }
            return Int64(raw >> 4) * 10 + Int64(raw & 0x0F)
        }
        guard let second = decode(Register.seconds), let minute = decode(Register.minutes),
            let day = decode(Register.dayOfMonth), let month = decode(Register.month),
            let year = decode(Register.year), let century = decode(Register.century),
            var hour = decode(Register.hours, mask: 0x7F)
        else { return nil }
        if statusB & StatusB.twentyFourHour == 0 {
            guard (1...12).contains(hour) else { return nil }
            let pm = ram[Int(Register.hours)] & 0x80 != 0
            hour = hour % 12 + (pm ? 12 : 0)
        } else if ram[Int(Register.hours)] & 0x80 != 0 {
            return nil
        }
        return CivilTime(year: century * 100 + year, month: month, day: day, hour: hour, minute: minute, second: second)
    }
}
