/// A UTC calendar date and time of day, converted to and from seconds since the Unix epoch with the proleptic
/// Gregorian calendar (Howard Hinnant's days-from-civil algorithm). Used by the CMOS RTC, which keeps the date as
/// broken-down fields.
struct CivilTime: Equatable, Sendable {
    var year: Int64
    var month: Int64  // 1...12
    var day: Int64  // 1...31
    var hour: Int64  // 0...23
    var minute: Int64
    var second: Int64
    /// 1 = Sunday ... 7 = Saturday, the MC146818's numbering. Derived; ignored by `secondsSinceEpoch`.
    var dayOfWeek: Int64 = 1

    init(year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64) {
        self.year = year
        self.month = month
        self.day = day
        self.hour = hour
        self.minute = minute
        self.second = second
    }

    init(secondsSinceEpoch seconds: Int64) {
        let days = Self.floorDivide(seconds, 86_400)
        let secondOfDay = seconds - days * 86_400
        hour = secondOfDay / 3600
        minute = secondOfDay / 60 % 60
        second = secondOfDay % 60

        // Shift the epoch to 0000-03-01 so that leap days fall at the end of each 400-year era's year.
        let shifted = days + 719_468
        let era = Self.floorDivide(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097  // 0...146096
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365  // 0...399
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)  // 0...365, from March 1
        let marchBasedMonth = (5 * dayOfYear + 2) / 153  // 0 = March ... 11 = February
        day = dayOfYear - (153 * marchBasedMonth + 2) / 5 + 1
        month = marchBasedMonth < 10 ? marchBasedMonth + 3 : marchBasedMonth - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        // 1970-01-01 was a Thursday (day 5 when Sunday is 1).
        dayOfWeek = (days + 4) - Self.floorDivide(days + 4, 7) * 7 + 1
    }

    /// Seconds since the Unix epoch, or nil when a field is out of range (month 13, February 30, hour 24, ...).
    var secondsSinceEpoch: Int64? {
        guard (1...12).contains(month), (1...Self.daysIn(month: month, year: year)).contains(day),
            (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second)
        else { return nil }
        let marchBasedYear = month <= 2 ? year - 1 : year
        let era = Self.floorDivide(marchBasedYear, 400)
        let yearOfEra = marchBasedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return days * 86_400 + hour * 3600 + minute * 60 + second
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2:
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return leap ? 29 : 28
        case 4, 6, 9, 11:
            return 30
        default:
            return 31
        }
    }

    private static func floorDivide(_ value: Int64, _ divisor: Int64) -> Int64 {
        let quotient = value / divisor
        return (value % divisor < 0) ? quotient - 1 : quotient
    }
}
