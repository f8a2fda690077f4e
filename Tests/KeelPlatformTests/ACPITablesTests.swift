import Testing
@testable import KeelPlatform

@Suite struct ACPITablesTests {
    func parse(_ blob: ACPIBlob) throws -> ACPITableParser {
        try ACPITableParser(memory: blob.bytes, memoryBase: blob.baseAddress, rsdpAddress: blob.rsdpAddress)
    }

    @Test func roundTripVerifiesEveryTable() throws {
        let blob = try ACPITables.build(ACPIConfig(cpuCount: 2))
        #expect(blob.baseAddress == 0xE0000)
        #expect(blob.rsdpAddress == 0xE0000)
        #expect(blob.rsdpAddress % 16 == 0)
        #expect(blob.bytes.count <= 128 * 1024)
        let parsed = try parse(blob)
        #expect(parsed.tables.map(\.signature) == ["XSDT", "FACP", "DSDT", "FACS", "APIC"])
        for table in parsed.tables where table.signature != "FACS" {
            #expect(checksumByte(table.bytes) == 0)
            #expect(table.bytes.le(4, 4) == UInt64(table.bytes.count))
            #expect(Array(table.bytes[10..<16]) == Array("KEEL  ".utf8))
            #expect(Array(table.bytes[16..<24]) == Array("KEELVM  ".utf8))
            #expect(Array(table.bytes[28..<32]) == Array("KEEL".utf8))
            #expect(table.address % 8 == 0)
        }
        let facs = try #require(parsed.table("FACS"))
        #expect(facs.bytes.count == 64 && facs.address % 64 == 0 && facs.bytes[32] == 2)
    }

    @Test func rsdp() throws {
        let blob = try ACPITables.build(ACPIConfig(cpuCount: 1))
        let r = Array(blob.bytes[0..<36])
        #expect(Array(r[0..<8]) == Array("RSD PTR ".utf8))
        #expect(r[15] == 2)
        #expect(checksumByte(r[0..<20]) == 0 && checksumByte(r) == 0)
        #expect(r.le(16, 4) == 0 && r.le(20, 4) == 36)
        #expect(try parse(blob).table("XSDT")?.address == r.le(24, 8))
    }

    @Test func fadtFields() throws {
        let parsed = try parse(ACPITables.build(ACPIConfig(cpuCount: 4)))
        let f = try #require(parsed.table("FACP")).bytes
        let dsdt = try #require(parsed.table("DSDT")), facs = try #require(parsed.table("FACS"))
        #expect(f.count == 276 && f[8] == 6 && f[131] == 5)
        #expect(f.le(36, 4) == facs.address && f.le(132, 8) == facs.address)
        #expect(f.le(40, 4) == dsdt.address && f.le(140, 8) == dsdt.address)
        #expect(f.le(46, 2) == 9)  // SCI_INT
        #expect(f.le(48, 4) == 0)  // SMI_CMD
        #expect(f.le(56, 4) == 0x600 && f[88] == 4)
        #expect(f.le(64, 4) == 0x604 && f[89] == 2)
        #expect(f.le(76, 4) == 0 && f[91] == 0)  // no PM timer
        #expect(f.le(80, 4) == 0 && f[92] == 0)  // no GPE0
        #expect(f.le(109, 2) == 0x07)  // legacy devices, 8042, no VGA; MSI allowed
        let flags = f.le(112, 4)
        #expect(flags == 0x431)
        #expect(flags & (1 << 20) == 0)  // not hardware-reduced
        #expect(Array(f[116..<120]) == [1, 8, 0, 1] && f.le(120, 8) == 0xCF9 && f[128] == 6)
        #expect(Array(f[148..<152]) == [1, 32, 0, 2] && f.le(152, 8) == 0x600)
        #expect(Array(f[172..<176]) == [1, 16, 0, 2] && f.le(176, 8) == 0x604)
        #expect(f[208..<220].allSatisfy { $0 == 0 })  // X_PM_TMR_BLK
    }

