import Testing
@testable import KeelDevices

private enum R {
    static let rbr: UInt16 = 0, ier: UInt16 = 1, iir: UInt16 = 2, fcr: UInt16 = 2, lcr: UInt16 = 3
    static let mcr: UInt16 = 4, lsr: UInt16 = 5, msr: UInt16 = 6, scr: UInt16 = 7
}

private func makeUART(capacity: Int = 4096) -> (Serial16550, RecordingLine, Recorder<UInt8>) {
    let line = RecordingLine()
    let out = Recorder<UInt8>()
    let uart = Serial16550(irq: line, inputCapacity: capacity, output: out.sink)
    return (uart, line, out)
}

@Suite struct Serial16550Tests {
    @Test func resetState() {
        let (uart, line, _) = makeUART()
        #expect(uart.read8(R.ier) == 0)
        #expect(uart.read8(R.iir) == 0x01)
        #expect(uart.read8(R.lsr) == 0x60)
        #expect(uart.read8(R.msr) & 0xF0 == 0xB0)
        #expect(line.history.isEmpty)
    }

    @Test func linuxExistenceAndLoopbackProbe() {
        let (uart, _, out) = makeUART()
        // IER test: upper bits never stick, low four do.
        uart.write8(R.ier, 0)
        #expect(uart.read8(R.ier) & 0x0F == 0)
        uart.write8(R.ier, 0xFF)
        #expect(uart.read8(R.ier) == 0x0F)
        uart.write8(R.ier, 0)
        // Loopback: MCR = LOOP | OUT2 | RTS gives DCD | CTS.
        uart.write8(R.mcr, 0x10 | 0x0A)
        #expect(uart.read8(R.msr) & 0xF0 == 0x90)
        uart.write8(R.mcr, 0x10 | 0x05)   // DTR, OUT1 -> DSR, RI
        #expect(uart.read8(R.msr) & 0xF0 == 0x60)
        // A byte sent in loopback comes back and does not reach the sink.
        uart.write8(R.rbr, 0x5A)
        #expect(uart.read8(R.lsr) & 0x01 == 1)
        #expect(uart.read8(R.rbr) == 0x5A)
        #expect(out.all.isEmpty)
        uart.write8(R.mcr, 0)
        #expect(uart.read8(R.msr) & 0xF0 == 0xB0)
    }

    @Test func msrDeltasInLoopback() {
        let (uart, _, _) = makeUART()
        uart.write8(R.mcr, 0x10)
        _ = uart.read8(R.msr)           // clear deltas from entering loopback
        uart.write8(R.mcr, 0x10 | 0x02) // RTS -> CTS rises
        #expect(uart.read8(R.msr) == 0x10 | 0x01)
        #expect(uart.read8(R.msr) == 0x10)   // deltas cleared by the read
        uart.write8(R.mcr, 0x10 | 0x04) // RI rises: no TERI; CTS falls: DCTS
        #expect(uart.read8(R.msr) == 0x40 | 0x01)
        uart.write8(R.mcr, 0x10)        // RI falls: TERI
        #expect(uart.read8(R.msr) == 0x04)
    }

    @Test func scratchRegister() {
        let (uart, _, _) = makeUART()
        for value: UInt8 in [0x55, 0xAA, 0x00, 0xFF] {
            uart.write8(R.scr, value)
            #expect(uart.read8(R.scr) == value)
        }
    }

    @Test func fifoDetectionAsLinuxDoesIt() {
        let (uart, _, _) = makeUART()
        #expect(uart.read8(R.iir) >> 6 == 0)
        uart.write8(R.lcr, 0xBF)
        uart.write8(R.fcr, 0)            // EFR write lands on FCR
        uart.write8(R.lcr, 0)
        uart.write8(R.fcr, 0x01)
        #expect(uart.read8(R.iir) >> 6 == 3)   // 16550A
        // No EFR: IIR with DLAB set still reads non-zero.
        uart.write8(R.lcr, 0x80)
        #expect(uart.read8(R.iir) != 0)
        uart.write8(R.lcr, 0xBF)
        #expect(uart.read8(R.iir) != 0)
        // Not a 16750: bit 5 stays clear even with the 64-byte bit and DLAB.
        uart.write8(R.fcr, 0x21)
        #expect(uart.read8(R.iir) & 0xE0 == 0xC0)
        uart.write8(R.lcr, 0)
        // IER bit 6 (XScale UUE) does not stick.
        uart.write8(R.ier, 0x40)
        #expect(uart.read8(R.ier) & 0x40 == 0)
        uart.write8(R.fcr, 0)
        #expect(uart.read8(R.iir) == 0x01)
    }

