import KeelHyperV
import KeelSystem
import Synchronization
import Testing

@Suite struct HypercallTests {
    /// A dispatcher whose receivers record calls; connection 1 and 4 exist, 9 is back-pressured.
    final class Recorder: Sendable {
        let posted = Mutex<[PostedMessage]>([])
        let signalled = Mutex<[SignalEventRequest]>([])
        let memory = BufferGuestMemory(size: 0x10000)
        var dispatcher: HypercallDispatcher {
            HypercallDispatcher(memory: memory, postMessage: { m in
                if m.connectionID == 9 { return .insufficientBuffers }
                guard m.connectionID == 1 || m.connectionID == 4 else { return .invalidConnectionID }
                self.posted.withLock { $0.append(m) }
                return .success
            }, signalEvent: { s in
                guard s.connectionID == 0x2001 else { return .invalidConnectionID }
                self.signalled.withLock { $0.append(s) }
                return .success
            })
        }

        func writeInput(at gpa: UInt64 = 0x2000, connection: UInt32 = 4, reserved: UInt32 = 0, type: UInt32 = 1,
                        size: UInt32 = 40, fill: UInt8 = 0xAB) {
            try? memory.storeInteger(connection, at: gpa)
            try? memory.storeInteger(reserved, at: gpa + 4)
            try? memory.storeInteger(type, at: gpa + 8)
            try? memory.storeInteger(size, at: gpa + 12)
            try? memory.write([UInt8](repeating: fill, count: 240), at: gpa + 16)
        }
    }

    func post(_ r: Recorder, gpa: UInt64 = 0x2000, control: UInt64 = 0x5C) -> HvStatus {
        r.dispatcher.execute(HypercallRegisters(rcx: control, rdx: gpa), vp: 1).status
    }

    @Test func controlWordDecoding() {
        let c = HypercallControl(rawValue: 0x0123_0ABC_8001_005D | 0x2 << 17)
        #expect(c.callCode == 0x5D)
        #expect(c.isFast)
        #expect(c.variableHeaderSize == 2)
        #expect(c.isNested)
        #expect(c.repCount == 0xABC)
        #expect(c.repStartIndex == 0x123)
        #expect(!c.hasReservedBitsSet)
        #expect(HypercallControl(rawValue: 1 << 27).hasReservedBitsSet)
        #expect(HypercallControl(rawValue: 1 << 44).hasReservedBitsSet)
        #expect(HypercallControl(rawValue: 1 << 63).hasReservedBitsSet)
        #expect(HypercallResult(status: .invalidAlignment, repsCompleted: 3).rax == 0x3_0000_0004)
    }

