import KeelHyperV
import Testing

@Suite struct HypercallPageTests {
    @Test func fastPathPageBytes() {
        let page = HypercallPage(hypercallPort: 0xE0, signalEventPort: 0xE1)
        #expect(page.code == [0xF3, 0x0F, 0x1E, 0xFA, 0x48, 0x81, 0xF9, 0x5D, 0x00, 0x01, 0x00, 0x75, 0x07,
                              0x89, 0xD0, 0xE7, 0xE1, 0x31, 0xC0, 0xC3, 0xE7, 0xE0, 0xC3])
        #expect(page.bytes.count == 4096)
        #expect(page.bytes[23...].allSatisfy { $0 == 0xCC })
    }

    @Test func minimalPageBytes() {
        #expect(HypercallPage(hypercallPort: 0x42).code == [0xF3, 0x0F, 0x1E, 0xFA, 0xE7, 0x42, 0xC3])
    }

    @Test func enablingWritesThePageAtTheGPFN() throws {
        let f = Fixture()
        #expect(f.msrs.write(HyperVMSR.guestOSID, value: 0x8100_0006_0100_0000, vp: 0) == .accepted)
        let outcome = f.msrs.write(HyperVMSR.hypercall, value: 0x7000 | 1, vp: 0)
        #expect(outcome == .acceptedWithEffect(.hypercallPageInstalled(gpa: 0x7000, written: true)))
        #expect(f.msrs.read(HyperVMSR.hypercall, vp: 1) == 0x7001)
        let expected = HypercallPage(hypercallPort: Fixture.hcPort, signalEventPort: Fixture.sePort).bytes
        #expect(try f.memory.read(at: 0x7000, count: 4096) == expected)
        #expect(try f.memory.read(at: 0x6000, count: 4096).allSatisfy { $0 == 0 })
        #expect(try f.memory.read(at: 0x8000, count: 4096).allSatisfy { $0 == 0 })
    }

    @Test func disabledOrNoGuestOSIDWritesNothing() throws {
        let f = Fixture()
        // Guest OS id still 0: the enable bit does not stick and no page is written.
        #expect(f.msrs.write(HyperVMSR.hypercall, value: 0x7000 | 1, vp: 0) == .accepted)
        #expect(f.msrs.read(HyperVMSR.hypercall, vp: 0) == 0x7000)
        _ = f.msrs.write(HyperVMSR.guestOSID, value: 1, vp: 0)
        #expect(f.msrs.write(HyperVMSR.hypercall, value: 0x7000, vp: 0) == .accepted)
        #expect(try f.memory.read(at: 0x7000, count: 4096).allSatisfy { $0 == 0 })
    }

    @Test func pageOutsideGuestMemoryIsAcceptedButReported() {
        let f = Fixture()
        _ = f.msrs.write(HyperVMSR.guestOSID, value: 1, vp: 0)
        let outcome = f.msrs.write(HyperVMSR.hypercall, value: 0xFFFF_F000 | 1, vp: 0)
        #expect(outcome == .acceptedWithEffect(.hypercallPageInstalled(gpa: 0xFFFF_F000, written: false)))
    }

    @Test func lockedHypercallMSRIgnoresWrites() {
        let f = Fixture()
        _ = f.msrs.write(HyperVMSR.guestOSID, value: 1, vp: 0)
        _ = f.msrs.write(HyperVMSR.hypercall, value: 0x7000 | 3, vp: 0)
        #expect(f.msrs.write(HyperVMSR.hypercall, value: 0, vp: 0) == .accepted)
        #expect(f.msrs.read(HyperVMSR.hypercall, vp: 0) == 0x7003)
    }
}