    @Test func divisorLatch() {
        let (uart, _, out) = makeUART()
        uart.write8(R.ier, 0x05)
        uart.write8(R.lcr, 0x83)
        uart.write8(0, 0x0C)
        uart.write8(1, 0x00)
        #expect(uart.read8(0) == 0x0C)
        #expect(uart.read8(1) == 0x00)
        uart.write8(R.lcr, 0x03)
        #expect(uart.read8(R.ier) == 0x05)
        #expect(uart.read8(R.lcr) == 0x03)
        #expect(out.all.isEmpty)        // divisor writes are not transmitted
        uart.write8(R.lcr, 0x83)
        #expect(uart.read8(0) == 0x0C)
    }

    @Test func transmitGoesToSink() {
        let (uart, _, out) = makeUART()
        for byte in Array("hello\n".utf8) { uart.write8(R.rbr, byte) }
        #expect(out.all == Array("hello\n".utf8))
        #expect(uart.read8(R.lsr) & 0x60 == 0x60)
        // Wide write: the low byte goes out.
        uart.portWrite(offset: 0, size: 4, value: 0x1234_5641)
        #expect(out.all.last == 0x41)
    }

    @Test func receiveRaisesAndClearsInterrupt() {
        let (uart, line, _) = makeUART()
        uart.write8(R.mcr, 0x08)            // OUT2: interrupts reach the pin
        uart.write8(R.ier, 0x01)            // RX data available
        #expect(line.history.isEmpty)
        #expect(uart.enqueueInput([0x61, 0x62]) == 2)
        #expect(line.level == true)
        #expect(uart.read8(R.iir) == 0x04)
        #expect(uart.read8(R.lsr) & 0x01 == 1)
        #expect(uart.read8(R.rbr) == 0x61)
        #expect(line.level == true)
        #expect(uart.read8(R.rbr) == 0x62)
        #expect(line.level == false)
        #expect(uart.read8(R.iir) == 0x01)
        #expect(uart.read8(R.lsr) & 0x01 == 0)
        #expect(line.history == [true, false])
    }

    @Test func lineFollowsPendingInterruptsAndLoopbackSilencesIt() {
        let (uart, line, _) = makeUART()
        uart.write8(R.ier, 0x01)
        uart.enqueueInput([1])
        #expect(line.level == true)             // not gated by OUT2 (see Serial16550's notes)
        #expect(uart.read8(R.iir) == 0x04)
        uart.write8(R.mcr, 0x18)                // loopback: the IRQ output is inactive
        #expect(line.level == false)
        uart.write8(R.mcr, 0x08)
        #expect(line.level == true)
    }

    @Test func fifoTriggerLevelAndTimeout() {
        let (uart, _, _) = makeUART()
        uart.write8(R.fcr, 0xC7)                // enable, clear, trigger 14
        uart.write8(R.ier, 0x01)
        uart.enqueueInput(Array(repeating: UInt8(0x30), count: 3))
        #expect(uart.read8(R.iir) == 0xCC)      // below trigger: character timeout
        uart.enqueueInput(Array(repeating: UInt8(0x31), count: 20))
        #expect(uart.read8(R.iir) == 0xC4)      // at/above trigger
        var received = 0
        while uart.read8(R.lsr) & 0x01 != 0 {
            _ = uart.read8(R.rbr)
            received += 1
        }
        #expect(received == 23)
        #expect(uart.read8(R.iir) == 0xC1)
    }

    @Test func fifoClearDropsOnlyFifoContents() {
        let (uart, _, _) = makeUART()
        uart.write8(R.fcr, 0x01)
        uart.enqueueInput(Array(0..<40).map { UInt8($0) })
        uart.write8(R.fcr, 0x03)                // clear RX: the 16 in the FIFO go
        #expect(uart.read8(R.rbr) == 16)        // backlog flows in
        uart.write8(R.fcr, 0x00)                // disabling also clears
        #expect(uart.read8(R.iir) & 0xC0 == 0)
        #expect(uart.read8(R.rbr) == 33)        // 17...32 were in the FIFO
    }

