import Synchronization

/// ACPI fixed hardware: the PM1a event block (PM1_STS at +0, write-1-to-clear; PM1_EN at +2;
/// 4 bytes) and the PM1a control block (PM1_CNT, 2 bytes), each registered at the port the
/// FADT names (`eventBlock`, length 4; `controlBlock`, length 2).
///
/// SCI_EN (PM1_CNT bit 0) always reads 1: the platform is born in ACPI mode, so the FADT needs
/// no SMI command port. Writing SLP_EN (bit 13) with SLP_TYP (bits 10-12) equal to the
/// `_S5` value given at init raises `SystemEvent.powerOff`. Other sleep types are not
/// supported: no event is raised and WAK_STS is set at once, so a guest that tries anyway
/// resumes instead of spinning forever on WAK_STS.
///
/// `pressPowerButton()` sets PWRBTN_STS; while any enabled status bit is set and SCI_EN is on,
/// the optional `sci` line is asserted (a graceful-shutdown request path). Narrow and wide
/// accesses are handled byte by byte; bytes beyond a block read 0xFF and ignore writes.
public final class ACPIPowerManagement: Sendable {
    private enum Bit {
        static let powerButtonStatus: UInt16 = 0x0100
        static let wakeStatus: UInt16 = 0x8000
        static let sciEnable: UInt16 = 0x0001
        static let globalRelease: UInt16 = 0x0004
        static let sleepEnable: UInt16 = 0x2000
    }

    private struct State {
        var status: UInt16 = 0
        var enable: UInt16 = 0
        var control: UInt16 = Bit.sciEnable
        var sciAsserted = false

        mutating func updateSCI(_ sci: (any InterruptLine)?) {
            let level = status & enable & 0x7FFF != 0
            if level != sciAsserted {
                sciAsserted = level
                sci?.setLevel(level)
            }
        }
    }

    private let s5SleepType: UInt8
    private let events: SystemEventSink
    private let sci: (any InterruptLine)?
    private let log: RateLimitedLog?
    private let state = Mutex(State())

    /// - Parameters:
    ///   - s5SleepType: SLP_TYP of the DSDT's `_S5` package (0-7).
    ///   - sci: the SCI line (the FADT's SCI_INT), or nil when no events are signalled.
    ///   - events: receives `.powerOff`.
    ///   - log: rate-limited log for unsupported sleep requests.
    public init(s5SleepType: UInt8, sci: (any InterruptLine)? = nil,
                events: @escaping SystemEventSink, log: RateLimitedLog? = nil) {
        self.s5SleepType = s5SleepType & 0x07
        self.sci = sci
        self.events = events
        self.log = log
    }

    /// PM1a_EVT_BLK; register at the FADT's event block port, length 4.
    public var eventBlock: any PortDevice { EventBlock(pm: self) }
    /// PM1a_CNT_BLK; register at the FADT's control block port, length 2.
    public var controlBlock: any PortDevice { ControlBlock(pm: self) }

    /// Signals a fixed-feature power button press (the guest decides what to do).
    public func pressPowerButton() {
        state.withLock { s in
            s.status |= Bit.powerButtonStatus
            s.updateSCI(sci)
        }
    }

    // MARK: Event block

    fileprivate func readEvent(offset: Int, size: Int) -> UInt32 {
        state.withLock { s in
            var value: UInt32 = 0
            for i in 0..<PortAccess.clampedSize(size) {
                let byte: UInt16
                switch offset + i {
                case 0, 1: byte = s.status >> (8 * UInt16(offset + i))
                case 2, 3: byte = s.enable >> (8 * UInt16(offset + i - 2))
                default: byte = 0xFF
                }
                value |= UInt32(byte & 0xFF) << (8 * UInt32(i))
            }
            return value
        }
    }

    fileprivate func writeEvent(offset: Int, size: Int, value: UInt32) {
        state.withLock { s in
            for i in 0..<PortAccess.clampedSize(size) {
                let byte = UInt16(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))))
                switch offset + i {
                case 0: s.status &= ~byte
                case 1: s.status &= ~(byte << 8)
                case 2: s.enable = (s.enable & 0xFF00) | byte
                case 3: s.enable = (s.enable & 0x00FF) | (byte << 8)
                default: break
                }
            }
            s.updateSCI(sci)
        }
    }

    // MARK: Control block

    fileprivate func readControl(offset: Int, size: Int) -> UInt32 {
        state.withLock { s in
            var value: UInt32 = 0
            for i in 0..<PortAccess.clampedSize(size) {
                let byte: UInt16
                switch offset + i {
                case 0: byte = s.control & 0xFF
                case 1: byte = s.control >> 8
                default: byte = 0xFF
                }
                value |= UInt32(byte) << (8 * UInt32(i))
            }
            return value
        }
    }

    fileprivate func writeControl(offset: Int, size: Int, value: UInt32) {
        let (sleeping, sleepType) = state.withLock { s -> (Bool, UInt8) in
            var written = s.control
            var wroteHighByte = false
            for i in 0..<PortAccess.clampedSize(size) {
                let byte = UInt16(UInt8(truncatingIfNeeded: value >> (8 * UInt32(i))))
                switch offset + i {
                case 0: written = (written & 0xFF00) | byte
                case 1:
                    written = (written & 0x00FF) | (byte << 8)
                    wroteHighByte = true
                default: break
                }
            }
            let sleepType = UInt8((written >> 10) & 0x07)
            let sleeping = wroteHighByte && written & Bit.sleepEnable != 0
            s.control = (written & ~(Bit.sleepEnable | Bit.globalRelease)) | Bit.sciEnable
            if sleeping && sleepType != s5SleepType {
                s.status |= Bit.wakeStatus
            }
            s.updateSCI(sci)
            return (sleeping, sleepType)
        }
        guard sleeping else { return }
        if sleepType == s5SleepType {
            events(.powerOff)
        } else {
            log?.log("acpi: unsupported sleep type \(sleepType) requested; waking at once")
        }
    }
}

/// PM1a_EVT_BLK of an `ACPIPowerManagement`.
private final class EventBlock: PortDevice {
    let pm: ACPIPowerManagement
    init(pm: ACPIPowerManagement) { self.pm = pm }
    func portRead(offset: UInt16, size: Int) -> UInt32 { pm.readEvent(offset: Int(offset), size: size) }
    func portWrite(offset: UInt16, size: Int, value: UInt32) {
        pm.writeEvent(offset: Int(offset), size: size, value: value)
    }
}

/// PM1a_CNT_BLK of an `ACPIPowerManagement`.
private final class ControlBlock: PortDevice {
    let pm: ACPIPowerManagement
    init(pm: ACPIPowerManagement) { self.pm = pm }
    func portRead(offset: UInt16, size: Int) -> UInt32 { pm.readControl(offset: Int(offset), size: size) }
    func portWrite(offset: UInt16, size: Int, value: UInt32) {
        pm.writeControl(offset: Int(offset), size: size, value: value)
    }
}
