import KeelHyperV
import KeelSystem
import Synchronization

/// A small partition for tests: 2 VPs, 1 MiB of RAM at 0, TSC at 2.5 GHz.
struct Fixture {
    static let hcPort: UInt8 = 0xE0
    static let sePort: UInt8 = 0xE1
    let memory = BufferGuestMemory(size: 1 << 20)
    let configuration: HyperVConfiguration
    let synic: SynIC
    let msrs: SyntheticMSRs
    let clock = TestClock()

    init(tscFrequencyHz: UInt64? = 2_500_000_000, crash: Bool = true, invariantTSC: Bool = false, queueLimit: Int = 4) {
        configuration = HyperVConfiguration(vpCount: 2, hypercallPort: Self.hcPort, signalEventPort: Self.sePort,
                                            tscFrequencyHz: tscFrequencyHz, invariantTSC: invariantTSC,
                                            crashMSRs: crash, messageQueueLimit: queueLimit)
        synic = SynIC(vpCount: 2, memory: memory, queueLimit: queueLimit)
        let clock = self.clock
        msrs = SyntheticMSRs(configuration: configuration, memory: memory, synic: synic,
                             referenceTime: { clock.now.withLock { $0 } })
    }

    /// Programs VP `vp` like Linux's hv_vmbus: SIMP, SIEFP, SINT2 = 0xF3, SCONTROL = 1.
    func enableSynIC(vp: Int = 0, simp: UInt64 = 0x10000, siefp: UInt64 = 0x11000) {
        _ = msrs.write(HyperVMSR.simp, value: simp | 1, vp: vp)
        _ = msrs.write(HyperVMSR.siefp, value: siefp | 1, vp: vp)
        _ = msrs.write(HyperVMSR.sint0 + 2, value: 0xF3, vp: vp)
        _ = msrs.write(HyperVMSR.scontrol, value: 1, vp: vp)
    }

    func u32(_ gpa: UInt64) -> UInt32 { (try? memory.loadInteger(UInt32.self, at: gpa)) ?? 0xDEAD_BEEF }
    func u8(_ gpa: UInt64) -> UInt8 { (try? memory.loadInteger(UInt8.self, at: gpa)) ?? 0xEE }
}

func message(_ byte: UInt8, size: Int = 16) -> SynICMessage {
    // Force-try is acceptable in tests: sizes are constants below the limit.
    try! SynICMessage(messageType: 1, sender: 7, payload: [UInt8](repeating: byte, count: size))
}

/// A settable reference clock.
final class TestClock: Sendable {
    let now = Mutex<UInt64>(0)
}
