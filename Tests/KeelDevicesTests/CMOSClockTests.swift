import Testing
@testable import KeelDevices

private struct Rig {
    let host = ManualClock<Int64>(0)
    let rtc: CMOSClock
    init(_ time: Int64) {
        host.now = time
        let host = self.host
        rtc = CMOSClock(clock: { host.now })
    }
    func read(_ index: UInt8) -> UInt8 {
        rtc.write8(0, index | 0x80)          // NMI mask bit set, as Linux does
        return rtc.read8(1)
    }
    func write(_ index: UInt8, _ value: UInt8) {
        rtc.write8(0, index)
        rtc.write8(1, value)
    }
    /// sec, min, hour, weekday, day, month, year, century
    func snapshot() -> [UInt8] { [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map(read) }
}

// 2024-02-29 13:45:56 UTC, a Thursday.
private let leapDay: Int64 = 1_709_214_356

@Suite struct CMOSClockTests {
    @Test func bcd24HourByDefault() {
        let rig = Rig(leapDay)
        #expect(rig.read(0x0B) == 0x02)
        #expect(rig.snapshot() == [0x56, 0x45, 0x13, 0x05, 0x29, 0x02, 0x24, 0x20])
    }

    @Test func binaryAnd12Hour() {
        let rig = Rig(leapDay)
        rig.write(0x0B, 0x06)               // binary, 24h
        #expect(rig.snapshot() == [56, 45, 13, 5, 29, 2, 24, 20])
        rig.write(0x0B, 0x04)               // binary, 12h
        #expect(rig.read(0x04) == 0x80 | 1)
        rig.write(0x0B, 0x00)               // BCD, 12h
        #expect(rig.read(0x04) == 0x81)
        rig.host.now = leapDay - 13 * 3600 - 45 * 60   // 00:00:56
        #expect(rig.read(0x04) == 0x12)     // 12 AM
    }

    @Test func epochAndCentury() {
        let rig = Rig(0)
        #expect(rig.snapshot() == [0x00, 0x00, 0x00, 0x05, 0x01, 0x01, 0x70, 0x19])
        rig.host.now = 946_684_799          // 1999-12-31 23:59:59 Friday
        #expect(rig.snapshot() == [0x59, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x19])
        rig.host.now += 1                   // 2000-01-01 Saturday
        #expect(rig.snapshot() == [0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20])
    }

    @Test func timeAdvances() {
        let rig = Rig(leapDay)
        rig.host.now += 3600 * 24
        #expect(rig.read(0x07) == 0x01)
        #expect(rig.read(0x08) == 0x03)
    }

    @Test func guestSetsTimeWithSetBit() {
        let rig = Rig(leapDay)
        // hwclock -w style: SET, write all fields, clear SET.
        rig.write(0x0B, 0x82)
        rig.write(0x00, 0x30)
        rig.write(0x02, 0x15)
        rig.write(0x04, 0x08)
        rig.write(0x07, 0x04)
        rig.write(0x08, 0x07)
        rig.write(0x09, 0x26)
        rig.write(0x32, 0x20)
        rig.host.now += 100                 // frozen while SET is held
        #expect(rig.read(0x00) == 0x30)
        rig.write(0x0B, 0x02)
        #expect(rig.snapshot() == [0x30, 0x15, 0x08, 0x07, 0x04, 0x07, 0x26, 0x20])  // a Saturday
        rig.host.now += 61
        #expect(rig.read(0x00) == 0x31)
        #expect(rig.read(0x02) == 0x16)
    }

    @Test func guestSetsFieldWithoutSetBit() {
        let rig = Rig(leapDay)
        rig.write(0x09, 0x25)               // year 2025: Feb 29 rolls to Mar 1
        #expect(rig.read(0x09) == 0x25)
        #expect(rig.read(0x08) == 0x03)
        #expect(rig.read(0x07) == 0x01)
        rig.write(0x32, 0x21)
        #expect(rig.read(0x32) == 0x21)
        #expect(rig.read(0x09) == 0x25)
    }

    @Test func statusRegisters() {
        let rig = Rig(leapDay)
        #expect(rig.read(0x0D) == 0x80)
        #expect(rig.read(0x0C) == 0x00)
        #expect(rig.read(0x0A) & 0x7F == 0x26)
        // UIP: once per new second, then clear, so pollers never spin.
        #expect(rig.read(0x0A) & 0x80 == 0)
        rig.host.now += 1
        #expect(rig.read(0x0A) & 0x80 != 0)
        #expect(rig.read(0x0A) & 0x80 == 0)
        rig.write(0x0A, 0xA6)               // UIP is read-only
        #expect(rig.read(0x0A) == 0x26)
    }

    @Test func nvram() {
        let rig = Rig(leapDay)
        for index: UInt8 in [0x0E, 0x10, 0x31, 0x33, 0x7F, 0x01, 0x03, 0x05] {
            rig.write(index, index ^ 0xA5)
        }
        for index: UInt8 in [0x0E, 0x10, 0x31, 0x33, 0x7F, 0x01, 0x03, 0x05] {
            #expect(rig.read(index) == index ^ 0xA5)
        }
        rig.rtc.setNVRAM(0x34, 0x12)
        #expect(rig.read(0x34) == 0x12)
        #expect(rig.rtc.portRead(offset: 0, size: 1) == 0xFF)
    }

    @Test func garbageNeverCrashes() {
        let rig = Rig(leapDay)
        for index in 0..<128 {
            for value: UInt8 in [0x00, 0x99, 0xFF, 0x7A, 0x80] {
                rig.write(UInt8(index), value)
                _ = rig.read(UInt8(index))
            }
        }
        rig.rtc.hammer(length: 2)
        rig.write(0x0B, 0x02)
        _ = rig.snapshot()
        let extreme = Rig(Int64.max / 2)
        _ = extreme.snapshot()
        let negative = Rig(-5_000_000_000)
        _ = negative.snapshot()
    }
}
