import Testing
@testable import KeelPlatform

@Suite struct PageTablesTests {
    @Test func identityMapsFourGiB() {
        let blobs = PageTables.identityMap4G()
        #expect(blobs.map(\.guestPhysicalAddress) == [0x9000, 0xA000, 0xB000, 0xC000, 0xD000, 0xE000])
        #expect(blobs.allSatisfy { $0.bytes.count == 4096 })
        let pml4 = blobs[0].bytes, pdpt = blobs[1].bytes
        #expect(pml4.le(0, 8) == 0xA000 | 0x3)
        #expect((8..<4096).allSatisfy { pml4[$0] == 0 })
        for i in 0..<4 { #expect(pdpt.le(i * 8, 8) == UInt64(0xB000 + i * 0x1000) | 0x3) }
        #expect((32..<4096).allSatisfy { pdpt[$0] == 0 })
        for gib in 0..<4 {
            let pd = blobs[2 + gib].bytes
            for i in 0..<512 {
                let entry = pd.le(i * 8, 8)
                #expect(entry & 0x83 == 0x83)  // present, writable, 2 MiB page
                #expect(entry & ~0xFFF == UInt64(gib) << 30 + UInt64(i) << 21)
            }
        }
        #expect(PageTables.cr3 == 0x9000)
    }

    @Test func gdtLayout() {
        let blob = GDT.blob()
        #expect(blob.guestPhysicalAddress == 0x500)
        #expect(blob.bytes.count == 32)
        #expect(blob.bytes.le(0, 8) == 0 && blob.bytes.le(8, 8) == 0)
        #expect(blob.bytes.le(0x10, 8) == 0x00AF_9B00_0000_FFFF)
        #expect(blob.bytes.le(0x18, 8) == 0x00CF_9300_0000_FFFF)
        #expect(GDT.limit == 31)
    }

    @Test func segmentFieldsForKVM() {
        let cs = GDT.code, ds = GDT.data
        #expect(cs.selector == 0x10 && ds.selector == 0x18)
        #expect(cs.l == 1 && cs.db == 0 && cs.present == 1 && cs.s == 1 && cs.dpl == 0 && cs.type & 0x8 != 0)
        #expect(ds.l == 0 && ds.db == 1 && ds.type & 0x8 == 0 && ds.type & 0x2 != 0)
        #expect(cs.effectiveLimit == 0xFFFF_FFFF && ds.effectiveLimit == 0xFFFF_FFFF)
        #expect(cs.base == 0 && ds.base == 0)
    }

    @Test func longModeRegisters() {
        #expect(LongModeRegisters.cr0 & 0x8000_0001 == 0x8000_0001)
        #expect(LongModeRegisters.cr4 & 0x20 != 0)
        #expect(LongModeRegisters.efer == 0x500)
    }
}
