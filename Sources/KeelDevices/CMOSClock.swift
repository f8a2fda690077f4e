#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The MC146818-style real-time clock and 128-byte CMOS RAM (register at port 0x70, length 2:
/// 0x70 index, 0x71 data).
///
/// Time and date (registers 0x00, 0x02, 0x04, 0x06-0x09, century 0x32) are computed on each
/// read from the host clock plus a guest offset, in the format register B selects (BCD or
/// binary, 24- or 12-hour; default 0x02: BCD, 24-hour, as on a PC). Guest writes to those
/// registers move the offset, so the guest can set its clock (`hwclock -w`): with register B's
/// SET bit the new time takes effect when SET is cleared, without it at once.
///
/// Register A's UIP bit reads 1 once each time the host second has advanced since the last
/// read of register A, and 0 otherwise: pollers see a short update cycle once a second and
/// never spin. Register C reads 0, register D reads 0x80 (valid RAM and time). No RTC
/// interrupts (periodic, alarm, update-ended) are generated: IRQ 8 is never raised; the
/// interrupt-enable bits of register B are stored only. All other bytes (including alarm
/// registers 0x01/0x03/0x05) are plain NVRAM. Bit 7 of the index (NMI mask) is ignored.
public final class CMOSClock: PortDevice {
    /// Host wall-clock time in UNIX seconds.
    public static let systemTime: @Sendable () -> Int64 = { Int64(time(nil)) }

    private struct Fields: Equatable {
        var second = 0, minute = 0, hour = 0, day = 1, month = 1, year = 1970
    }

    private struct State {
        var index: UInt8 = 0
        var nvram = [UInt8](repeating: 0, count: 128)
        var offset: Int64 = 0
        var frozen: Fields? = nil       // while register B SET is held
        var lastUIPSecond: Int64 = .min
    }

    private enum Reg {
        static let seconds: UInt8 = 0x00, minutes: UInt8 = 0x02, hours: UInt8 = 0x04
        static let weekday: UInt8 = 0x06, day: UInt8 = 0x07, month: UInt8 = 0x08, year: UInt8 = 0x09
        static let a: UInt8 = 0x0A, b: UInt8 = 0x0B, c: UInt8 = 0x0C, d: UInt8 = 0x0D
        static let century: UInt8 = 0x32
    }

    private let clock: @Sendable () -> Int64
    private let state: Mutex<State>

    /// - Parameter clock: host time in UNIX seconds (injectable for tests).
    public init(clock: @escaping @Sendable () -> Int64 = CMOSClock.systemTime) {
        self.clock = clock
        var s = State()
        s.nvram[Int(Reg.a)] = 0x26     // 32.768 kHz time base, 1.024 kHz rate
        s.nvram[Int(Reg.b)] = 0x02     // 24-hour, BCD
        self.state = Mutex(s)
    }

    /// Sets a plain CMOS byte before boot (e.g. firmware-style memory size fields). Indexes
    /// of clock registers are ignored.
    public func setNVRAM(_ index: Int, _ value: UInt8) {
        guard (0..<128).contains(index), !Self.isClockRegister(UInt8(index)) else { return }
        state.withLock { $0.nvram[index] = value }
    }

