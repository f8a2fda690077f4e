import KeelHyperV
import Testing

@Suite struct CrashReportTests {
    func crash(_ f: Fixture, p: [UInt64], control: UInt64) -> GuestCrashReport? {
        for (i, v) in p.enumerated() { _ = f.msrs.write(HyperVMSR.crashP0 + UInt32(i), value: v, vp: 0) }
        guard case .acceptedWithEffect(.guestCrashed(let report)) = f.msrs.write(HyperVMSR.crashControl, value: control, vp: 1)
        else { return nil }
        return report
    }

    @Test func registersOnly() throws {
        let f = Fixture()
        let report = try #require(crash(f, p: [1, 2, 3, 4, 5], control: 1 << 63))
        #expect(report.parameters == [1, 2, 3, 4, 5])
        #expect(report.message == nil)
        #expect(f.msrs.write(HyperVMSR.crashControl, value: 0, vp: 0) == .accepted)
    }

    @Test func messageFromGuestMemory() throws {
        let f = Fixture()
        let text = "Kernel panic - not syncing: test"
        try f.memory.write(Array(text.utf8) + [0, 0x41], at: 0x4000)
        let report = try #require(crash(f, p: [0, 0, 0, 0x4000, UInt64(text.utf8.count + 2)], control: 3 << 62))
        #expect(report.message == text)
        #expect(!report.messageTruncated)
        #expect(report.messageError == nil)
    }

    @Test func oversizedMessageIsBounded() throws {
        let f = Fixture()
        try f.memory.write([UInt8](repeating: 0x41, count: 8192), at: 0x4000)
        let report = try #require(crash(f, p: [0, 0, 0, 0x4000, UInt64.max], control: 3 << 62))
        #expect(report.message?.utf8.count == GuestCrashReport.maxMessageBytes)
        #expect(report.messageTruncated)
    }

    @Test func outOfRangeMessagePointer() throws {
        let f = Fixture()
        for gpa: UInt64 in [0x10_0000, 0xFFFF_FFFF_FFFF_FFF0, 0xFFF00] {
            let report = try #require(crash(f, p: [0, 0, 0, gpa, 0x1000], control: 3 << 62))
            #expect(report.message == nil)
            #expect(report.messageError != nil)
        }
    }
}
