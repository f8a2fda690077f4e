import Testing
@testable import KeelPlatform

@Suite struct AMLTests {
    @Test func vmbusDeviceExactBytes() throws {
        let aml = try AML.scope("\\_SB", [
            AML.device("VMBS", [
                AML.name("_HID", AML.string("VMBus")),
                AML.name("_UID", AML.integer(0)),
                AML.name("_CRS", AML.resourceTemplate([])),
            ]),
        ])
        let expected: [UInt8] = [
            0x10, 0x2A, 0x5C, 0x5F, 0x53, 0x42, 0x5F, 0x5B, 0x82, 0x22, 0x56, 0x4D, 0x42, 0x53, 0x08, 0x5F,
            0x48, 0x49, 0x44, 0x0D, 0x56, 0x4D, 0x42, 0x75, 0x73, 0x00, 0x08, 0x5F, 0x55, 0x49, 0x44, 0x00,
            0x08, 0x5F, 0x43, 0x52, 0x53, 0x11, 0x05, 0x0A, 0x02, 0x79, 0x00,
        ]
        #expect(expected.count == 43)
        #expect(aml == expected)
    }

    @Test func pkgLengthForms() throws {
        #expect(try AML.pkgLength(0) == [0x01])
        #expect(try AML.pkgLength(62) == [0x3F])
        // 63 bytes of content + 2 length bytes = 65 = 0x41: low nibble 1, then 0x04.
        #expect(try AML.pkgLength(63) == [0x41, 0x04])
        #expect(try AML.pkgLength(0xFFF - 2) == [0x4F, 0xFF])
        #expect(try AML.pkgLength(0xFFF - 1) == [0x81, 0x00, 0x01])  // total 0x1001
        #expect(try AML.pkgLength(0xFFFFF - 3) == [0x8F, 0xFF, 0xFF])
        #expect(try AML.pkgLength(0xFFFFF - 2) == [0xC1, 0x00, 0x00, 0x01])  // total 0x100001
        #expect(try AML.pkgLength(0x0FFF_FFFF - 4) == [0xCF, 0xFF, 0xFF, 0xFF])
        #expect(throws: AMLError.packageTooLarge(length: 0x0FFF_FFFF)) { try AML.pkgLength(0x0FFF_FFFF) }
    }

    @Test func names() throws {
        #expect(try AML.nameString("\\_SB") == [0x5C, 0x5F, 0x53, 0x42, 0x5F])
        #expect(try AML.nameString("_S5") == Array("_S5_".utf8))
        #expect(try AML.nameString("\\") == [0x5C, 0x00])
        #expect(try AML.nameString("\\_SB.PCI0") == [0x5C, 0x2E] + Array("_SB_PCI0".utf8))
        #expect(try AML.nameString("\\_SB.PCI0.ISA") == [0x5C, 0x2F, 0x03] + Array("_SB_PCI0ISA_".utf8))
        #expect(try AML.nameString("^^FOO") == [0x5E, 0x5E] + Array("FOO_".utf8))
        #expect(throws: AMLError.invalidNameSegment("TOOLONG")) { try AML.nameString("TOOLONG") }
        #expect(throws: AMLError.invalidNameSegment("1ABC")) { try AML.nameSeg("1ABC") }
        #expect(throws: AMLError.invalidNameSegment("abc")) { try AML.nameSeg("abc") }
        #expect(throws: AMLError.invalidNameSegment("")) { try AML.nameString("\\_SB..X") }
    }

    @Test func integersUseSmallestForm() {
        #expect(AML.integer(0) == [0x00])
        #expect(AML.integer(1) == [0x01])
        #expect(AML.integer(.max) == [0xFF])
        #expect(AML.integer(2) == [0x0A, 0x02])
        #expect(AML.integer(0xFF) == [0x0A, 0xFF])
        #expect(AML.integer(0x100) == [0x0B, 0x00, 0x01])
        #expect(AML.integer(0x1_0000) == [0x0C, 0x00, 0x00, 0x01, 0x00])
        #expect(AML.integer(0x1_0000_0000) == [0x0E, 0, 0, 0, 0, 1, 0, 0, 0])
    }

    @Test func stringsAndEISAID() throws {
        #expect(try AML.string("A") == [0x0D, 0x41, 0x00])
        #expect(throws: AMLError.invalidString("é")) { try AML.string("é") }
        #expect(try AML.eisaID("PNP0A03") == [0x0C, 0x41, 0xD0, 0x0A, 0x03])
        #expect(try AML.eisaID("PNP0501") == [0x0C, 0x41, 0xD0, 0x05, 0x01])
        #expect(throws: AMLError.invalidEISAID("PNP0A0")) { try AML.eisaID("PNP0A0") }
    }

