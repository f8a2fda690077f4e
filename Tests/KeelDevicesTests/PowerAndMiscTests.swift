import Testing
@testable import KeelDevices

@Suite struct ACPIPowerManagementTests {
    private let events = Recorder<SystemEvent>()
    private let sci = RecordingLine()

    private func make() -> ACPIPowerManagement {
        ACPIPowerManagement(s5SleepType: 5, sci: sci, events: events.sink)
    }

    @Test func sciEnabledAlways() {
        let pm = make()
        #expect(pm.controlBlock.portRead(offset: 0, size: 2) & 1 == 1)
        pm.controlBlock.portWrite(offset: 0, size: 2, value: 0)
        #expect(pm.controlBlock.portRead(offset: 0, size: 2) & 1 == 1)
    }

    @Test func s5PowersOff() {
        let pm = make()
        let control = pm.controlBlock
        // Linux: write SLP_TYP, then SLP_TYP | SLP_EN.
        control.portWrite(offset: 0, size: 2, value: 5 << 10)
        #expect(events.all.isEmpty)
        #expect(control.portRead(offset: 0, size: 2) == (5 << 10) | 1)
        control.portWrite(offset: 0, size: 2, value: 5 << 10 | 1 << 13)
        #expect(events.all == [.powerOff])
        #expect(control.portRead(offset: 0, size: 2) & (1 << 13) == 0)   // SLP_EN reads 0
    }

    @Test func s5ViaByteWrite() {
        let pm = make()
        pm.controlBlock.portWrite(offset: 1, size: 1, value: (5 << 2) | (1 << 5))
        #expect(events.all == [.powerOff])
    }

    @Test func otherSleepTypesWakeAtOnce() {
        let pm = make()
        pm.controlBlock.portWrite(offset: 0, size: 2, value: 1 << 10 | 1 << 13)
        #expect(events.all.isEmpty)
        let status = pm.eventBlock.portRead(offset: 0, size: 2)
        #expect(status & 0x8000 != 0)                                     // WAK_STS
        pm.eventBlock.portWrite(offset: 0, size: 2, value: 0x8000)       // write 1 to clear
        #expect(pm.eventBlock.portRead(offset: 0, size: 2) == 0)
        // Byte writes to the low byte of the control block never sleep.
        pm.controlBlock.portWrite(offset: 0, size: 1, value: 0xFF)
        #expect(events.all.isEmpty)
    }

    @Test func powerButtonAndSCI() {
        let pm = make()
        let event = pm.eventBlock
        pm.pressPowerButton()
        #expect(event.portRead(offset: 0, size: 2) == 0x0100)
        #expect(sci.history.isEmpty)                          // not enabled
        event.portWrite(offset: 2, size: 2, value: 0x0100)   // PWRBTN_EN
        #expect(event.portRead(offset: 2, size: 2) == 0x0100)
        #expect(event.portRead(offset: 0, size: 4) == 0x0100_0100)
        #expect(sci.level)
        event.portWrite(offset: 0, size: 2, value: 0x0001)   // clearing another bit: no effect
        #expect(sci.level)
        event.portWrite(offset: 1, size: 1, value: 0x01)     // clear PWRBTN_STS by byte
        #expect(sci.level == false)
        #expect(event.portRead(offset: 0, size: 2) == 0)
    }

    @Test func garbageNeverCrashes() {
        let pm = ACPIPowerManagement(s5SleepType: 5, events: { _ in })
        pm.eventBlock.hammer(length: 4)
        pm.controlBlock.hammer(length: 2)
        #expect(pm.eventBlock.portRead(offset: 4, size: 1) == 0xFF)
        #expect(pm.controlBlock.portRead(offset: 1, size: 2) == 0xFF00 | (pm.controlBlock.portRead(offset: 1, size: 1)))
    }
}

@Suite struct ResetAndMiscTests {
    @Test func resetControl() {
        let events = Recorder<SystemEvent>()
        let rc = ResetControl(events: events.sink)
        rc.write8(0, 0x02)
        #expect(rc.read8(0) == 0x02)
        #expect(events.all.isEmpty)
        rc.write8(0, 0x06)
        #expect(events.all == [.reset])
        rc.write8(0, 0x0E)
        #expect(events.all == [.reset, .reset])
        #expect(rc.read8(0) == 0x0E)
    }

    @Test func systemControlPortA() {
        let events = Recorder<SystemEvent>()
        let port = SystemControlPortA(events: events.sink)
        #expect(port.read8(0) == 0x02)
        port.write8(0, 0x00)
        #expect(port.read8(0) == 0x00)
        #expect(events.all.isEmpty)
        port.write8(0, 0x03)
        #expect(events.all == [.reset])
        #expect(port.read8(0) == 0x02)
    }

    @Test func debugPort() {
        let port = DebugPort()
        port.write8(0, 0x42)
        #expect(port.lastCode == 0x42)
        #expect(port.portRead(offset: 0, size: 1) == 0xFF)
        #expect(port.portRead(offset: 0, size: 2) == 0xFFFF)
        #expect(port.portRead(offset: 0, size: 4) == 0xFFFF_FFFF)
        port.hammer(length: 1)
    }

    @Test func garbageNeverCrashes() {
        ResetControl(events: { _ in }).hammer(length: 1)
        SystemControlPortA(events: { _ in }).hammer(length: 1)
    }
}
