import Synchronization

/// An i8042 PS/2 keyboard controller with a keyboard that answers commands but never types,
/// and an AUX (mouse) port with no device attached.
///
/// It exists so that Linux's i8042 and atkbd probes finish quickly and cleanly, and because
/// the controller is one of the PC's reset paths: command 0xFE (any 0xF0-0xFF pulse with bit 0
/// clear) and an output-port write (0xD1) with bit 0 clear raise `SystemEvent.reset`.
///
/// Registration: two one-port ranges, `dataPort` at 0x60 and `commandPort` at 0x64 (the
/// ports between them, notably 0x61, are not the controller's). Interrupts: IRQ 1 while the
/// output buffer holds keyboard/controller data and CTR bit 0 is set; IRQ 12 while it holds
/// AUX data and CTR bit 1 is set. Each byte taken from the output buffer drops the line
/// before the next byte raises it, so edge-triggered pins see every byte.
///
/// AUX: the loop command 0xD3 works (Linux uses it to test IRQ 12); bytes sent to the AUX
/// device (0xD4) come back as 0xFE with the timeout bit, meaning "no device".
public final class I8042Controller: Sendable {
    /// Bits of the controller configuration byte (CTR).
    enum CTR {
        static let keyboardInterrupt: UInt8 = 0x01
        static let auxInterrupt: UInt8 = 0x02
        static let systemFlag: UInt8 = 0x04
        static let keyboardDisabled: UInt8 = 0x10
        static let auxDisabled: UInt8 = 0x20
        static let translate: UInt8 = 0x40
    }

    /// Output buffer entry: data byte in bits 0-7, bit 8 = from AUX, bit 9 = timeout error.
    private static let fromAux: UInt16 = 0x100
    private static let timeoutError: UInt16 = 0x200

    private struct State {
        var ram = [UInt8](repeating: 0, count: 32)   // ram[0] is the CTR
        var outputPort: UInt8 = 0x03                 // bit 0: not in reset, bit 1: A20
        var output: UInt16? = nil                    // the output buffer
        var queue = FixedRing<UInt16>(capacity: 16, filler: 0)
        var lastData: UInt8 = 0
        var pendingCommand: UInt8? = nil             // controller command awaiting a data byte
        var keyboardPending: UInt8? = nil            // keyboard command awaiting a parameter
        var lastWriteWasCommand = false
        var scanning = true
        var irq1 = false
        var irq12 = false

        var ctr: UInt8 {
            get { ram[0] }
            set { ram[0] = newValue }
        }

        mutating func enqueue(_ byte: UInt8, flags: UInt16 = 0) {
            let entry = UInt16(byte) | flags
            if output == nil {
                output = entry
            } else {
                queue.push(entry)   // a full queue drops the byte, like a stuck controller
            }
        }

        mutating func updateLines(keyboard: any InterruptLine, aux: (any InterruptLine)?) {
            let kbd = output.map { $0 & I8042Controller.fromAux == 0 } ?? false
                && ctr & CTR.keyboardInterrupt != 0
            let mouse = output.map { $0 & I8042Controller.fromAux != 0 } ?? false
                && ctr & CTR.auxInterrupt != 0
            if kbd != irq1 {
                irq1 = kbd
                keyboard.setLevel(kbd)
            }
            if mouse != irq12 {
                irq12 = mouse
                aux?.setLevel(mouse)
            }
        }
    }

    private let events: SystemEventSink
    private let keyboardIRQ: any InterruptLine
    private let auxIRQ: (any InterruptLine)?
    private let log: RateLimitedLog?
    private let state: Mutex<State>

    /// - Parameters:
    ///   - keyboardIRQ: IRQ 1.
    ///   - auxIRQ: IRQ 12 (nil: AUX interrupts are not delivered).
    ///   - events: receives `.reset` when the guest pulses the reset line.
    ///   - log: rate-limited log for unknown commands.
    public init(
        keyboardIRQ: any InterruptLine,
        auxIRQ: (any InterruptLine)?,
        events: @escaping SystemEventSink,
        log: RateLimitedLog? = nil
    ) {
        self.keyboardIRQ = keyboardIRQ
        self.auxIRQ = auxIRQ
        self.events = events
        self.log = log
        var s = State()
        // As firmware leaves it: both interrupts on, POST passed, scan-code translation on.
        s.ctr = CTR.keyboardInterrupt | CTR.auxInterrupt | CTR.systemFlag | CTR.translate
        self.state = Mutex(s)
    }

    /// The data port; register at 0x60, length 1.
    public var dataPort: any PortDevice { DataPort(controller: self) }
    /// The status/command port; register at 0x64, length 1.
    public var commandPort: any PortDevice { CommandPort(controller: self) }

    // MARK: Data port

    fileprivate func readData() -> UInt8 {
        state.withLock { s in
            guard let entry = s.output else { return s.lastData }
            s.output = nil
            s.lastData = UInt8(truncatingIfNeeded: entry)
            s.updateLines(keyboard: keyboardIRQ, aux: auxIRQ)   // drop the line...
            s.output = s.queue.pop()
            s.updateLines(keyboard: keyboardIRQ, aux: auxIRQ)   // ...before the next byte
            return s.lastData
        }
    }

