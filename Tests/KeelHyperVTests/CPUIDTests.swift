import KeelHyperV
import Testing

@Suite struct CPUIDTests {
    @Test func recommendedLeavesWithTSCPageAndInvariantTSC() throws {
        let cpuid = HyperVCPUID(Fixture(invariantTSC: true).configuration)
        let vendor = try #require(cpuid.leaf(0x4000_0000))
        #expect(vendor.eax == 0x4000_000A)
        let bytes = [vendor.ebx, vendor.ecx, vendor.edx].flatMap { r in (0..<4).map { UInt8(truncatingIfNeeded: r >> (8 * $0)) } }
        #expect(String(decoding: bytes, as: UTF8.self) == "Microsoft Hv")
        #expect(cpuid.leaf(0x4000_0001)?.eax == 0x3123_7648)
        let features = try #require(cpuid.leaf(0x4000_0003))
        #expect(features.eax == 0x8A66)
        #expect(features.ebx == 0x30)
        #expect(features.edx == 0x500)
        let hints = try #require(cpuid.leaf(0x4000_0004))
        #expect(hints.eax == 0x220)
        #expect(hints.eax & (1 << 12) == 0)
        #expect(cpuid.leaf(0x4000_0005)?.eax == 2)
        #expect(cpuid.leaves.map(\.function) == Array(0x4000_0000...0x4000_000A))
        #expect(cpuid.leaf(0x4000_000B) == nil)
    }

    @Test func neverClaimsRootPartitionIdOrIsolation() throws {
        for tsc in [nil, UInt64(3_000_000_000)] {
            let ebx = try #require(HyperVCPUID(Fixture(tscFrequencyHz: tsc).configuration).leaf(0x4000_0003)).ebx
            #expect(ebx & (1 << 12 | 1 << 1 | 1 << 22) == 0)
        }
    }

    @Test func withoutTSCFrequencyNoTSCPageOrFrequencyMSRs() throws {
        let leaf = try #require(HyperVCPUID(Fixture(tscFrequencyHz: nil, crash: false).configuration).leaf(0x4000_0003))
        #expect(leaf.eax == 0x66)   // ref counter, SynIC, hypercall, VP index
        #expect(leaf.edx == 0)
    }
}
