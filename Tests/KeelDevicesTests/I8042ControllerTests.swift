import Testing
@testable import KeelDevices

private struct Rig {
    let kbc: I8042Controller
    let data: any PortDevice
    let command: any PortDevice
    let irq1 = RecordingLine()
    let irq12 = RecordingLine()
    let events = Recorder<SystemEvent>()

    init() {
        kbc = I8042Controller(keyboardIRQ: irq1, auxIRQ: irq12, events: events.sink)
        data = kbc.dataPort
        command = kbc.commandPort
    }

    var status: UInt8 { command.read8(0) }
    func cmd(_ c: UInt8) { command.write8(0, c) }
    func write(_ b: UInt8) { data.write8(0, b) }

    /// Reads output bytes while the output buffer is full, as Linux's flush does.
    func drain() -> [UInt8] {
        var bytes: [UInt8] = []
        while status & 0x01 != 0 && bytes.count < 64 { bytes.append(data.read8(0)) }
        return bytes
    }
}

@Suite struct I8042ControllerTests {
    @Test func idleStatus() {
        let rig = Rig()
        #expect(rig.status != 0xFF)
        #expect(rig.status & 0x01 == 0)
        #expect(rig.status & 0x04 != 0)      // system flag
        #expect(rig.drain().isEmpty)
    }

    @Test func selfTestAndInterfaceTests() {
        let rig = Rig()
        rig.cmd(0xAA)
        #expect(rig.status & 0x09 == 0x09)   // output full, last write was a command
        #expect(rig.drain() == [0x55])
        rig.cmd(0xAB)
        #expect(rig.drain() == [0x00])
        rig.cmd(0xA9)
        #expect(rig.drain() == [0x00])
    }

    @Test func commandByteReadWrite() {
        let rig = Rig()
        rig.cmd(0x20)
        #expect(rig.drain() == [0x47])
        rig.cmd(0x60)
        rig.write(0x65)
        rig.cmd(0x20)
        #expect(rig.drain() == [0x65])
        rig.cmd(0xA7)                       // disable aux -> CTR bit 5
        rig.cmd(0xAD)                       // disable kbd -> CTR bit 4
        rig.cmd(0x20)
        #expect(rig.drain() == [0x75])
        rig.cmd(0xA8)
        rig.cmd(0xAE)
        rig.cmd(0x20)
        #expect(rig.drain() == [0x45])
    }

    @Test func keyboardInterruptFollowsCTR() {
        let rig = Rig()
        rig.cmd(0x60)
        rig.write(0x44)                     // interrupts off
        rig.cmd(0xAA)
        #expect(rig.irq1.history.isEmpty)
        _ = rig.drain()
        rig.cmd(0x60)
        rig.write(0x45)                     // keyboard interrupt on
        rig.write(0xFF)                     // keyboard reset: FA, AA
        #expect(rig.irq1.level)
        #expect(rig.data.read8(0) == 0xFA)
        #expect(rig.irq1.level)
        #expect(rig.data.read8(0) == 0xAA)
        #expect(rig.irq1.level == false)
        // Each byte got its own rising edge.
        #expect(rig.irq1.history == [true, false, true, false])
        #expect(rig.irq12.history.isEmpty)
    }

    @Test func keyboardProbeAsAtkbdDoesIt() {
        let rig = Rig()
        rig.write(0xF2)                     // get ID (translated)
        #expect(rig.drain() == [0xFA, 0xAB, 0x41])
        rig.write(0xF5)
        #expect(rig.drain() == [0xFA])
        rig.write(0xED)                     // set LEDs + parameter
        #expect(rig.drain() == [0xFA])
        rig.write(0x00)
        #expect(rig.drain() == [0xFA])
        rig.write(0xF3)                     // typematic + parameter
        rig.write(0x20)
        #expect(rig.drain() == [0xFA, 0xFA])
        rig.write(0xF4)
        #expect(rig.drain() == [0xFA])
        rig.write(0xEE)
        #expect(rig.drain() == [0xEE])
        rig.write(0x12)                     // not a command
        #expect(rig.drain() == [0xFE])
        rig.cmd(0x60)
        rig.write(0x05)                     // translation off
        rig.write(0xF2)
        #expect(rig.drain() == [0xFA, 0xAB, 0x83])
        rig.write(0xF0)
        rig.write(0x00)
        #expect(rig.drain() == [0xFA, 0xFA, 0x02])
    }

    @Test func auxLoopRaisesIRQ12() {
        let rig = Rig()
        rig.cmd(0xD3)
        rig.write(0x5A)
        #expect(rig.status & 0x21 == 0x21)  // full, from AUX
        #expect(rig.irq12.level)
        #expect(rig.irq1.history.isEmpty)
        #expect(rig.data.read8(0) == 0x5A)
        #expect(rig.irq12.level == false)
        // Bytes for the AUX device: no device there.
        rig.cmd(0xD4)
        rig.write(0xF2)
        #expect(rig.status & 0x61 == 0x61)  // timeout bit set
        #expect(rig.drain() == [0xFE])
    }

    @Test func outputPortAndResets() {
        let rig = Rig()
        rig.cmd(0xD0)
        #expect(rig.drain() == [0x03])
        rig.cmd(0xD1)
        rig.write(0x01)                     // A20 off, reset line high: no reset
        #expect(rig.events.all.isEmpty)
        rig.cmd(0xD0)
        #expect(rig.drain() == [0x01])
        rig.cmd(0xD1)
        rig.write(0x02)                     // bit 0 clear: reset
        #expect(rig.events.all == [.reset])
        rig.cmd(0xFF)                       // pulse nothing
        #expect(rig.events.all == [.reset])
        rig.cmd(0xFE)
        #expect(rig.events.all == [.reset, .reset])
    }

    @Test func writeKeyboardOutputBuffer() {
        let rig = Rig()
        rig.cmd(0xD2)
        rig.write(0x1C)
        #expect(rig.status & 0x21 == 0x01)
        #expect(rig.drain() == [0x1C])
    }

    @Test func garbageNeverCrashes() {
        let rig = Rig()
        for c in 0...255 {
            rig.cmd(UInt8(c & 0xFE | 0x01))   // every command except reset pulses
            rig.write(UInt8(255 - c))
            _ = rig.drain()
        }
        rig.data.hammer(length: 1)
        rig.command.hammer(length: 1)
        // The hammer wrote e.g. 0xFE to the command port: resets are fine, crashes are not.
        _ = rig.drain()
        rig.cmd(0xAA)
        #expect(rig.drain().last == 0x55)
    }
}
