import Testing
@testable import KeelPlatform

@Suite struct CpuidTests {
    /// A plausible KVM_GET_SUPPORTED_CPUID subset.
    let host: [CpuidEntry] = [
        CpuidEntry(function: 0, eax: 0x1F, ebx: 0x756E_6547, ecx: 0x6C65_746E, edx: 0x4965_6E69),
        CpuidEntry(function: 1, eax: 0x906EA, ebx: 0x0010_0800, ecx: 0x7FFA_3203, edx: 0x178B_FBFF),
        CpuidEntry(function: 4, index: 0, flags: 1, eax: 0x1C00_4121, ebx: 0x01C0_003F),
        CpuidEntry(function: 4, index: 1, flags: 1, eax: 0x1C00_4122),
        CpuidEntry(function: 4, index: 2, flags: 1, eax: 0x1C00_4143),
        CpuidEntry(function: 4, index: 3, flags: 1, eax: 0x1C03_C163),
        CpuidEntry(function: 4, index: 4, flags: 1, eax: 0),
        CpuidEntry(function: 6, eax: 0x4),
        CpuidEntry(function: 0xB, index: 0, flags: 1),
        CpuidEntry(function: 0xB, index: 1, flags: 1),
        CpuidEntry(function: 0x1F, index: 0, flags: 1),
        CpuidEntry(function: 0x4000_0000, eax: 0x4000_0001, ebx: 0x4B4D_564B),
        CpuidEntry(function: 0x4000_0001, eax: 0x0100_07FB),
        CpuidEntry(function: 0x8000_0000, eax: 0x8000_0008),
    ]

    func table(_ index: Int, of count: Int, leaves: [CpuidEntry] = Cpuid.keelSignatureLeaves) throws -> [CpuidEntry] {
        try Cpuid.vcpuTable(hostSupported: host, vcpuIndex: index, vcpuCount: count, hypervisorLeaves: leaves)
    }

    func entry(_ t: [CpuidEntry], _ function: UInt32, _ index: UInt32 = 0) throws -> CpuidEntry {
        try #require(t.first { $0.function == function && $0.index == index })
    }

    @Test func hypervisorRangeIsReplaced() throws {
        let t = try table(0, of: 1)
        let hv = t.filter { Cpuid.hypervisorRange.contains($0.function) }
        #expect(hv == Cpuid.keelSignatureLeaves)
        #expect(try table(0, of: 1, leaves: []).allSatisfy { !Cpuid.hypervisorRange.contains($0.function) })
        #expect(t.contains { $0.function == 0x8000_0000 })
        #expect(try entry(t, 6) == host[7])  // leaf 6 passed through
    }

    @Test func signatureLeaf() throws {
        let leaf = try #require(Cpuid.keelSignatureLeaves.first)
        #expect(leaf.function == 0x4000_0000 && leaf.eax == 0x4000_0000)
        var sig: [UInt8] = []
        for r in [leaf.ebx, leaf.ecx, leaf.edx] { for i in 0..<4 { sig.append(UInt8(truncatingIfNeeded: r >> (8 * i))) } }
        #expect(String(decoding: sig, as: UTF8.self) == "KeelKeelKeel")
    }

    @Test func leaf1() throws {
        let single = try entry(table(0, of: 1), 1)
        #expect(single.ecx & (1 << 31) != 0)
        #expect(single.ebx >> 24 == 0 && (single.ebx >> 16) & 0xFF == 1)
        #expect(single.ebx & 0xFFFF == 0x0800)  // CLFLUSH size / brand kept
        #expect(single.edx & (1 << 28) == 0)
        let third = try entry(table(3, of: 6), 1)
        #expect(third.ebx >> 24 == 3 && (third.ebx >> 16) & 0xFF == 6)
        #expect(third.edx & (1 << 28) != 0)
        #expect(third.eax == 0x906EA)
    }

    @Test func leaf4CoresPerPackage() throws {
        let t = try table(0, of: 4)
        for i: UInt32 in 0...3 {
            let e = try entry(t, 4, i)
            #expect(e.eax >> 26 == 3)
            #expect(e.eax & 0x3FFF == host[2 + Int(i)].eax & 0x3FFF)
        }
        #expect((try entry(t, 4, 0).eax >> 14) & 0xFFF == 0)  // L1 per core
        #expect((try entry(t, 4, 3).eax >> 14) & 0xFFF == 3)  // L3 shared by the package
        #expect(try entry(t, 4, 4).eax == 0)  // terminator untouched
        #expect((try entry(table(0, of: 1), 4, 0).eax >> 26) == 0)
        #expect((try entry(table(0, of: 3), 4, 0).eax >> 26) == 3)  // addressable ids: next power of two
    }

