import KeelStorage
import Testing

/// The commands Linux's SCSI scan and sd probe send to a present disk.
@Suite struct ProbeTests {
    let geometry = VirtualDiskGeometry(sizeBytes: 64 * mib, serial: "KEEL-0001")

    func rig(_ disk: VirtualDiskGeometry? = nil) -> StorageRig { StorageRig(disks: [disk0: disk ?? geometry]) }

    @Test func standardInquiryIsByteExact() {
        var rig = rig()
        let (srb, data) = rig.run([0x12, 0, 0, 0, 36, 0], length: 36)
        #expect(srb.srbStatus == SRBStatus.success && srb.scsiStatus == SCSIStatus.good)
        #expect(srb.dataTransferLength == 36)
        #expect(srb.address == disk0)
        let expected: [UInt8] = [0x00, 0x00, 0x05, 0x02, 31, 0, 0, 0x02] + Array("Msft    Virtual Disk    1.0 ".utf8)
        #expect(data == expected)
        // A larger allocation gets the same 36 bytes; a smaller one is cut.
        #expect(rig.run([0x12, 0, 0, 0, 0xFF, 0], length: 255).data == expected)
        #expect(rig.run([0x12, 0, 0, 0, 5, 0], length: 36).data == Array(expected.prefix(5)))
        // The buffer limits as well as the allocation length.
        #expect(rig.run([0x12, 0, 0, 0, 36, 0], length: 8).data == Array(expected.prefix(8)))
    }

    @Test func vpdPages() {
        var rig = rig(VirtualDiskGeometry(sizeBytes: 64 * mib, serial: "KEEL 0001", supportsUnmap: true))
        #expect(rig.run([0x12, 1, 0x00, 0, 255, 0], length: 255).data == [0, 0, 0, 6, 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2])
        #expect(rig.run([0x12, 1, 0x80, 0, 255, 0], length: 255).data == [0, 0x80, 0, 9] + Array("KEEL_0001".utf8))

        let id = rig.run([0x12, 1, 0x83, 0, 255, 0], length: 255).data
        #expect(id.prefix(4) == [0, 0x83, 0, UInt8(id.count - 4)])
        #expect(id[4...7] == [0x01, 0x03, 0x00, 0x08])
        #expect(id[8] >> 4 == 3)
        #expect(id[16...19] == [0x02, 0x01, 0x00, 17])
        #expect(Array(id[20...]) == Array("Msft    KEEL_0001".utf8))

        let limits = rig.run([0x12, 1, 0xB0, 0, 255, 0], length: 255).data
        #expect(limits.count == 64 && limits[1] == 0xB0 && limits[3] == 0x3C)
        #expect(be32(limits, 8) == 512)   // 256 KiB / 512
        #expect(be32(limits, 12) == 512)
        #expect(limits[6...7] == [0, 8])
        #expect(be32(limits, 20) > 0 && be32(limits, 24) == 64 && be32(limits, 28) == 8)

        let characteristics = rig.run([0x12, 1, 0xB1, 0, 255, 0], length: 255).data
        #expect(characteristics.count == 64 && characteristics[4...5] == [0, 1])
        #expect(rig.run([0x12, 1, 0xB2, 0, 255, 0], length: 255).data == [0, 0xB2, 0, 4, 0, 0x80, 0x02, 0])
    }

    @Test func vpdWithoutUnmapAndUnsupportedPages() {
        var rig = rig()
        #expect(rig.run([0x12, 1, 0x00, 0, 255, 0], length: 255).data == [0, 0, 0, 5, 0x00, 0x80, 0x83, 0xB0, 0xB1])
        let limits = rig.run([0x12, 1, 0xB0, 0, 255, 0], length: 255).data
        #expect(be32(limits, 20) == 0 && be32(limits, 24) == 0)
        // INQUIRY quirk: errors must carry no data.
        expectSense(rig.run([0x12, 1, 0xB2, 0, 255, 0], length: 255).srb, key: 5, asc: 0x24)
        expectSense(rig.run([0x12, 1, 0x89, 0, 255, 0], length: 255).srb, key: 5, asc: 0x24)
        expectSense(rig.run([0x12, 0, 0x80, 0, 255, 0], length: 255).srb, key: 5, asc: 0x24)
        expectSense(rig.run([0x12, 2, 0, 0, 255, 0], length: 255).srb, key: 5, asc: 0x24)
    }

    @Test func reportLUNsAndTestUnitReady() {
        var rig = StorageRig(disks: [disk0: geometry, SCSIAddress(lun: 3): geometry, SCSIAddress(target: 1, lun: 0): geometry])
        let luns = rig.run([0xA0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], length: 4096)
        #expect(luns.srb.srbStatus == SRBStatus.success)
        #expect(luns.data == [0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0])
        let tur = rig.run([0, 0, 0, 0, 0, 0], length: 0)
        #expect(tur.srb.srbStatus == SRBStatus.success && tur.srb.scsiStatus == 0 && tur.srb.dataTransferLength == 0)
        expectSense(rig.run([0xA0, 0, 7, 0, 0, 0, 0, 0, 0x10, 0, 0, 0], length: 4096).srb, key: 5, asc: 0x24)
    }

