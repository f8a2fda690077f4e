import KeelStorage
import Testing

/// Linux probes LUN 0 of every path/target and then follows REPORT LUNS.
@Suite struct MissingLUNTests {
    @Test func inquiryOnAnEmptyLUN0SaysNoLUNHere() {
        var rig = StorageRig(disks: [SCSIAddress(lun: 2): VirtualDiskGeometry(sizeBytes: mib)])
        let (srb, data) = rig.run([0x12, 0, 0, 0, 36, 0], at: SCSIAddress(path: 5, target: 1, lun: 0), length: 36)
        #expect(srb.srbStatus == SRBStatus.success && srb.scsiStatus == SCSIStatus.good)
        #expect(srb.address == SCSIAddress(path: 5, target: 1, lun: 0))
        #expect(data == [0x7F, 0, 5, 2, 31, 0, 0, 2] + Array("Msft    Virtual Disk    1.0 ".utf8))
        // Other missing LUNs: qualifier only, no strings.
        let other = rig.run([0x12, 0, 0, 0, 36, 0], at: SCSIAddress(lun: 9), length: 36).data
        #expect(other == [0x7F, 0, 5, 2, 31, 0, 0, 2] + [UInt8](repeating: 0, count: 28))
    }

    @Test func reportLUNsOnAMissingLUN() {
        var rig = StorageRig(disks: [SCSIAddress(lun: 2): VirtualDiskGeometry(sizeBytes: mib)])
        let cdb: [UInt8] = [0xA0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0]
        #expect(rig.run(cdb, at: SCSIAddress(lun: 0), length: 4096).data == [0, 0, 0, 8, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0])
        let empty = rig.run(cdb, at: SCSIAddress(path: 1, lun: 0), length: 4096)
        #expect(empty.srb.srbStatus == SRBStatus.success && empty.data == [0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test func everythingElseIsInvalidLUN() {
        var rig = StorageRig(disks: [SCSIAddress(lun: 2): VirtualDiskGeometry(sizeBytes: mib)])
        for cdb: [UInt8] in [[0, 0, 0, 0, 0, 0], [0x12, 1, 0x83, 0, 255, 0], [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0],
                             [0x9E, 0x10] + [UInt8](repeating: 0, count: 14)] {
            let srb = rig.run(cdb, at: SCSIAddress(lun: 1), length: cdb[0] == 0 ? 0 : 512).srb
            #expect(srb.srbStatus == SRBStatus.invalidLUN)
            #expect(srb.scsiStatus == SCSIStatus.checkCondition)
            #expect(srb.senseInfoLength == 0)
            #expect(srb.dataTransferLength == 0)
        }
        let map = SCSITargetMap(disks: [:])
        #expect(map.unmapRanges(parameterList: [UInt8](repeating: 0, count: 24), disk: disk0) == .respond(.invalidLUN))
    }
}
