import Synchronization
import Testing

@testable import Devices

/// A clock the test moves by hand.
private final class ManualClock: Sendable {
    private let now: Mutex<Int64>
    init(_ seconds: Int64) { now = Mutex(seconds) }
    func advance(by seconds: Int64) { now.withLock { $0 += seconds } }
    var read: CMOSRTC.Clock { { [self] in now.withLock { $0 } } }
}

/// Thursday 2024-02-29 13:45:07 UTC (`date -u -d 2024-02-29T13:45:07Z +%s`).
private let leapDayAfternoon: Int64 = 1_709_214_307

/// The RTC at ports 0x70/0x71, read the way Linux's CMOS_READ does: write the index, read the data port.
private struct RTC {
    let clock = ManualClock(leapDayAfternoon)
    let device: CMOSRTC
    let bus: PortIOBus

    init() {
        device = CMOSRTC(clock: clock.read)
        var bus = PortIOBus()
        try! bus.register(device, base: CMOSRTC.basePort, length: CMOSRTC.portCount, name: "rtc")
        self.bus = bus
    }

    func read(_ index: UInt8) -> UInt8 {
        bus.write(address: 0x70, width: 1, value: UInt64(index))
        return UInt8(bus.read(address: 0x71, width: 1)!)
    }

    func write(_ index: UInt8, _ value: UInt8) {
        bus.write(address: 0x70, width: 1, value: UInt64(index))
        bus.write(address: 0x71, width: 1, value: UInt64(value))
    }

    /// seconds, minutes, hours, day of week, day of month, month, year, century.
    var timeFields: [UInt8] { [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map(read) }
}

@Suite("CMOS RTC")
struct CMOSRTCTests {
    @Test func readsTheClockInBCDByDefaultAsPCFirmwareLeavesIt() {
        let rtc = RTC()
        #expect(rtc.read(0x0B) == 0x02)  // status B: 24-hour, BCD
        // 13:45:07, Thursday (5; Sunday is 1), 29 February 2024, century 20.
        #expect(rtc.timeFields == [0x07, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20])
    }

    @Test func readsBinaryWhenTheGuestSetsTheDMBit() {
        let rtc = RTC()
        rtc.write(0x0B, 0x06)  // 24-hour, binary
        #expect(rtc.timeFields == [7, 45, 13, 5, 29, 2, 24, 20])
    }

    @Test func readsTwelveHourTimeWithThePMBit() {
        let rtc = RTC()
        rtc.write(0x0B, 0x00)  // 12-hour, BCD
        #expect(rtc.read(0x04) == 0x81)  // 1 PM
        rtc.clock.advance(by: -13 * 3600)  // 00:45:07
        #expect(rtc.read(0x04) == 0x12)  // 12 AM
    }

    @Test func statusRegistersSayTheTimeIsValidAndNeverMidUpdate() {
        let rtc = RTC()
        #expect(rtc.read(0x0A) & 0x80 == 0)  // UIP clear: Linux's mc146818_avoid_UIP never waits
        #expect(rtc.read(0x0A) == 0x26)
        rtc.write(0x0A, 0xA6)  // UIP is read-only
        #expect(rtc.read(0x0A) == 0x26)
        #expect(rtc.read(0x0C) == 0x00)  // no interrupt flags
        #expect(rtc.read(0x0D) == 0x80)  // VRT: valid RAM and time
    }

    @Test func theNMIMaskBitIsNotPartOfTheIndex() {
        let rtc = RTC()
        // Code that keeps NMIs masked writes index | 0x80; it must still select the same register.
        #expect(rtc.read(0x80 | 0x00) == 0x07)
        #expect(rtc.read(0x80 | 0x0D) == 0x80)
        #expect(rtc.device.saveState().nmiMasked)
        #expect(rtc.read(0x09) == 0x24)
        #expect(!rtc.device.saveState().nmiMasked)
    }

    @Test func theClockKeepsRunning() {
        let rtc = RTC()
        rtc.clock.advance(by: 10 * 3600 + 15 * 60 + 53)  // to 2024-03-01 00:01:00
        #expect(rtc.timeFields == [0x00, 0x01, 0x00, 0x06, 0x01, 0x03, 0x24, 0x20])
    }

