import KeelHyperV
import KeelSystem
import Testing

@Suite struct SynICTests {
    let slot2: UInt64 = 0x10000 + 0x200

    @Test func deliversIntoAFreeSlotAndInterrupts() throws {
        let f = Fixture()
        f.enableSynIC()
        let result = f.synic.post(message(0x11, size: 24), vp: 0, sint: 2)
        #expect(result == SynICPostResult(disposition: .delivered, interrupt: SynICInterrupt(vp: 0, vector: 0xF3)))
        #expect(f.u32(slot2) == 1)
        #expect(f.u8(slot2 + 4) == 24)
        #expect(f.u8(slot2 + 5) == 0)
        #expect(try f.memory.loadInteger(UInt64.self, at: slot2 + 8) == 7)
        #expect(try f.memory.read(at: slot2 + 16, count: 24) == [UInt8](repeating: 0x11, count: 24))
        #expect(f.u8(slot2 + 16 + 24) == 0)
        #expect(f.u32(0x10000) == 0)          // other slots untouched
    }

    @Test func busySlotSetsPendingThenEOMDelivers() throws {
        let f = Fixture()
        f.enableSynIC()
        #expect(f.synic.post(message(1), vp: 0, sint: 2).disposition == .delivered)
        // Slot busy: second message queues, pending flag set in the slot.
        #expect(f.synic.post(message(2), vp: 0, sint: 2) == SynICPostResult(disposition: .queued))
        #expect(f.u8(slot2 + 5) == 1)
        #expect(f.u8(slot2 + 16) == 1)        // first message intact
        #expect(f.synic.post(message(3), vp: 0, sint: 2).disposition == .queued)
        #expect(f.synic.registers(vp: 0)?.queuedMessages[2] == 2)
        // EOM without freeing the slot: nothing moves.
        #expect(f.msrs.write(HyperVMSR.eom, value: 0, vp: 0)
                == .acceptedWithEffect(.synICUpdated(SynICUpdate(vp: 0, msr: HyperVMSR.eom, interrupts: []))))
        // Guest frees the slot and writes EOM.
        try f.memory.storeInteger(UInt32(0), at: slot2)
        let outcome = f.msrs.write(HyperVMSR.eom, value: 0, vp: 0)
        #expect(outcome == .acceptedWithEffect(.synICUpdated(
            SynICUpdate(vp: 0, msr: HyperVMSR.eom, interrupts: [SynICInterrupt(vp: 0, vector: 0xF3)]))))
        #expect(f.u8(slot2 + 16) == 2)
        #expect(f.u8(slot2 + 5) == 1)         // one more queued behind it
        try f.memory.storeInteger(UInt32(0), at: slot2)
        _ = f.msrs.write(HyperVMSR.eom, value: 0, vp: 0)
        #expect(f.u8(slot2 + 16) == 3)
        #expect(f.u8(slot2 + 5) == 0)         // last one
        #expect(f.synic.registers(vp: 0)?.queuedMessages[2] == 0)
    }

    @Test func discardingDropsQueuedMessagesButNotTheSlot() throws {
        let f = Fixture()
        f.enableSynIC()
        #expect(f.synic.post(message(1), vp: 0, sint: 2).disposition == .delivered)
        #expect(f.synic.post(message(2), vp: 0, sint: 2).disposition == .queued)
        f.synic.discardQueuedMessages(sint: 2)
        f.synic.discardQueuedMessages(sint: 99)   // out of range: ignored
        #expect(f.synic.registers(vp: 0)?.queuedMessages[2] == 0)
        #expect(f.u8(slot2 + 16) == 1, "the guest's slot is left alone")
        try f.memory.storeInteger(UInt32(0), at: slot2)
        _ = f.msrs.write(HyperVMSR.eom, value: 0, vp: 0)
        #expect(f.u32(slot2) == 0, "nothing left to deliver")
    }

    @Test func guestClearingSlotWithoutEOMIsPickedUpByRetry() throws {
        let f = Fixture()
        f.enableSynIC()
        _ = f.synic.post(message(1), vp: 0, sint: 2)
        _ = f.synic.post(message(2), vp: 0, sint: 2)
        try f.memory.storeInteger(UInt32(0), at: slot2)
        #expect(f.synic.retryDelivery(vp: 0) == [SynICInterrupt(vp: 0, vector: 0xF3)])
        #expect(f.u8(slot2 + 16) == 2)
    }

    @Test func maskedSINTQueuesUntilUnmasked() throws {
        let f = Fixture()
        f.enableSynIC()
        _ = f.msrs.write(HyperVMSR.sint0 + 2, value: 0x100F3, vp: 0)
        #expect(f.synic.post(message(1), vp: 0, sint: 2) == SynICPostResult(disposition: .queued))
        #expect(f.u32(slot2) == 0)
        let outcome = f.msrs.write(HyperVMSR.sint0 + 2, value: 0xF3, vp: 0)
        #expect(outcome == .acceptedWithEffect(.synICUpdated(SynICUpdate(
            vp: 0, msr: HyperVMSR.sint0 + 2, interrupts: [SynICInterrupt(vp: 0, vector: 0xF3)]))))
        #expect(f.u32(slot2) == 1)
    }

    @Test func simpOrSynICDisabledQueues() throws {
        let f = Fixture()
        _ = f.msrs.write(HyperVMSR.sint0 + 2, value: 0xF3, vp: 1)
        _ = f.msrs.write(HyperVMSR.scontrol, value: 1, vp: 1)
        #expect(f.synic.post(message(1), vp: 1, sint: 2).disposition == .queued)   // SIMP disabled
        _ = f.msrs.write(HyperVMSR.scontrol, value: 0, vp: 1)
        #expect(f.msrs.write(HyperVMSR.simp, value: 0x20000 | 1, vp: 1)
                == .acceptedWithEffect(.synICUpdated(SynICUpdate(vp: 1, msr: HyperVMSR.simp, interrupts: []))))
        #expect(f.u32(0x20200) == 0)                                                // SCONTROL off
        _ = f.msrs.write(HyperVMSR.scontrol, value: 1, vp: 1)
        #expect(f.u32(0x20200) == 1)
    }

    @Test func pollingModeDeliversWithoutInterrupt() {
        let f = Fixture()
        f.enableSynIC()
        _ = f.msrs.write(HyperVMSR.sint0 + 2, value: 0xF3 | 1 << 18, vp: 0)
        #expect(f.synic.post(message(1), vp: 0, sint: 2) == SynICPostResult(disposition: .delivered))
    }

    @Test func simpOutsideGuestMemoryKeepsMessageQueued() {
        let f = Fixture()
        f.enableSynIC(simp: 0xFFFF_0000)
        #expect(f.synic.post(message(1), vp: 0, sint: 2).disposition == .queued)
    }

    @Test func queueIsBoundedAndDropsAreCounted() {
        let f = Fixture(queueLimit: 4)
        f.enableSynIC()
        _ = f.msrs.write(HyperVMSR.sint0 + 2, value: 0x100F3, vp: 0)   // guest never takes anything
        for i in 0..<4 { #expect(f.synic.post(message(UInt8(i)), vp: 0, sint: 2).disposition == .queued) }
        for i in 0..<10 { #expect(f.synic.post(message(UInt8(i)), vp: 0, sint: 2).disposition == .dropped) }
        let registers = f.synic.registers(vp: 0)
        #expect(registers?.queuedMessages[2] == 4)
        #expect(registers?.droppedMessages[2] == 10)
    }

    @Test func invalidTargets() {
        let f = Fixture()
        #expect(f.synic.post(message(1), vp: 2, sint: 2).disposition == .invalidTarget)
        #expect(f.synic.post(message(1), vp: 0, sint: 16).disposition == .invalidTarget)
        #expect(f.synic.signalEvent(vp: 0, sint: 2, flag: 2048) == .invalidTarget)
        #expect(f.synic.signalEvent(vp: -1, sint: 2, flag: 1) == .invalidTarget)
        #expect(f.synic.registers(vp: 9) == nil)
    }

    @Test func messageConstructionValidates() {
        #expect(throws: HyperVError.messagePayloadTooLarge(241)) { try SynICMessage(messageType: 1, payload: [UInt8](repeating: 0, count: 241)) }
        #expect(throws: HyperVError.messageTypeNone) { try SynICMessage(messageType: 0, payload: []) }
    }

    @Test func eventFlags() throws {
        let f = Fixture()
        #expect(f.synic.signalEvent(vp: 0, sint: 2, flag: 1) == .notEnabled)
        f.enableSynIC()
        let flags2: UInt64 = 0x11000 + 0x200
        #expect(f.synic.signalEvent(vp: 0, sint: 2, flag: 1) == .signalled(SynICInterrupt(vp: 0, vector: 0xF3)))
        #expect(f.u8(flags2) == 0b10)
        #expect(f.synic.signalEvent(vp: 0, sint: 2, flag: 1) == .alreadyPending)
        #expect(f.synic.signalEvent(vp: 0, sint: 2, flag: 2047) == .signalled(SynICInterrupt(vp: 0, vector: 0xF3)))
        #expect(f.u8(flags2 + 255) == 0x80)
        #expect(f.u8(flags2) == 0b10)
        // Guest clears the bit: the next signal interrupts again.
        try f.memory.storeInteger(UInt8(0), at: flags2)
        #expect(f.synic.signalEvent(vp: 0, sint: 2, flag: 1) == .signalled(SynICInterrupt(vp: 0, vector: 0xF3)))
        // Masked SINT: flag set, no interrupt.
        _ = f.msrs.write(HyperVMSR.sint0 + 2, value: 0x100F3, vp: 0)
        #expect(f.synic.signalEvent(vp: 0, sint: 2, flag: 3) == .signalled(nil))
        #expect(f.u8(flags2) == 0b1010)
        // SIEFP outside guest memory.
        _ = f.msrs.write(HyperVMSR.siefp, value: 0xFFFF_F000 | 1, vp: 0)
        #expect(f.synic.signalEvent(vp: 0, sint: 2, flag: 3) == .pageOutsideGuestMemory)
    }

    @Test func resetClearsQueuesAndRegisters() {
        let f = Fixture()
        f.enableSynIC()
        _ = f.synic.post(message(1), vp: 0, sint: 2)
        _ = f.synic.post(message(2), vp: 0, sint: 2)
        f.synic.reset()
        #expect(f.synic.registers(vp: 0) == SynICRegisters())
    }
}