    @Test func extendedTopologyLeaves() throws {
        let t = try table(5, of: 6)
        for function: UInt32 in [0xB, 0x1F] {
            let subleaves = t.filter { $0.function == function }
            #expect(subleaves.count == 3)
            #expect(subleaves.allSatisfy { $0.edx == 5 && $0.flags == 1 })
            #expect(subleaves[0].ebx == 1 && (subleaves[0].ecx >> 8) & 0xFF == 1 && subleaves[0].eax == 0)
            #expect(subleaves[1].ebx == 6 && (subleaves[1].ecx >> 8) & 0xFF == 2 && subleaves[1].eax == 3)
            #expect((subleaves[2].ecx >> 8) & 0xFF == 0)
        }
        let noTopology = try Cpuid.vcpuTable(hostSupported: host.filter { $0.function != 0x1F }, vcpuIndex: 0,
                                             vcpuCount: 1, hypervisorLeaves: [])
        #expect(!noTopology.contains { $0.function == 0x1F })
    }

    @Test func sortedAndDeterministic() throws {
        let t = try table(1, of: 2)
        #expect(t == t.sorted { ($0.function, $0.index) < ($1.function, $1.index) })
        #expect(try table(1, of: 2) == t)
    }

    @Test func errors() {
        #expect(throws: CpuidError.invalidVCPUCount(0)) { try table(0, of: 0) }
        #expect(throws: CpuidError.invalidVCPUCount(256)) { try table(0, of: 256) }
        #expect(throws: CpuidError.invalidVCPUIndex(index: 2, count: 2)) { try table(2, of: 2) }
        #expect(throws: CpuidError.leafOutsideHypervisorRange(0x1)) {
            try table(0, of: 1, leaves: [CpuidEntry(function: 1)])
        }
        #expect(throws: CpuidError.duplicateLeaf(function: 0x4000_0000, index: 0)) {
            try table(0, of: 1, leaves: Cpuid.keelSignatureLeaves + Cpuid.keelSignatureLeaves)
        }
    }

    @Test func coreIDWidth() {
        #expect([1, 2, 3, 4, 5, 8, 9, 255].map { Cpuid.coreIDWidth(vcpuCount: $0) } == [0, 1, 2, 2, 3, 3, 4, 8])
    }
}

@Suite struct CPUFeatureTests {
    @Test func hidingClearsOnlyThatBitOfThatLeaf() throws {
        let entries = [CpuidEntry(function: 7, index: 0, ebx: 0xFFFF_FFFF, ecx: 0xFFFF_FFFF, edx: 0xFFFF_FFFF),
                       CpuidEntry(function: 7, index: 1, ebx: 0xFFFF_FFFF),
                       CpuidEntry(function: 1, ecx: 0xFFFF_FFFF)]
        var table = entries
        for feature in try CPUFeature.parseHidden("-erms,-fsrm") { table = feature.hidden(in: table) }
        #expect(table[0].ebx == ~(UInt32(1) << 9))
        #expect(table[0].edx == ~(UInt32(1) << 4))
        #expect(table[0].ecx == 0xFFFF_FFFF)
        #expect(table[1] == entries[1])
        #expect(table[2] == entries[2])
    }

    @Test func badListsAreRefusedWithTheReason() {
        #expect(throws: CPUFeatureError.self) { try CPUFeature.parseHidden("+erms") }
        #expect(throws: CPUFeatureError.self) { try CPUFeature.parseHidden("erms") }
        #expect(throws: CPUFeatureError.self) { try CPUFeature.parseHidden("-nosuch") }
        #expect(throws: CPUFeatureError.self) { try CPUFeature.parseHidden("-erms,") }
        do {
            _ = try CPUFeature.parseHidden("-nosuch")
        } catch {
            #expect(error.description.contains("known: erms, fsrm"))
        }
        #expect((try? CPUFeature.parseHidden("-ERMS,-erms")) == [CPUFeature.known[0]])
    }
}
