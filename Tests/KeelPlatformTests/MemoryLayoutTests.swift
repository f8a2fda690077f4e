import Testing
@testable import KeelPlatform

@Suite struct MemoryLayoutTests {
    func fixedLow(_ top: UInt64) -> [E820Entry] {
        [
            E820Entry(base: 0, size: 0x9FC00, type: .ram),
            E820Entry(base: 0x9FC00, size: 0x400, type: .reserved),
            E820Entry(base: 0xE0000, size: 0x20000, type: .reserved),
            E820Entry(base: 0x10_0000, size: top - 0x10_0000, type: .ram),
            E820Entry(base: 0xFEC0_0000, size: 0x140_0000, type: .reserved),
        ]
    }

    @Test func smallGuest() throws {
        let layout = try GuestMemoryLayout(ramSize: 256 << 20)
        #expect(layout.ramRegions == [GuestRAMRegion(guestPhysicalAddress: 0, size: 256 << 20)])
        #expect(layout.lowMemoryTop == 256 << 20)
        #expect(layout.highMemoryTop == nil)
        #expect(layout.e820 == fixedLow(256 << 20))
    }

    @Test func fourGiBGuestSplitsAroundTheHole() throws {
        let layout = try GuestMemoryLayout(ramSize: 4 << 30)
        #expect(layout.ramRegions == [
            GuestRAMRegion(guestPhysicalAddress: 0, size: 0xC000_0000),
            GuestRAMRegion(guestPhysicalAddress: 0x1_0000_0000, size: 0x4000_0000),
        ])
        #expect(layout.e820 == fixedLow(0xC000_0000) + [E820Entry(base: 0x1_0000_0000, size: 0x4000_0000, type: .ram)])
    }

    @Test func eightGiBGuest() throws {
        let layout = try GuestMemoryLayout(ramSize: 8 << 30)
        #expect(layout.highMemoryTop == 0x2_4000_0000)
        #expect(layout.e820.last == E820Entry(base: 0x1_0000_0000, size: 0x1_4000_0000, type: .ram))
        #expect(layout.e820.count == 6)
    }

    @Test func e820IsSortedAndDisjointAndAvoidsAPICs() throws {
        for size: UInt64 in [64 << 20, 3 << 30, 4 << 30, 8 << 30] {
            let map = try GuestMemoryLayout(ramSize: size).e820
            for (a, b) in zip(map, map.dropFirst()) { #expect(a.end <= b.base) }
            let ram = map.filter { $0.type == .ram }
            #expect(ram.reduce(0) { $0 + $1.size } == size - 0x400 - 0x60000)  // EBDA tail and VGA/BIOS hole
            for apic in [BootLayout.ioapicAddress, BootLayout.lapicAddress] {
                #expect(!ram.contains { $0.base <= apic && apic < $0.end })
            }
        }
    }

    @Test func sizeLimits() {
        #expect(throws: GuestMemoryLayoutError.tooSmall(size: 32 << 20, minimum: 64 << 20)) {
            try GuestMemoryLayout(ramSize: 32 << 20)
        }
        #expect(throws: GuestMemoryLayoutError.tooLarge(size: (1 << 40) + 4096, maximum: 1 << 40)) {
            try GuestMemoryLayout(ramSize: (1 << 40) + 4096)
        }
        #expect(throws: GuestMemoryLayoutError.notPageAligned(size: (64 << 20) + 1)) {
            try GuestMemoryLayout(ramSize: (64 << 20) + 1)
        }
    }

    @Test func e820Encoding() {
        let e = E820Entry(base: 0x1122_3344_5566_7788, size: 0x10, type: .acpi)
        #expect(e.encoded == [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
                              0x10, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0])
    }

    @Test func fixedAddressesDoNotOverlap() {
        let ranges: [(UInt64, UInt64)] = [
            (BootLayout.gdtAddress, 32), (BootLayout.zeroPageAddress, 4096),
            (BootLayout.pml4Address, 6 * 4096), (BootLayout.commandLineAddress, UInt64(BootLayout.commandLineMaxSize)),
            (BootLayout.acpiAreaBase, UInt64(BootLayout.acpiAreaSize)),
        ].sorted { $0.0 < $1.0 }
        for (a, b) in zip(ranges, ranges.dropFirst()) { #expect(a.0 + a.1 <= b.0) }
        #expect(BootLayout.initialStackPointer > BootLayout.zeroPageAddress + 4096)
        #expect(BootLayout.initialStackPointer < BootLayout.pml4Address)
        #expect(BootLayout.kernelEntry64 == 0x10_0200)
    }
}