    @Test func packageBufferMethod() throws {
        #expect(try AML.name("\\_S5", AML.package([AML.integer(5), AML.integer(5), AML.integer(0), AML.integer(0)]))
            == [0x08, 0x5C, 0x5F, 0x53, 0x35, 0x5F, 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00])
        #expect(try AML.buffer([1, 2, 3]) == [0x11, 0x06, 0x0A, 0x03, 1, 2, 3])
        #expect(try AML.method("_STA", [AML.returnValue(AML.integer(0x0F))])
            == [0x14, 0x09, 0x5F, 0x53, 0x54, 0x41, 0x00, 0xA4, 0x0A, 0x0F])
        #expect(try AML.method("FOO", argumentCount: 2, serialized: true, [])[6] == 0x0A)
        #expect(throws: AMLError.invalidArgumentCount(8)) { try AML.method("FOO", argumentCount: 8, []) }
        let many = [[UInt8]](repeating: AML.integer(0), count: 256)
        #expect(throws: AMLError.tooManyElements(count: 256)) { try AML.package(many) }
    }

    @Test func largeScopeUsesMultiBytePkgLength() throws {
        let body = [[UInt8]](repeating: AML.integer(0x1234_5678_9ABC), count: 20)  // 180 bytes
        let scope = try AML.scope("\\", body)
        #expect(scope[0] == 0x10)
        #expect(scope[1] >> 6 == 1)
        let length = Int(scope[1] & 0x0F) | Int(scope[2]) << 4
        #expect(length == scope.count - 1)
        #expect(length == 2 + 2 + 180)  // PkgLength, "\\" + NullName, body
    }

    @Test func resourceDescriptors() throws {
        #expect(AML.ioPort(minimum: 0x3F8, maximum: 0x3F8, alignment: 1, length: 8)
            == [0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08])
        #expect(try AML.irqNoFlags([4]) == [0x22, 0x10, 0x00])
        #expect(try AML.irqNoFlags([1, 12]) == [0x22, 0x02, 0x10])
        #expect(throws: AMLError.invalidIRQ(16)) { try AML.irqNoFlags([16]) }

        let d = try AML.dwordMemory(base: 0xFEC0_0000, length: 0x1000)
        #expect(d.count == 26)
        #expect(Array(d[0..<6]) == [0x87, 0x17, 0x00, 0x00, 0x0D, 0x01])
        #expect(d.le(10, 4) == 0xFEC0_0000 && d.le(14, 4) == 0xFEC0_0FFF && d.le(22, 4) == 0x1000)

        let q = try AML.qwordMemory(base: 0x10_0000_0000, length: 0x1_0000_0000, caching: .cacheable, producer: true)
        #expect(q.count == 46)
        #expect(Array(q[0..<6]) == [0x8A, 0x2B, 0x00, 0x00, 0x0C, 0x03])
        #expect(q.le(14, 8) == 0x10_0000_0000 && q.le(22, 8) == 0x10_FFFF_FFFF && q.le(38, 8) == 0x1_0000_0000)
        #expect(throws: AMLError.invalidRange(minimum: 0xFFFF_F000, maximum: 0x1_0000_0FFF)) {
            try AML.dwordMemory(base: 0xFFFF_F000, length: 0x2000)
        }

        let template = try AML.resourceTemplate([AML.ioPort(minimum: 0x60, maximum: 0x60, alignment: 1, length: 1),
                                                 AML.irqNoFlags([1])])
        #expect(template == [0x11, 0x10, 0x0A, 0x0D, 0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01,
                             0x22, 0x02, 0x00, 0x79, 0x00])
    }
}

@Suite struct ACPIDevicesTests {
    @Test func wordDescriptors() throws {
        #expect(try AML.wordBusNumber(minimum: 0, maximum: 0xFF)
            == [0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0, 0x00, 0x00, 0xFF, 0x00, 0, 0, 0x00, 0x01])
        #expect(try AML.wordIO(minimum: 0x0D00, maximum: 0xFFFF)
            == [0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0, 0, 0x00, 0x0D, 0xFF, 0xFF, 0, 0, 0x00, 0xF3])
        #expect(throws: AMLError.invalidRange(minimum: 2, maximum: 1)) { try AML.wordIO(minimum: 2, maximum: 1) }
    }

    @Test func vmbusNodeMatchesTheReferenceEncoding() throws {
        // hyperv-platform.md §9.1: the 43 bytes QEMU's node reduces to.
        let expected: [UInt8] = [
            0x10, 0x2A, 0x5C, 0x5F, 0x53, 0x42, 0x5F, 0x5B, 0x82, 0x22, 0x56, 0x4D, 0x42, 0x53, 0x08, 0x5F,
            0x48, 0x49, 0x44, 0x0D, 0x56, 0x4D, 0x42, 0x75, 0x73, 0x00, 0x08, 0x5F, 0x55, 0x49, 0x44, 0x00,
            0x08, 0x5F, 0x43, 0x52, 0x53, 0x11, 0x05, 0x0A, 0x02, 0x79, 0x00,
        ]
        #expect(try ACPIDevices.vmbus() == expected)
    }

    @Test func pciHostBridge() throws {
        let aml = try ACPIDevices.pciHostBridge()
        #expect(Array(aml[0..<2]) == [0x5B, 0x82])
        let length = Int(aml[2] & 0x0F) | Int(aml[3]) << 4
        #expect(aml[2] >> 6 == 1 && length == aml.count - 2)
        #expect(Array(aml[4..<14]) == [0x5C, 0x2E] + Array("_SB_PCI0".utf8))
        #expect(aml.containsSequence([0x08] + Array("_HID".utf8) + [0x0C, 0x41, 0xD0, 0x0A, 0x03]))
        let window = try AML.dwordMemory(base: 0xC000_0000, length: 0x3EC0_0000, producer: true)
        #expect(aml.containsSequence(window + [0x79, 0x00]))
        #expect(throws: AMLError.self) { try ACPIDevices.pciHostBridge(mmioWindow: 0xF000_0000..<0x1_0000_1000) }
        // Appending it keeps the tables valid.
        let blob = try ACPITables.build(ACPIConfig(cpuCount: 1, extraDSDT: aml))
        let parsed = try ACPITableParser(memory: blob.bytes, memoryBase: blob.baseAddress, rsdpAddress: blob.rsdpAddress)
        #expect(parsed.table("DSDT")?.body.suffix(aml.count).elementsEqual(aml) == true)
    }
}

extension Array where Element == UInt8 {
    func containsSequence(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { self[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}