    @Test func readCapacityOf64MiB() {
        var rig = rig()
        let rc16 = rig.run([0x9E, 0x10] + [UInt8](repeating: 0, count: 8) + [0, 0, 0, 32, 0, 0], length: 32)
        #expect(rc16.srb.srbStatus == SRBStatus.success && rc16.srb.dataTransferLength == 32)
        #expect(be64(rc16.data, 0) == 131_071)
        #expect(be32(rc16.data, 8) == 512)
        #expect(rc16.data[13] == 3)   // 4096-byte physical blocks
        #expect(rc16.data[14] == 0)   // not thin
        let rc10 = rig.run([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], length: 8)
        #expect(rc10.data == [0, 1, 0xFF, 0xFF, 0, 0, 2, 0])
        expectSense(rig.run([0x9E, 0x11] + [UInt8](repeating: 0, count: 14), length: 32).srb, key: 5, asc: 0x24)

        var thin = StorageRig(disks: [disk0: VirtualDiskGeometry(sizeBytes: 64 * mib + 100, physicalBlockSize: 512,
                                                                 supportsUnmap: true)])
        let thin16 = thin.run([0x9E, 0x10] + [UInt8](repeating: 0, count: 8) + [0, 0, 0, 32, 0, 0], length: 32).data
        #expect(be64(thin16, 0) == 131_071 && thin16[13] == 0 && thin16[14] == 0x80)
    }

    @Test func hugeDiskCapsReadCapacity10() {
        let map = SCSITargetMap(disks: [disk0: VirtualDiskGeometry(sizeBytes: 4 << 40)])
        let srb = SCSIRequest(address: disk0, cdb: [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], direction: .read, dataTransferLength: 8)
        #expect(map.plan(srb, bufferLength: 8) == .respond(.good(dataIn: [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 2, 0])))
    }

    @Test func modeSense() {
        var rig = rig()
        let all = rig.run([0x1A, 0, 0x3F, 0, 0xFF, 0], length: 255)
        #expect(all.data.count == 24)
        #expect(all.data.prefix(4) == [23, 0, 0x10, 0])   // write protect off, DPOFUA
        #expect(all.data[4...6] == [0x08, 0x12, 0x04])    // caching page, WCE
        #expect(rig.run([0x1A, 0, 0x3F, 0, 4, 0], length: 255).data == [23, 0, 0x10, 0])
        #expect(rig.run([0x1A, 0, 0x08, 0, 0xFF, 0], length: 255).data == all.data)
        let ten = rig.run([0x5A, 0, 0x08, 0, 0, 0, 0, 0, 0xFF, 0], length: 255).data
        #expect(ten.prefix(8) == [0, 26, 0, 0x10, 0, 0, 0, 0] && ten.count == 28)
        let changeable = rig.run([0x1A, 0, 0x48, 0, 0xFF, 0], length: 255).data
        #expect(changeable[6] == 0)
        // Unsupported page or saved values: error with no data (MODE SENSE(6) quirk).
        expectSense(rig.run([0x1A, 0, 0x1C, 0, 0xFF, 0], length: 255).srb, key: 5, asc: 0x24)
        expectSense(rig.run([0x1A, 0, 0xC8, 0, 0xFF, 0], length: 255).srb, key: 5, asc: 0x39)

        var readOnly = StorageRig(disks: [disk0: VirtualDiskGeometry(sizeBytes: mib, readOnly: true)])
        #expect(readOnly.run([0x1A, 0, 0x3F, 0, 4, 0], length: 4).data == [23, 0, 0x90, 0])
        #expect(readOnly.run([0x5A, 0, 0x3F, 0, 0, 0, 0, 0, 8, 0], length: 8).data[3] == 0x90)
    }

    @Test func miscellaneousCommandsAreGood() {
        var rig = rig()
        for cdb: [UInt8] in [[0x1B, 0, 0, 0, 1, 0], [0x1E, 0, 0, 0, 0, 0], [0x2F, 0, 0, 0, 0, 0, 0, 0, 8, 0],
                             [0x8F, 0] + [UInt8](repeating: 0, count: 14)] {
            #expect(rig.run(cdb, length: 0).srb.srbStatus == SRBStatus.success)
        }
        expectSense(rig.run([0x2F, 0, 0, 2, 0, 0, 0, 0, 1, 0], length: 0).srb, key: 5, asc: 0x21)
        expectSense(rig.run([0x2F, 0x02, 0, 0, 0, 0, 0, 0, 1, 0], length: 0).srb, key: 5, asc: 0x24)
        #expect(rig.run([0x03, 0, 0, 0, 18, 0], length: 18).data == [0x70, 0, 0, 0, 0, 0, 0, 10] + [UInt8](repeating: 0, count: 10))
    }

    @Test func unsupportedOpcodeHasAutosense() {
        var rig = rig()
        let ata = rig.run([0xA1, 0x08, 0x0E, 0, 1, 0, 0, 0, 0, 0xEC, 0, 0], length: 512)
        #expect(ata.srb.srbStatus == 0x86)
        #expect(ata.srb.scsiStatus == 2)
        #expect(ata.srb.senseData == [0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0])
        #expect(ata.srb.dataTransferLength == 0)
        expectSense(rig.run([0x4D, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0], length: 255).srb, key: 5, asc: 0x20)
        expectSense(rig.run([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], length: 24).srb, key: 5, asc: 0x20)   // UNMAP not supported
        expectSense(rig.run([0x93, 0] + [UInt8](repeating: 0, count: 14), length: 512).srb, key: 5, asc: 0x20)
    }
}