    private static func isClockRegister(_ index: UInt8) -> Bool {
        switch index {
        case Reg.seconds, Reg.minutes, Reg.hours, Reg.weekday, Reg.day, Reg.month, Reg.year,
             Reg.a, Reg.b, Reg.c, Reg.d, Reg.century:
            return true
        default:
            return false
        }
    }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        guard offset == 1 else { return PortAccess.mask(size) }   // the index port is write-only
        return UInt32(state.withLock { s in readRegister(&s) })
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        let byte = UInt8(truncatingIfNeeded: value)
        switch offset {
        case 0: state.withLock { $0.index = byte & 0x7F }
        case 1: state.withLock { s in writeRegister(&s, byte) }
        default: break
        }
    }

    // MARK: Registers

    private func readRegister(_ s: inout State) -> UInt8 {
        let b = s.nvram[Int(Reg.b)]
        switch s.index {
        case Reg.seconds, Reg.minutes, Reg.hours, Reg.weekday, Reg.day, Reg.month, Reg.year,
             Reg.century:
            let fields = s.frozen ?? Self.fields(clock() &+ s.offset)
            return Self.encode(fields, register: s.index, b: b)
        case Reg.a:
            var value = s.nvram[Int(Reg.a)] & 0x7F
            let now = clock()
            if now != s.lastUIPSecond && s.frozen == nil {
                s.lastUIPSecond = now
                value |= 0x80
            }
            return value
        case Reg.c:
            return 0
        case Reg.d:
            return 0x80
        default:
            return s.nvram[Int(s.index)]
        }
    }

    private func writeRegister(_ s: inout State, _ value: UInt8) {
        let b = s.nvram[Int(Reg.b)]
        switch s.index {
        case Reg.seconds, Reg.minutes, Reg.hours, Reg.day, Reg.month, Reg.year, Reg.century:
            var fields = s.frozen ?? Self.fields(clock() &+ s.offset)
            Self.decode(value, register: s.index, b: b, into: &fields)
            if s.frozen != nil {
                s.frozen = fields
            } else {
                s.offset = Self.epoch(fields) &- clock()
            }
        case Reg.weekday:
            break   // derived from the date
        case Reg.a:
            s.nvram[Int(Reg.a)] = value & 0x7F
        case Reg.b:
            let setting = value & 0x80 != 0
            if setting && s.frozen == nil {
                s.frozen = Self.fields(clock() &+ s.offset)
            } else if !setting, let frozen = s.frozen {
                s.offset = Self.epoch(frozen) &- clock()
                s.frozen = nil
            }
            s.nvram[Int(Reg.b)] = value
        case Reg.c, Reg.d:
            break   // read-only
        default:
            s.nvram[Int(s.index)] = value
        }
    }

    // MARK: Formats

    private static func toBCD(_ v: Int) -> UInt8 { UInt8(((v / 10) % 10) << 4 | (v % 10)) }
    private static func fromBCD(_ v: UInt8) -> Int { Int(v >> 4) * 10 + Int(v & 0x0F) }

    private static func encode(_ f: Fields, register: UInt8, b: UInt8) -> UInt8 {
        let binary = b & 0x04 != 0
        func out(_ v: Int) -> UInt8 { binary ? UInt8(truncatingIfNeeded: v) : toBCD(v) }
        switch register {
        case Reg.seconds: return out(f.second)
        case Reg.minutes: return out(f.minute)
        case Reg.hours:
            if b & 0x02 != 0 { return out(f.hour) }
            let h12 = f.hour % 12 == 0 ? 12 : f.hour % 12
            return out(h12) | (f.hour >= 12 ? 0x80 : 0)
        case Reg.weekday: return out(weekday(epoch(f)))
        case Reg.day: return out(f.day)
        case Reg.month: return out(f.month)
        case Reg.year: return out(f.year % 100)
        default: return out((f.year / 100) % 100)   // century
        }
    }

    private static func decode(_ value: UInt8, register: UInt8, b: UInt8, into f: inout Fields) {
        let binary = b & 0x04 != 0
        func input(_ v: UInt8) -> Int { binary ? Int(v) : fromBCD(v) }
        switch register {
        case Reg.seconds: f.second = min(input(value), 59)
        case Reg.minutes: f.minute = min(input(value), 59)
        case Reg.hours:
            if b & 0x02 != 0 {
                f.hour = min(input(value), 23)
            } else {
                let h = min(max(input(value & 0x7F), 1), 12) % 12
                f.hour = value & 0x80 != 0 ? h + 12 : h
            }
        case Reg.day: f.day = min(max(input(value), 1), 31)
        case Reg.month: f.month = min(max(input(value), 1), 12)
        case Reg.year: f.year = (f.year / 100) * 100 + min(input(value), 99)
        default: f.year = min(input(value), 99) * 100 + f.year % 100   // century
        }
    }

    /// Day of week, 1 = Sunday.
    private static func weekday(_ seconds: Int64) -> Int {
        let days = floorDiv(seconds, 86_400)
        return Int(((days + 4) % 7 + 7) % 7) + 1   // 1970-01-01 was a Thursday
    }

    private static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Splits UNIX seconds into a proleptic Gregorian UTC date and time.
    private static func fields(_ seconds: Int64) -> Fields {
        let days = floorDiv(seconds, 86_400)
        let secondOfDay = Int(seconds - days * 86_400)
        // Count from 0000-03-01 so leap days fall at the end of each 400/4-year cycle.
        let shifted = days + 719_468
        let era = floorDiv(shifted, 146_097)
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153          // 0 = March
        var f = Fields()
        f.day = Int(dayOfYear - (153 * monthIndex + 2) / 5 + 1)
        f.month = Int(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9)
        f.year = Int(yearOfEra + era * 400 + (f.month <= 2 ? 1 : 0))
        f.hour = secondOfDay / 3600
        f.minute = secondOfDay / 60 % 60
        f.second = secondOfDay % 60
        return f
    }

    /// UNIX seconds of a date and time (days past the month's end roll over).
    private static func epoch(_ f: Fields) -> Int64 {
        let year = Int64(f.year) - (f.month <= 2 ? 1 : 0)
        let era = floorDiv(year, 400)
        let yearOfEra = year - era * 400
        let monthFromMarch = Int64(f.month > 2 ? f.month - 3 : f.month + 9)
        let dayOfYear = (153 * monthFromMarch + 2) / 5 + Int64(f.day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return days * 86_400 + Int64(f.hour * 3600 + f.minute * 60 + f.second)
    }
}