    fileprivate func writeData(_ byte: UInt8) {
        let reset = state.withLock { s -> Bool in
            s.lastWriteWasCommand = false
            var reset = false
            if let command = s.pendingCommand {
                s.pendingCommand = nil
                switch command {
                case 0x60...0x7F:
                    s.ram[Int(command & 0x1F)] = byte
                case 0xD1:
                    s.outputPort = byte
                    reset = byte & 0x01 == 0
                case 0xD2:
                    s.enqueue(byte)
                case 0xD3:
                    s.enqueue(byte, flags: I8042Controller.fromAux)
                case 0xD4:
                    s.enqueue(0xFE, flags: I8042Controller.fromAux | I8042Controller.timeoutError)
                default:
                    break
                }
            } else {
                keyboardCommand(byte, &s)
            }
            s.updateLines(keyboard: keyboardIRQ, aux: auxIRQ)
            return reset
        }
        if reset { events(.reset) }
    }

    /// The keyboard's side: acknowledge commands and answer the probing ones.
    private func keyboardCommand(_ byte: UInt8, _ s: inout State) {
        if let pending = s.keyboardPending, byte < 0xED {
            s.keyboardPending = nil
            s.enqueue(0xFA)
            if pending == 0xF0 && byte == 0 {
                s.enqueue(s.ctr & CTR.translate != 0 ? 0x41 : 0x02)   // scan set 2
            }
            return
        }
        s.keyboardPending = nil
        switch byte {
        case 0xED, 0xF0, 0xF3:          // set LEDs, scan set, typematic: a parameter follows
            s.enqueue(0xFA)
            s.keyboardPending = byte
        case 0xEE:                      // echo
            s.enqueue(0xEE)
        case 0xF2:                      // identify: MF2 keyboard
            s.enqueue(0xFA)
            s.enqueue(0xAB)
            s.enqueue(s.ctr & CTR.translate != 0 ? 0x41 : 0x83)
        case 0xF4:
            s.scanning = true
            s.enqueue(0xFA)
        case 0xF5:
            s.scanning = false
            s.enqueue(0xFA)
        case 0xF6...0xFE:
            s.enqueue(0xFA)
        case 0xFF:                      // reset: ACK, then self-test passed
            s.scanning = true
            s.enqueue(0xFA)
            s.enqueue(0xAA)
        default:
            s.enqueue(0xFE)             // resend: not a command
        }
    }

    // MARK: Command port

    fileprivate func readStatus() -> UInt8 {
        state.withLock { s in
            var status: UInt8 = 0x10    // keyboard not inhibited
            if let entry = s.output {
                status |= 0x01
                if entry & I8042Controller.fromAux != 0 { status |= 0x20 }
                if entry & I8042Controller.timeoutError != 0 { status |= 0x40 }
            }
            if s.ctr & CTR.systemFlag != 0 { status |= 0x04 }
            if s.lastWriteWasCommand { status |= 0x08 }
            return status
        }
    }

    fileprivate func writeCommand(_ command: UInt8) {
        var unknown = false
        let reset = state.withLock { s -> Bool in
            s.lastWriteWasCommand = true
            s.pendingCommand = nil
            var reset = false
            switch command {
            case 0x20...0x3F:
                s.enqueue(s.ram[Int(command & 0x1F)])
            case 0x60...0x7F, 0xD1, 0xD2, 0xD3, 0xD4:
                s.pendingCommand = command
            case 0xA4:                  // password installed? no
                s.enqueue(0xF1)
            case 0xA7:
                s.ctr |= CTR.auxDisabled
            case 0xA8:
                s.ctr &= ~CTR.auxDisabled
            case 0xA9, 0xAB:            // interface tests: no error
                s.enqueue(0x00)
            case 0xAA:                  // self-test passed
                s.ctr |= CTR.systemFlag
                s.enqueue(0x55)
            case 0xAD:
                s.ctr |= CTR.keyboardDisabled
            case 0xAE:
                s.ctr &= ~CTR.keyboardDisabled
            case 0xC0:                  // input port
                s.enqueue(0x00)
            case 0xD0:
                var port = s.outputPort
                if let entry = s.output {
                    port |= entry & I8042Controller.fromAux != 0 ? 0x20 : 0x10
                }
                s.enqueue(port)
            case 0xDD:
                s.outputPort &= ~0x02
            case 0xDF:
                s.outputPort |= 0x02
            case 0xE0:                  // test inputs
                s.enqueue(0x00)
            case 0xF0...0xFF:           // pulse output port bits whose mask bit is 0
                reset = command & 0x01 == 0
            default:
                unknown = true
            }
            s.updateLines(keyboard: keyboardIRQ, aux: auxIRQ)
            return reset
        }
        if unknown { log?.log("i8042: unknown command 0x\(String(command, radix: 16))") }
        if reset { events(.reset) }
    }
}

/// Port 0x60 of an `I8042Controller`.
private final class DataPort: PortDevice {
    let controller: I8042Controller
    init(controller: I8042Controller) { self.controller = controller }

    func portRead(offset: UInt16, size: Int) -> UInt32 {
        guard offset == 0 else { return PortAccess.mask(size) }
        return UInt32(controller.readData())
    }

    func portWrite(offset: UInt16, size: Int, value: UInt32) {
        guard offset == 0 else { return }
        controller.writeData(UInt8(truncatingIfNeeded: value))
    }
}

/// Port 0x64 of an `I8042Controller`.
private final class CommandPort: PortDevice {
    let controller: I8042Controller
    init(controller: I8042Controller) { self.controller = controller }

    func portRead(offset: UInt16, size: Int) -> UInt32 {
        guard offset == 0 else { return PortAccess.mask(size) }
        return UInt32(controller.readStatus())
    }

    func portWrite(offset: UInt16, size: Int, value: UInt32) {
        guard offset == 0 else { return }
        controller.writeCommand(UInt8(truncatingIfNeeded: value))
    }
}
