import KeelHyperV
import Testing

@Suite struct ReferenceTSCTests {
    @Test func scaleAndOffset() throws {
        let p = try #require(ReferenceTSCParameters(tscFrequencyHz: 2_500_000_000))
        #expect(p.offset == 0)
        // One second of TSC is 10^7 ticks (within rounding of the floor'd scale).
        let oneSecond = p.referenceTime(atGuestTSC: 2_500_000_000)
        #expect(oneSecond >= 9_999_999 && oneSecond <= 10_000_000)
        let shifted = try #require(ReferenceTSCParameters(tscFrequencyHz: 2_500_000_000, guestTSCAtStart: 5_000_000_000))
        #expect(shifted.referenceTime(atGuestTSC: 5_000_000_000) <= 1)
        #expect(ReferenceTSCParameters(tscFrequencyHz: 10_000_000) == nil)
        #expect(ReferenceTSCParameters(tscFrequencyHz: 0) == nil)
    }

    @Test func enablingWritesThePageWithANonZeroSequence() throws {
        let f = Fixture()
        let outcome = f.msrs.write(HyperVMSR.referenceTSC, value: 0x9000 | 1, vp: 0)
        #expect(outcome == .acceptedWithEffect(.referenceTSCPageInstalled(gpa: 0x9000, written: true)))
        #expect(f.msrs.read(HyperVMSR.referenceTSC, vp: 1) == 0x9001)
        let p = try #require(f.configuration.referenceTSC)
        #expect(try f.memory.loadInteger(UInt32.self, at: 0x9000) == 1)
        #expect(try f.memory.loadInteger(UInt64.self, at: 0x9008) == p.scale)
        #expect(try f.memory.loadInteger(Int64.self, at: 0x9010) == p.offset)
        // Re-enable bumps the sequence.
        _ = f.msrs.write(HyperVMSR.referenceTSC, value: 0x9000 | 1, vp: 0)
        #expect(try f.memory.loadInteger(UInt32.self, at: 0x9000) == 2)
        // Invalidating leaves sequence 0.
        #expect(f.msrs.updateReferenceTSC(nil))
        #expect(try f.memory.loadInteger(UInt32.self, at: 0x9000) == 0)
        let q = try #require(ReferenceTSCParameters(tscFrequencyHz: 3_000_000_000))
        #expect(f.msrs.updateReferenceTSC(q))
        #expect(try f.memory.loadInteger(UInt32.self, at: 0x9000) == 3)
        #expect(try f.memory.loadInteger(UInt64.self, at: 0x9008) == q.scale)
    }

    @Test func disabledPageIsNotWritten() throws {
        let f = Fixture()
        #expect(f.msrs.write(HyperVMSR.referenceTSC, value: 0x9000, vp: 0) == .accepted)
        #expect(try f.memory.read(at: 0x9000, count: 24).allSatisfy { $0 == 0 })
    }
}
