import KeelSystem

/// One VP's SynIC: registers, per-SINT message FIFOs and the delivery algorithm of design §4.2,
/// all through `GuestMemory`. A value type; `SynIC` keeps one per VP behind a mutex, which also
/// serialises host-side producers per (VP, SINT).
struct SynICVPState: Sendable {
    var registers = SynICRegisters()
    private var queues = [[SynICMessage]](repeating: [], count: SynICLayout.sintCount)

    /// Queues `message` unless the SINT's FIFO is full (then counts the drop).
    mutating func enqueue(_ message: SynICMessage, sint: Int, limit: Int) -> Bool {
        guard queues[sint].count < limit else {
            registers.droppedMessages[sint] &+= 1
            return false
        }
        queues[sint].append(message)
        registers.queuedMessages[sint] = queues[sint].count
        return true
    }

    /// Delivers the head of SINT `sint`'s FIFO into its SIMP slot if possible; returns the
    /// interrupt to inject when a message was written (nil in polling mode or when nothing moved).
    mutating func deliverHead(sint: Int, vp: Int, memory: any GuestMemory) -> (delivered: Bool, interrupt: SynICInterrupt?) {
        guard let head = queues[sint].first,
              registers.scontrol & SynICRegister.enable != 0,
              let simp = SynICRegister.enabledPage(registers.simp),
              registers.sints[sint] & SynICRegister.sintMasked == 0 else { return (false, nil) }
        let slot = simp + UInt64(sint * SynICLayout.slotSize)
        do {
            if try memory.loadInteger(UInt32.self, at: slot) != 0 {
                // Busy: ask the guest for an EOM, then look again in case it freed the slot meanwhile.
                let flags = try memory.loadInteger(UInt8.self, at: slot + SynICLayout.flagsOffset)
                try memory.storeInteger(flags | SynICLayout.messagePendingFlag, at: slot + SynICLayout.flagsOffset)
                if try memory.loadInteger(UInt32.self, at: slot) != 0 { return (false, nil) }
            }
            let more = queues[sint].count > 1
            try memory.write(head.slotBodyBytes(morePending: more), at: slot + 4)
            try memory.storeInteger(head.messageType, at: slot)   // type last: publishes the slot
        } catch {
            return (false, nil)   // SIMP outside guest memory: keep the message queued
        }
        queues[sint].removeFirst()
        registers.queuedMessages[sint] = queues[sint].count
        return (true, registers.interruptVector(sint: sint).map { SynICInterrupt(vp: vp, vector: $0) })
    }

    /// Retries every SINT (after EOM or a SynIC register write).
    mutating func deliverAll(vp: Int, memory: any GuestMemory) -> [SynICInterrupt] {
        var interrupts: [SynICInterrupt] = []
        for sint in 0..<SynICLayout.sintCount where !queues[sint].isEmpty {
            if let irq = deliverHead(sint: sint, vp: vp, memory: memory).interrupt, !interrupts.contains(irq) {
                interrupts.append(irq)
            }
        }
        return interrupts
    }

    /// Sets event flag `flag` of SINT `sint` in the SIEFP page (byte read-modify-write; the
    /// guest only ever clears bits, so a race can at worst re-raise an already handled flag).
    mutating func setEventFlag(sint: Int, flag: Int, vp: Int, memory: any GuestMemory) -> SynICEventResult {
        guard let siefp = SynICRegister.enabledPage(registers.siefp) else { return .notEnabled }
        let address = siefp + UInt64(sint * SynICLayout.slotSize + flag / 8)
        let bit = UInt8(1) << UInt8(flag % 8)
        do {
            if try memory.setBits(bit, at: address) & bit != 0 { return .alreadyPending }
        } catch {
            return .pageOutsideGuestMemory
        }
        return .signalled(registers.interruptVector(sint: sint).map { SynICInterrupt(vp: vp, vector: $0) })
    }

    /// Drops the messages still queued for SINT `sint`.
    mutating func discardQueue(sint: Int) {
        queues[sint] = []
        registers.queuedMessages[sint] = 0
    }

    /// Drops all queued messages and resets the registers (VP reset / reboot).
    mutating func reset() {
        self = SynICVPState()
    }
}