    @Test func postMessageHappyPath() throws {
        let r = Recorder()
        r.writeInput()
        #expect(post(r) == .success)
        let posted = try #require(r.posted.withLock { $0.first })
        #expect(posted == PostedMessage(vp: 1, connectionID: 4, messageType: 1,
                                        payload: [UInt8](repeating: 0xAB, count: 40)))
        #expect(r.dispatcher.execute(HypercallRegisters(rcx: 0x5C, rdx: 0x2000), vp: 0).rax == 0)
    }

    @Test func postMessageErrors() {
        let r = Recorder()
        r.writeInput()
        #expect(post(r, control: 0x1005C) == .invalidHypercallCode)          // no fast form
        #expect(post(r, gpa: 0x2004) == .invalidAlignment)
        #expect(post(r, gpa: 0x2F08) == .invalidAlignment)                    // crosses a page
        #expect(post(r, gpa: 0x10000) == .invalidParameter)                   // outside guest memory
        #expect(post(r, gpa: 0xFFFF_FFFF_FFFF_FF00) == .invalidParameter)
        #expect(post(r, control: 0x5C | 1 << 32) == .invalidHypercallInput)  // rep count on non-rep call
        #expect(post(r, control: 0x5C | 1 << 48) == .invalidHypercallInput)  // rep start
        #expect(post(r, control: 0x5C | 1 << 17) == .invalidHypercallInput)  // variable header
        #expect(post(r, control: 0x5C | 1 << 28) == .invalidHypercallInput)  // reserved
        #expect(post(r, control: 0x5C | 1 << 31) == .invalidHypercallInput)  // nested
        r.writeInput(size: 241)
        #expect(post(r) == .invalidHypercallInput)
        r.writeInput(type: 0)
        #expect(post(r) == .invalidParameter)
        r.writeInput(type: 0x8000_0001)
        #expect(post(r) == .invalidParameter)
        r.writeInput(reserved: 1)
        #expect(post(r) == .invalidHypercallInput)
        r.writeInput(connection: 0x0100_0004)
        #expect(post(r) == .invalidHypercallInput)
        r.writeInput(connection: 7)
        #expect(post(r) == .invalidConnectionID)
        r.writeInput(connection: 9)
        #expect(post(r) == .insufficientBuffers)
        #expect(r.posted.withLock { $0.isEmpty })
        // Full 240-byte payload at the last legal position in a page.
        r.writeInput(at: 0x2F00, size: 240)
        #expect(post(r, gpa: 0x2F00) == .success)
        #expect(r.posted.withLock { $0.first?.payload.count } == 240)
    }

    @Test func unknownCallsAndUserMode() {
        let r = Recorder()
        for code: UInt64 in [0, 0x46, 0x5B, 0x5E, 0x8001, 0xFFFF, 0x1_0046] {
            #expect(r.dispatcher.execute(HypercallRegisters(rcx: code), vp: 0).status == .invalidHypercallCode)
        }
        #expect(r.dispatcher.execute(HypercallRegisters(rcx: 0x1005D, rdx: 0x2001, cpl: 3), vp: 0).status == .accessDenied)
    }

    @Test func signalEvent() {
        let r = Recorder()
        let d = r.dispatcher
        #expect(d.execute(HypercallRegisters(rcx: 0x1005D, rdx: 0x2001), vp: 1).status == .success)
        #expect(d.execute(HypercallRegisters(rcx: 0x1005D, rdx: 0x5_0000_2001), vp: 0).status == .success)
        #expect(r.signalled.withLock { $0 } == [SignalEventRequest(vp: 1, connectionID: 0x2001),
                                                SignalEventRequest(vp: 0, connectionID: 0x2001, flagNumber: 5)])
        #expect(d.execute(HypercallRegisters(rcx: 0x1005D, rdx: 0x2002), vp: 0).status == .invalidConnectionID)
        #expect(d.execute(HypercallRegisters(rcx: 0x1005D, rdx: 1 << 48 | 0x2001), vp: 0).status == .invalidHypercallInput)
        #expect(d.execute(HypercallRegisters(rcx: 0x1005D, rdx: 0xFF00_2001), vp: 0).status == .invalidHypercallInput)
        #expect(d.execute(HypercallRegisters(rcx: 0x1005D, rdx: 2048 << 32 | 0x2001), vp: 0).status == .invalidParameter)
        #expect(d.execute(HypercallRegisters(rcx: 0x1005D | 1 << 32, rdx: 0x2001), vp: 0).status == .invalidHypercallInput)
        // Slow form: 8-byte block in memory.
        try? r.memory.storeInteger(UInt64(0x2001), at: 0x3000)
        #expect(d.execute(HypercallRegisters(rcx: 0x5D, rdx: 0x3000), vp: 0).status == .success)
        #expect(d.execute(HypercallRegisters(rcx: 0x5D, rdx: 0x3004), vp: 0).status == .invalidAlignment)
        #expect(d.execute(HypercallRegisters(rcx: 0x5D, rdx: 0x20000), vp: 0).status == .invalidParameter)
        // Unmatched signal-event port write.
        #expect(d.signalEventPortWrite(connectionID: 0x2001, vp: 1) == .success)
        #expect(d.signalEventPortWrite(connectionID: 0x0100_2001, vp: 1) == .invalidHypercallInput)
        #expect(r.signalled.withLock { $0.count } == 4)
    }
}
