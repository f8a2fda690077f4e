import KeelHyperV
import KeelSystem
import Synchronization
import Testing

/// Guest memory that frees the SIMP slot (type = 0) right after the host sets the pending flag,
/// as a guest VP running concurrently would.
final class FreeingMemory: GuestMemory {
    let inner = BufferGuestMemory(size: 1 << 20)
    let slot: UInt64
    let armed = Mutex(true)

    init(slot: UInt64) { self.slot = slot }

    func read(at address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        try inner.read(at: address, count: count)
    }

    func contains(_ address: UInt64, count: Int) -> Bool { inner.contains(address, count: count) }

    func write(_ bytes: [UInt8], at address: UInt64) throws(GuestMemoryError) {
        try inner.write(bytes, at: address)
        if address == slot + 5, armed.withLock({ let a = $0; $0 = false; return a }) {
            try inner.storeInteger(UInt32(0), at: slot)
        }
    }
}

@Suite struct SynICRaceTests {
    @Test func slotFreedWhileSettingPendingIsDeliveredAtOnce() throws {
        let memory = FreeingMemory(slot: 0x10200)
        let synic = SynIC(vpCount: 1, memory: memory)
        let msrs = SyntheticMSRs(configuration: HyperVConfiguration(vpCount: 1, hypercallPort: 0xE0),
                                 memory: memory, synic: synic, referenceTime: { 0 })
        _ = msrs.write(HyperVMSR.simp, value: 0x10001, vp: 0)
        _ = msrs.write(HyperVMSR.sint0 + 2, value: 0xF3, vp: 0)
        _ = msrs.write(HyperVMSR.scontrol, value: 1, vp: 0)
        try memory.storeInteger(UInt32(1), at: 0x10200)            // slot busy with an old message
        let result = synic.post(message(9), vp: 0, sint: 2)
        #expect(result == SynICPostResult(disposition: .delivered, interrupt: SynICInterrupt(vp: 0, vector: 0xF3)))
        #expect(try memory.loadInteger(UInt8.self, at: 0x10200 + 16) == 9)
        #expect(try memory.loadInteger(UInt8.self, at: 0x10200 + 5) == 0)
    }

    @Test func concurrentPostersNeverExceedTheBound() async {
        let f = Fixture(queueLimit: 8)
        f.enableSynIC()
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask { for i in 0..<50 { _ = f.synic.post(message(UInt8(truncatingIfNeeded: t * 50 + i)), vp: 0, sint: 2) } }
            }
        }
        let r = f.synic.registers(vp: 0)
        // One delivered into the slot, 8 queued, the rest dropped and counted.
        #expect(r?.queuedMessages[2] == 8)
        #expect(r?.droppedMessages[2] == 400 - 1 - 8)
    }
}
