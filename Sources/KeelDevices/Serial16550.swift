import Synchronization

/// An NS16550A UART, as at COM1 (register at port 0x3F8, length 8, ISA IRQ 4).
///
/// Transmission is immediate: each byte written to THR goes straight to `output`, and the
/// transmitter is always empty again afterwards (LSR.THRE and TEMT always read 1). Host input
/// is queued with `enqueueInput(_:)` into a bounded backlog (the "wire") and moves from there
/// into the 16-byte receive FIFO (1 byte when FIFOs are disabled) as the guest drains it, so a
/// host can never overrun the guest nor grow memory. Clearing the receive FIFO via FCR drops
/// only what is in the FIFO; the backlog keeps flowing.
///
/// Interrupt sources, highest priority first: receiver line status (overrun in loopback),
/// receive data (at or above the trigger level: IIR 0x04; below it: character timeout 0x0C,
/// reported at once), THR empty, modem status. The IRQ output is inactive in loopback mode.
/// Unlike a PC board it is not gated by MCR.OUT2 (QEMU does the same): with the gate, Debian's
/// 6.12 kernel lost its transmit interrupt after `/init` started and the console stalled. The
/// line is driven only on level changes.
///
/// Accesses wider than one byte act on the low byte at the accessed offset; reads return the
/// register zero-extended.
public final class Serial16550: PortDevice {
    /// Capacity of the host input backlog.
    public static let defaultInputCapacity = 4096

    private static let fifoDepth = 16

    private struct State {
        var ier: UInt8 = 0
        var lcr: UInt8 = 0
        var mcr: UInt8 = 0
        var lsrErrors: UInt8 = 0      // LSR bits 1-4 (we only ever produce OE, bit 1)
        var msrDelta: UInt8 = 0       // MSR bits 0-3
        var scratch: UInt8 = 0
        var divisorLow: UInt8 = 1
        var divisorHigh: UInt8 = 0
        var fifoEnabled = false
        var triggerLevel = 1
        var thrEmptyPending = false
        var rx = FixedRing<UInt8>(capacity: Serial16550.fifoDepth, filler: 0)
        var backlog: FixedRing<UInt8>
        var lineAsserted = false

        var loopback: Bool { mcr & 0x10 != 0 }
        var rxDepth: Int { fifoEnabled ? Serial16550.fifoDepth : 1 }

        /// MSR bits 4-7: in loopback they mirror MCR; otherwise a terminal is "connected"
        /// (CTS, DSR, DCD asserted, RI clear).
        var modemStatus: UInt8 {
            guard loopback else { return 0xB0 }
            var s: UInt8 = 0
            if mcr & 0x02 != 0 { s |= 0x10 }  // RTS -> CTS
            if mcr & 0x01 != 0 { s |= 0x20 }  // DTR -> DSR
            if mcr & 0x04 != 0 { s |= 0x40 }  // OUT1 -> RI
            if mcr & 0x08 != 0 { s |= 0x80 }  // OUT2 -> DCD
            return s
        }

        /// IIR bits 0-3 for the highest-priority enabled pending source (0x01: none).
        var interruptID: UInt8 {
            if ier & 0x04 != 0 && lsrErrors != 0 { return 0x06 }
            if ier & 0x01 != 0 && rx.count > 0 {
                return fifoEnabled && rx.count < triggerLevel ? 0x0C : 0x04
            }
            if ier & 0x02 != 0 && thrEmptyPending { return 0x02 }
            if ier & 0x08 != 0 && msrDelta != 0 { return 0x00 }
            return 0x01
        }

        mutating func refill() {
            guard !loopback else { return }
            while rx.count < rxDepth, let byte = backlog.pop() {
                rx.push(byte)
            }
        }

        mutating func setMCR(_ value: UInt8) {
            let before = modemStatus
            mcr = value & 0x1F
            let after = modemStatus
            let changed = before ^ after
            if changed & 0x10 != 0 { msrDelta |= 0x01 }
            if changed & 0x20 != 0 { msrDelta |= 0x02 }
            if before & 0x40 != 0 && after & 0x40 == 0 { msrDelta |= 0x04 }
            if changed & 0x80 != 0 { msrDelta |= 0x08 }
            refill()
        }

        mutating func updateLine(_ irq: any InterruptLine) {
            let level = interruptID != 0x01 && !loopback
            if level != lineAsserted {
                lineAsserted = level
                irq.setLevel(level)
            }
        }
    }

    private let irq: any InterruptLine
    private let output: @Sendable (UInt8) -> Void
    private let log: RateLimitedLog?
    private let state: Mutex<State>