    @Test func thrEmptyInterruptSemantics() {
        let (uart, line, out) = makeUART()
        uart.write8(R.mcr, 0x08)
        // Enabling ETBEI with THR empty raises THRE.
        uart.write8(R.ier, 0x02)
        #expect(line.level == true)
        #expect(uart.read8(R.iir) == 0x02)
        // Reading IIR while THRE is the reported source clears it.
        #expect(line.level == false)
        #expect(uart.read8(R.iir) == 0x01)
        // Linux's UART_BUG_THRE test: disable then re-enable re-raises it.
        uart.write8(R.ier, 0)
        uart.write8(R.ier, 0x02)
        #expect(uart.read8(R.iir) == 0x02)
        // Writing THR: the byte leaves at once and THR is empty again.
        uart.write8(R.rbr, 0x41)
        #expect(line.level == true)
        #expect(uart.read8(R.iir) == 0x02)
        // Re-writing IER with ETBEI already set does not re-raise.
        uart.write8(R.ier, 0x02)
        #expect(uart.read8(R.iir) == 0x01)
        // Disabling ETBEI drops the line.
        uart.write8(R.rbr, 0x42)
        #expect(line.level == true)
        uart.write8(R.ier, 0)
        #expect(line.level == false)
        #expect(out.all == [0x41, 0x42])
    }

    @Test func everyTransmittedByteRaisesAFreshEdge() {
        // The IO-APIC pin of COM1 is edge-triggered: a THR write while THRE is pending must drop
        // and re-raise the line, or the guest waits forever for its next transmit interrupt.
        let (uart, line, _) = makeUART()
        uart.write8(R.mcr, 0x08)
        uart.write8(R.ier, 0x02)
        line.clear()
        uart.write8(R.rbr, 0x41)
        uart.write8(R.rbr, 0x42)
        #expect(line.history == [false, true, false, true])
    }

    @Test func linuxTxenTest() {
        // serial8250_do_startup: IER = THRI; LSR has TEMT; IIR must show an interrupt.
        let (uart, _, _) = makeUART()
        uart.write8(R.ier, 0x02)
        #expect(uart.read8(R.lsr) & 0x40 != 0)
        #expect(uart.read8(R.iir) & 0x01 == 0)
    }

    @Test func interruptPriorities() {
        let (uart, _, _) = makeUART()
        uart.write8(R.mcr, 0x10 | 0x08)         // loopback
        uart.write8(R.ier, 0x0F)
        uart.write8(R.rbr, 1)                   // fills the 1-byte receiver
        uart.write8(R.rbr, 2)                   // overrun
        #expect(uart.read8(R.iir) == 0x06)      // line status first
        #expect(uart.read8(R.lsr) & 0x03 == 0x03)
        #expect(uart.read8(R.lsr) & 0x02 == 0)  // OE cleared by the read
        #expect(uart.read8(R.iir) == 0x04)      // then received data
        _ = uart.read8(R.rbr)
        #expect(uart.read8(R.iir) == 0x02)      // then THR empty (cleared by this read)
        uart.write8(R.mcr, 0x10 | 0x0A)         // RTS -> CTS changes
        #expect(uart.read8(R.iir) == 0x00)      // modem status
        _ = uart.read8(R.msr)
        #expect(uart.read8(R.iir) == 0x01)
    }

    @Test func loopbackHoldsHostInput() {
        let (uart, _, _) = makeUART()
        uart.write8(R.mcr, 0x10)
        uart.enqueueInput([0x70])
        #expect(uart.read8(R.lsr) & 0x01 == 0)
        uart.write8(R.mcr, 0)
        #expect(uart.read8(R.rbr) == 0x70)
    }

    @Test func inputBufferIsBounded() {
        let (uart, _, _) = makeUART(capacity: 64)
        #expect(uart.hasRoom)
        let accepted = uart.enqueueInput(Array(repeating: UInt8(0x55), count: 1000))
        // 64 in the backlog plus the 1-byte receiver (FIFO disabled).
        #expect(accepted == 65)
        #expect(uart.hasRoom == false)
        #expect(uart.enqueueInput([1, 2, 3]) == 0)
        _ = uart.read8(R.rbr)
        #expect(uart.hasRoom)
        #expect(uart.inputSpace == 1)
        #expect(uart.enqueueInput([9, 9]) == 1)
    }

    @Test func garbageNeverCrashes() {
        let (uart, _, _) = makeUART()
        uart.enqueueInput(Array(repeating: UInt8(7), count: 100))
        uart.hammer(length: 8)
        for offset: UInt16 in [8, 100, 0xFFFF] {
            #expect(uart.portRead(offset: offset, size: 1) == 0xFF)
        }
        // Still a working UART afterwards.
        uart.write8(R.lcr, 0x03)
        uart.write8(R.mcr, 0)
        uart.write8(R.fcr, 0x07)
        uart.write8(R.ier, 0)
        #expect(uart.read8(R.iir) == 0xC1)
    }
}
