import Testing
@testable import KeelPlatform

@Suite struct BootParamsTests {
    let image: BzImage
    let layout: GuestMemoryLayout

    init() throws {
        image = try BzImage(FakeBzImage().bytes)
        layout = try GuestMemoryLayout(ramSize: 256 << 20)
    }

    @Test func zeroPageFieldsAtTheirOffsets() throws {
        let initrd = InitrdPlacement(address: 0x0F00_0000, size: 0x12345)
        let params = try BootParams(image: image, commandLine: "console=ttyS0", initrd: initrd,
                                    e820: layout.e820, rsdpAddress: 0xE0000)
        let z = params.zeroPage
        #expect(z.count == 4096)
        // Setup header copied from 0x1F1 up to its end, nothing past it.
        #expect(z[0x1F1] == 4)
        #expect(z.le(0x1FE, 2) == 0xAA55)
        #expect(z.le(0x202, 4) == 0x5372_6448)
        #expect(z.le(0x206, 2) == 0x020F)
        #expect(z.le(0x264, 4) == 0x1234_5678)
        #expect(z[0x268] == 0)
        #expect(z[0x1F0] == 0 && z[0x1EF] == 0)  // sentinel untouched
        #expect(z[0x210] == 0xFF)  // type_of_loader
        #expect(z[0x211] == 0x81)  // LOADED_HIGH | CAN_USE_HEAP
        #expect(z.le(0x224, 2) == 0xFE00)  // heap_end_ptr
        #expect(z.le(0x228, 4) == 0x20000)  // cmd_line_ptr
        #expect(z.le(0x0C8, 4) == 0)  // ext_cmd_line_ptr
        #expect(z.le(0x218, 4) == 0x0F00_0000)
        #expect(z.le(0x21C, 4) == 0x12345)
        #expect(z.le(0x0C0, 4) == 0 && z.le(0x0C4, 4) == 0)
        #expect(z.le(0x070, 8) == 0xE0000)  // acpi_rsdp_addr
        #expect(Int(z[0x1E8]) == layout.e820.count)
        for (i, entry) in layout.e820.enumerated() {
            let at = 0x2D0 + 20 * i
            #expect(z.le(at, 8) == entry.base)
            #expect(z.le(at + 8, 8) == entry.size)
            #expect(z.le(at + 16, 4) == UInt64(entry.type.rawValue))
        }
        #expect(params.commandLine == Array("console=ttyS0".utf8) + [0])
    }

    @Test func highCommandLineAndInitrdUseExtFields() throws {
        let params = try BootParams(image: image, commandLine: "", commandLineAddress: 0x1_2345_6000,
                                    initrd: InitrdPlacement(address: 0x1000, size: 0x1000),
                                    e820: [], rsdpAddress: 0)
        #expect(params.zeroPage.le(0x228, 4) == 0x2345_6000)
        #expect(params.zeroPage.le(0x0C8, 4) == 0x1)
    }

    @Test func keepSegmentsIsCleared() throws {
        var fake = FakeBzImage()
        fake.loadflags = 0x41
        let params = try BootParams(image: BzImage(fake.bytes), commandLine: "", e820: [], rsdpAddress: 0)
        #expect(params.zeroPage[0x211] == 0x81)
    }

    @Test func commandLineLimit() throws {
        let ok = String(repeating: "a", count: 2047)
        _ = try BootParams(image: image, commandLine: ok, e820: [], rsdpAddress: 0)
        let long = String(repeating: "a", count: 2048)
        #expect(throws: BootParamsError.commandLineTooLong(length: 2048, maximum: 2047)) {
            try BootParams(image: image, commandLine: long, e820: [], rsdpAddress: 0)
        }
        let message = BootParamsError.commandLineTooLong(length: 2048, maximum: 2047).description
        #expect(message.contains("2048") && message.contains("2047"))
        #expect(throws: BootParamsError.commandLineContainsNUL) {
            try BootParams(image: image, commandLine: "a\0b", e820: [], rsdpAddress: 0)
        }
    }

    @Test func commandLineIsBoundedByTheBuffer() throws {
        var fake = FakeBzImage()
        fake.cmdlineSize = 0xFFFF
        let big = try BzImage(fake.bytes)
        #expect(throws: BootParamsError.commandLineTooLong(length: 4096, maximum: 4095)) {
            try BootParams(image: big, commandLine: String(repeating: "x", count: 4096), e820: [], rsdpAddress: 0)
        }
    }

    @Test func initrdMustEndBelowInitrdAddrMax() {
        let initrd = InitrdPlacement(address: 0x7FFF_F000, size: 0x2000)
        #expect(throws: BootParamsError.initrdAboveLimit(end: 0x8000_1000, initrdAddrMax: 0x7FFF_FFFF)) {
            try BootParams(image: image, commandLine: "", initrd: initrd, e820: [], rsdpAddress: 0)
        }
    }

    @Test func tooManyE820Entries() {
        let map = [E820Entry](repeating: E820Entry(base: 0, size: 1, type: .ram), count: 129)
        #expect(throws: BootParamsError.tooManyE820Entries(count: 129, maximum: 128)) {
            try BootParams(image: image, commandLine: "", e820: map, rsdpAddress: 0)
        }
    }

    @Test func initrdPlacedAtTopOfLowMemory() throws {
        let address = try BootParams.initrdAddress(size: 0x10_0001, image: image, lowMemoryTop: layout.lowMemoryTop)
        #expect(address == alignDown(256 << 20 - 0x10_0001, 4096))
        #expect(address % 4096 == 0)
        #expect(address + 0x10_0001 <= 256 << 20)
    }

    @Test func initrdPlacementRespectsInitrdAddrMax() throws {
        var fake = FakeBzImage()
        fake.initrdAddrMax = 0x0800_0000 - 1
        let capped = try BzImage(fake.bytes)
        let big = try GuestMemoryLayout(ramSize: 8 << 30)
        let address = try BootParams.initrdAddress(size: 0x1000, image: capped, lowMemoryTop: big.lowMemoryTop)
        #expect(address == 0x0800_0000 - 0x1000)
    }

    @Test func initrdTooLarge() throws {
        // Kernel occupies up to 16 MiB + 32 MiB = 48 MiB; 256 MiB guest leaves 208 MiB.
        #expect(throws: BootParamsError.initrdTooLarge(size: 209 << 20, available: 208 << 20)) {
            try BootParams.initrdAddress(size: 209 << 20, image: image, lowMemoryTop: layout.lowMemoryTop)
        }
        #expect(BootParamsError.initrdTooLarge(size: 1, available: 0).description
            .hasPrefix("initrd too large for guest memory"))
        #expect(try BootParams.initrdAddress(size: 208 << 20, image: image, lowMemoryTop: layout.lowMemoryTop) == 48 << 20)
    }
}