    /// - Parameters:
    ///   - irq: the UART's interrupt pin (IRQ 4 for COM1).
    ///   - inputCapacity: bytes of host input buffered before `enqueueInput` refuses more.
    ///   - log: rate-limited log for guest misbehaviour (odd access sizes).
    ///   - output: receives each byte the guest transmits, in order (called from vCPU threads,
    ///     outside the device lock; keep it short).
    public init(
        irq: any InterruptLine,
        inputCapacity: Int = Serial16550.defaultInputCapacity,
        log: RateLimitedLog? = nil,
        output: @escaping @Sendable (UInt8) -> Void
    ) {
        self.irq = irq
        self.output = output
        self.log = log
        self.state = Mutex(State(backlog: FixedRing(capacity: max(1, inputCapacity), filler: 0)))
    }

    // MARK: Host side

    /// Queues host input for the guest. Returns how many leading bytes of `bytes` were
    /// accepted; the rest must be offered again once `hasRoom` is true.
    @discardableResult
    public func enqueueInput(_ bytes: some Collection<UInt8>) -> Int {
        state.withLock { s in
            var accepted = 0
            s.refill()
            for byte in bytes {
                if s.backlog.isEmpty && !s.loopback && s.rx.count < s.rxDepth {
                    s.rx.push(byte)
                } else if !s.backlog.push(byte) {
                    break
                }
                accepted += 1
            }
            s.updateLine(irq)
            return accepted
        }
    }

    /// Whether `enqueueInput` would accept at least one byte now. The input thread polls this
    /// (e.g. every few milliseconds) after a partial enqueue.
    public var hasRoom: Bool { state.withLock { !$0.backlog.isFull } }

    /// Free space in the host input backlog, in bytes.
    public var inputSpace: Int { state.withLock { $0.backlog.freeSpace } }

    // MARK: Guest side

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        if size != 1 { log?.log("serial: \(size)-byte read at offset \(offset)") }
        guard offset < 8 else { return PortAccess.mask(size) }
        return UInt32(state.withLock { s -> UInt8 in
            switch offset {
            case 0:
                if s.lcr & 0x80 != 0 { return s.divisorLow }
                let byte = s.rx.pop() ?? 0
                s.refill()
                s.updateLine(irq)
                return byte
            case 1:
                return s.lcr & 0x80 != 0 ? s.divisorHigh : s.ier
            case 2:
                let id = s.interruptID
                if id == 0x02 { s.thrEmptyPending = false }
                s.updateLine(irq)
                return id | (s.fifoEnabled ? 0xC0 : 0)
            case 3:
                return s.lcr
            case 4:
                return s.mcr
            case 5:
                let value = 0x60 | s.lsrErrors | (s.rx.count > 0 ? 0x01 : 0)
                s.lsrErrors = 0
                s.updateLine(irq)
                return value
            case 6:
                let value = s.modemStatus | s.msrDelta
                s.msrDelta = 0
                s.updateLine(irq)
                return value
            default:
                return s.scratch
            }
        })
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        if size != 1 { log?.log("serial: \(size)-byte write at offset \(offset)") }
        guard offset < 8 else { return }
        let byte = UInt8(truncatingIfNeeded: value)
        let transmitted: UInt8? = state.withLock { s in
            var out: UInt8? = nil
            switch offset {
            case 0:
                if s.lcr & 0x80 != 0 {
                    s.divisorLow = byte
                    return nil
                }
                // The write clears THRE (the line drops if THRE held it up)...
                s.thrEmptyPending = false
                s.updateLine(irq)
                if s.loopback {
                    if s.rx.count < s.rxDepth { s.rx.push(byte) } else { s.lsrErrors |= 0x02 }
                } else {
                    out = byte
                }
                // ...and the byte leaves at once, so THR is empty again and THRE rises anew:
                // a fresh edge for the edge-triggered ISA interrupt pin, as on hardware.
                s.thrEmptyPending = true
            case 1:
                if s.lcr & 0x80 != 0 {
                    s.divisorHigh = byte
                    return nil
                }
                let old = s.ier
                s.ier = byte & 0x0F
                if s.ier & 0x02 == 0 {
                    s.thrEmptyPending = false
                } else if old & 0x02 == 0 {
                    s.thrEmptyPending = true   // THR is always empty
                }
            case 2:
                let enable = byte & 0x01 != 0
                if enable != s.fifoEnabled {
                    s.rx.removeAll()
                    s.fifoEnabled = enable
                }
                if enable {
                    if byte & 0x02 != 0 { s.rx.removeAll() }
                    switch byte >> 6 {
                    case 0: s.triggerLevel = 1
                    case 1: s.triggerLevel = 4
                    case 2: s.triggerLevel = 8
                    default: s.triggerLevel = 14
                    }
                }
                s.refill()
            case 3:
                s.lcr = byte
            case 4:
                s.setMCR(byte)
            case 7:
                s.scratch = byte
            default:
                break   // LSR and MSR are read-only
            }
            s.updateLine(irq)
            return out
        }
        if let transmitted { output(transmitted) }
    }
}