    @Test(arguments: [1, 2, 7, 64, 255])
    func madtHasOneLAPICPerCPU(cpus: Int) throws {
        let madt = try #require(parse(ACPITables.build(ACPIConfig(cpuCount: cpus))).table("APIC"))
        #expect(madt.bytes.le(36, 4) == 0xFEE0_0000 && madt.bytes.le(40, 4) == 1)
        let entries = madt.madtEntries
        let lapics = entries.filter { $0.type == 0 }
        #expect(lapics.count == cpus)
        for (i, e) in lapics.enumerated() {
            #expect(e.bytes == [0, 8, UInt8(i), UInt8(i), 1, 0, 0, 0])
        }
        let ioapics = entries.filter { $0.type == 1 }
        #expect(ioapics.count == 1)
        #expect(ioapics.first?.bytes == [1, 12, UInt8(cpus), 0, 0x00, 0x00, 0xC0, 0xFE, 0, 0, 0, 0])
        #expect(entries.filter { $0.type == 2 }.map(\.bytes) == [
            [2, 10, 0, 0, 2, 0, 0, 0, 0x00, 0x00],
            [2, 10, 0, 9, 9, 0, 0, 0, 0x0D, 0x00],
        ])
        #expect(entries.filter { $0.type == 4 }.map(\.bytes) == [[4, 6, 0xFF, 0, 0, 1]])
        #expect(entries.reduce(44) { $0 + $1.bytes.count } == madt.bytes.count)
    }

    @Test func dsdtHasS5AndExtraAML() throws {
        let vmbus = try AML.scope("\\_SB", [AML.device("VMBS", [AML.name("_HID", AML.string("VMBus"))])])
        let parsed = try parse(ACPITables.build(ACPIConfig(cpuCount: 1, extraDSDT: vmbus, s5SleepType: 7)))
        let dsdt = try #require(parsed.table("DSDT"))
        #expect(dsdt.revision == 2)
        let s5 = try AML.name("\\_S5", AML.package([AML.integer(7), AML.integer(7), AML.integer(0), AML.integer(0)]))
        #expect(Array(dsdt.body) == s5 + vmbus)
    }

    @Test func largeExtraAMLStillFitsOrFails() throws {
        let fits = [UInt8](repeating: 0xA3, count: 100_000)  // Noop opcodes
        let blob = try ACPITables.build(ACPIConfig(cpuCount: 8, extraDSDT: fits))
        #expect(blob.bytes.count <= 0x20000)
        #expect(try parse(blob).table("DSDT")?.body.suffix(100_000).elementsEqual(fits) == true)
        let tooBig = [UInt8](repeating: 0xA3, count: 0x20000)
        #expect {
            try ACPITables.build(ACPIConfig(cpuCount: 1, extraDSDT: tooBig))
        } throws: { error in
            guard case let ACPIBuildError.tooLarge(size, maximum) = error else { return false }
            return size > 0x20000 && maximum == 0x20000
        }
    }

    @Test func cpuCountLimits() {
        #expect(throws: ACPIBuildError.invalidCPUCount(0)) { try ACPITables.build(ACPIConfig(cpuCount: 0)) }
        #expect(throws: ACPIBuildError.invalidCPUCount(256)) { try ACPITables.build(ACPIConfig(cpuCount: 256)) }
        #expect(throws: ACPIBuildError.invalidBaseAddress(0xE0010)) {
            try ACPITables.build(ACPIConfig(cpuCount: 1, baseAddress: 0xE0010))
        }
        #expect(throws: ACPIBuildError.invalidBaseAddress(0xFFFF_FF00)) {
            try ACPITables.build(ACPIConfig(cpuCount: 1, baseAddress: 0xFFFF_FF00))
        }
    }

    @Test func parserRejectsCorruption() throws {
        let blob = try ACPITables.build(ACPIConfig(cpuCount: 2))
        let parsed = try parse(blob)
        let madt = try #require(parsed.table("APIC"))
        var bad = blob
        bad.bytes[Int(madt.address - blob.baseAddress) + 50] ^= 0xFF
        #expect(throws: ACPIParseError.badChecksum("XSDT entry")) { try parse(bad) }
        bad = blob
        bad.bytes[8] ^= 1
        #expect(throws: ACPIParseError.badChecksum("RSDP (first 20 bytes)")) { try parse(bad) }
        bad = blob
        bad.bytes[0] = 0x58
        #expect(throws: ACPIParseError.badSignature(what: "RSDP", found: "XSD PTR ")) { try parse(bad) }
        #expect(throws: ACPIParseError.outOfBounds(what: "RSDP", address: 0xD0000, length: 36)) {
            try ACPITableParser(memory: blob.bytes, memoryBase: blob.baseAddress, rsdpAddress: 0xD0000)
        }
    }
}