    @Test func theGuestCanSetTheClockTheWayLinuxDoes() {
        // mc146818_set_time: set SET, write the fields, clear SET.
        let rtc = RTC()
        rtc.write(0x0B, 0x82)
        for (index, value): (UInt8, UInt8) in [(0x00, 0x59), (0x02, 0x59), (0x04, 0x23), (0x07, 0x31), (0x08, 0x12),
            (0x09, 0x99), (0x32, 0x19)]
        {
            rtc.write(index, value)
        }
        // While SET is on the fields read back as written and do not tick.
        rtc.clock.advance(by: 5)
        #expect(rtc.read(0x00) == 0x59)
        rtc.write(0x0B, 0x02)
        // From here the clock runs on from 1999-12-31 23:59:59 (a Friday).
        #expect(rtc.timeFields == [0x59, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x19])
        rtc.clock.advance(by: 6)
        #expect(rtc.timeFields == [0x05, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20])
    }

    @Test func aSingleFieldWriteMovesOnlyThatField() {
        let rtc = RTC()
        rtc.write(0x02, 0x30)  // minutes := 30
        #expect(rtc.timeFields == [0x07, 0x30, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20])
        rtc.write(0x08, 0x13)  // month 13 is not a date: the clock stays as it was
        #expect(rtc.read(0x08) == 0x02)
    }

    @Test func otherBytesAreBatteryBackedRAMAndTheIndexPortIsWriteOnly() {
        let rtc = RTC()
        rtc.write(0x40, 0xAB)
        rtc.write(0x7F, 0xCD)
        #expect(rtc.read(0x40) == 0xAB)
        #expect(rtc.read(0x7F) == 0xCD)
        #expect(rtc.bus.read(address: 0x70, width: 1) == 0xFF)
    }

    @Test func stateRoundTrips() {
        let rtc = RTC()
        rtc.write(0x40, 0x11)
        rtc.write(0x02, 0x00)
        let other = RTC()
        other.device.restoreState(rtc.device.saveState())
        #expect(other.device.saveState() == rtc.device.saveState())
        #expect(other.read(0x40) == 0x11)
        #expect(other.read(0x02) == 0x00)
    }
}

/// Seconds since the epoch, the UTC date they name, and its MC146818 day of week (1 = Sunday), checked with
/// `date -u -d @<seconds>`.
private let knownDates: [(seconds: Int64, date: CivilTime, dayOfWeek: Int64)] = [
    (0, CivilTime(year: 1970, month: 1, day: 1, hour: 0, minute: 0, second: 0), 5),
    (-1, CivilTime(year: 1969, month: 12, day: 31, hour: 23, minute: 59, second: 59), 4),
    (946_684_799, CivilTime(year: 1999, month: 12, day: 31, hour: 23, minute: 59, second: 59), 6),
    (leapDayAfternoon, CivilTime(year: 2024, month: 2, day: 29, hour: 13, minute: 45, second: 7), 5),
    (4_107_542_400, CivilTime(year: 2100, month: 3, day: 1, hour: 0, minute: 0, second: 0), 2),
]

@Suite("Civil time conversion")
struct CivilTimeTests {
    @Test(arguments: knownDates)
    func convertsBothWays(seconds: Int64, date: CivilTime, dayOfWeek: Int64) {
        let converted = CivilTime(secondsSinceEpoch: seconds)
        #expect(converted.year == date.year && converted.month == date.month && converted.day == date.day)
        #expect(converted.hour == date.hour && converted.minute == date.minute && converted.second == date.second)
        #expect(converted.dayOfWeek == dayOfWeek)
        #expect(date.secondsSinceEpoch == seconds)
    }

    @Test func rejectsDatesThatDoNotExist() {
        #expect(CivilTime(year: 2100, month: 2, day: 29, hour: 0, minute: 0, second: 0).secondsSinceEpoch == nil)
        #expect(CivilTime(year: 2024, month: 13, day: 1, hour: 0, minute: 0, second: 0).secondsSinceEpoch == nil)
        #expect(CivilTime(year: 2024, month: 1, day: 1, hour: 24, minute: 0, second: 0).secondsSinceEpoch == nil)
    }

    @Test func roundTripsEveryDayForFourCenturies() {
        var seconds: Int64 = -2_208_988_800  // 1900-01-01
        while seconds < 10_413_792_000 {  // 2300-01-01
            #expect(CivilTime(secondsSinceEpoch: seconds).secondsSinceEpoch == seconds)
            seconds += 86_400 + 3_661
        }
    }
}
