import KeelHyperV
import Testing

@Suite struct PartitionResetTests {
    @Test func resetRestoresResetValues() {
        let f = Fixture()
        _ = f.msrs.write(HyperVMSR.guestOSID, value: 5, vp: 0)
        _ = f.msrs.write(HyperVMSR.hypercall, value: 0x7001, vp: 0)
        _ = f.msrs.write(HyperVMSR.vpAssistPage, value: 0x5001, vp: 1)
        _ = f.msrs.write(HyperVMSR.crashP0, value: 5, vp: 1)
        f.enableSynIC()
        f.msrs.reset()
        for msr in [HyperVMSR.guestOSID, HyperVMSR.hypercall, HyperVMSR.crashP0, HyperVMSR.simp, HyperVMSR.scontrol] {
            #expect(f.msrs.read(msr, vp: 0) == 0)
        }
        #expect(f.msrs.read(HyperVMSR.vpAssistPage, vp: 1) == 0)
        #expect(f.msrs.read(HyperVMSR.sint0 + 2, vp: 0) == 0x10000)
    }
}
