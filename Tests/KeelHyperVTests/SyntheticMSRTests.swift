import KeelHyperV
import Testing

@Suite struct SyntheticMSRTests {
    @Test func resetValues() {
        let f = Fixture()
        #expect(f.msrs.read(HyperVMSR.guestOSID, vp: 0) == 0)
        #expect(f.msrs.read(HyperVMSR.hypercall, vp: 0) == 0)
        #expect(f.msrs.read(HyperVMSR.vpIndex, vp: 1) == 1)
        #expect(f.msrs.read(HyperVMSR.scontrol, vp: 0) == 0)
        #expect(f.msrs.read(HyperVMSR.sversion, vp: 0) == 1)
        #expect(f.msrs.read(HyperVMSR.simp, vp: 0) == 0)
        #expect(f.msrs.read(HyperVMSR.siefp, vp: 0) == 0)
        #expect(f.msrs.read(HyperVMSR.eom, vp: 0) == 0)
        for msr in HyperVMSR.sint0...HyperVMSR.sint15 { #expect(f.msrs.read(msr, vp: 1) == 0x10000) }
        #expect(f.msrs.read(HyperVMSR.vpAssistPage, vp: 0) == 0)
        #expect(f.msrs.read(HyperVMSR.crashControl, vp: 0) == 0xC000_0000_0000_0000)
        #expect(f.msrs.read(HyperVMSR.tscFrequency, vp: 0) == 2_500_000_000)
        #expect(f.msrs.read(HyperVMSR.apicFrequency, vp: 0) == 1_000_000_000)
    }

    @Test func readBack() {
        let f = Fixture()
        #expect(f.msrs.write(HyperVMSR.guestOSID, value: 0x8100_0006_0C75_0000, vp: 0) == .accepted)
        #expect(f.msrs.read(HyperVMSR.guestOSID, vp: 1) == 0x8100_0006_0C75_0000)   // partition-wide
        #expect(f.msrs.write(HyperVMSR.vpAssistPage, value: 0x5000 | 1, vp: 1) == .accepted)
        #expect(f.msrs.read(HyperVMSR.vpAssistPage, vp: 1) == 0x5001)
        #expect(f.msrs.read(HyperVMSR.vpAssistPage, vp: 0) == 0)                    // per VP
        f.enableSynIC(vp: 1)
        #expect(f.msrs.read(HyperVMSR.simp, vp: 1) == 0x10001)
        #expect(f.msrs.read(HyperVMSR.siefp, vp: 1) == 0x11001)
        #expect(f.msrs.read(HyperVMSR.sint0 + 2, vp: 1) == 0xF3)
        #expect(f.msrs.read(HyperVMSR.scontrol, vp: 1) == 1)
        #expect(f.msrs.read(HyperVMSR.simp, vp: 0) == 0)
        #expect(f.msrs.write(HyperVMSR.crashP0 + 2, value: 42, vp: 0) == .accepted)
        #expect(f.msrs.read(HyperVMSR.crashP0 + 2, vp: 1) == 42)
    }

    @Test func timeRefCountComesFromTheInjectedClock() {
        let f = Fixture()
        f.clock.now.withLock { $0 = 123_456 }
        #expect(f.msrs.read(HyperVMSR.timeRefCount, vp: 0) == 123_456)
        #expect(f.msrs.write(HyperVMSR.timeRefCount, value: 1, vp: 0) == .rejected)
    }

    @Test func reservedBitsAndReadOnlyMSRsRaiseGP() {
        let f = Fixture()
        let rejected: [(UInt32, UInt64)] = [
            (HyperVMSR.hypercall, 0x1000 | 0x4 | 1),     // bits 11:2
            (HyperVMSR.vpIndex, 1),
            (HyperVMSR.sversion, 1),
            (HyperVMSR.tscFrequency, 1),
            (HyperVMSR.scontrol, 2),
            (HyperVMSR.simp, 0x10000 | 0x2 | 1),
            (HyperVMSR.siefp, 0x11000 | 0x800),
            (HyperVMSR.referenceTSC, 0x2000 | 0x10 | 1),
            (HyperVMSR.vpAssistPage, 0x3002),
            (HyperVMSR.sint0, 1 << 19 | 0xF3),             // reserved bit
            (HyperVMSR.sint0 + 2, 0x0F),                   // unmasked vector < 16
            (HyperVMSR.crashControl, 1),                   // reserved bit
            (HyperVMSR.tscInvariantControl, 1),            // not advertised
            (0x4000_0003, 0),                              // reset MSR: not implemented
            (0x4000_00B0, 0),                              // stimer: not advertised
        ]
        for (msr, value) in rejected {
            #expect(f.msrs.write(msr, value: value, vp: 0) == .rejected, "MSR \(String(msr, radix: 16))")
        }
        #expect(f.msrs.read(HyperVMSR.sint0 + 2, vp: 0) == 0x10000)
        #expect(f.msrs.read(HyperVMSR.simp, vp: 0) == 0)
        #expect(f.msrs.read(0x4000_0003, vp: 0) == nil)
        #expect(f.msrs.read(0x4000_01FF, vp: 0) == nil)
        // Masked SINT with a low vector is fine.
        #expect(f.msrs.write(HyperVMSR.sint0, value: 0x10005, vp: 0) != .rejected)
    }

    @Test func badVPIsRejected() {
        let f = Fixture()
        #expect(f.msrs.read(HyperVMSR.vpIndex, vp: 2) == nil)
        #expect(f.msrs.read(HyperVMSR.scontrol, vp: -1) == nil)
        #expect(f.msrs.write(HyperVMSR.guestOSID, value: 1, vp: 5) == .rejected)
        #expect(f.msrs.write(HyperVMSR.scontrol, value: 1, vp: 2) == .rejected)
    }

    @Test func unadvertisedMSRsWithoutTSCOrCrash() {
        let f = Fixture(tscFrequencyHz: nil, crash: false)
        #expect(f.msrs.read(HyperVMSR.referenceTSC, vp: 0) == nil)
        #expect(f.msrs.read(HyperVMSR.tscFrequency, vp: 0) == nil)
        #expect(f.msrs.read(HyperVMSR.crashControl, vp: 0) == nil)
        #expect(f.msrs.write(HyperVMSR.crashControl, value: 1 << 63, vp: 0) == .rejected)
    }

    @Test func invariantTSCControl() {
        let f = Fixture(invariantTSC: true)
        #expect(f.msrs.write(HyperVMSR.tscInvariantControl, value: 1, vp: 0) == .accepted)
        #expect(f.msrs.read(HyperVMSR.tscInvariantControl, vp: 1) == 1)
        #expect(f.msrs.write(HyperVMSR.tscInvariantControl, value: 2, vp: 0) == .rejected)
    }

    @Test func autoEOIIsReported() {
        let f = Fixture()
        let outcome = f.msrs.write(HyperVMSR.sint0 + 2, value: 0xF3 | 1 << 17, vp: 0)
        guard case .acceptedWithEffect(.synICUpdated(let update)) = outcome else {
            Issue.record("unexpected \(outcome)")
            return
        }
        #expect(update.autoEOIRequested)
        #expect(update.vp == 0)
    }
}
