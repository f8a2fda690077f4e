import KeelStorage
import Testing

@Suite struct UnmapTests {
    let thin = VirtualDiskGeometry(sizeBytes: mib, supportsUnmap: true)
    var map: SCSITargetMap { SCSITargetMap(disks: [disk0: thin], maxUnmapBlockDescriptors: 4, maxUnmapBlocks: 1024) }

    func list(_ descriptors: [(UInt64, UInt32)]) -> [UInt8] {
        let body: [UInt8] = descriptors.flatMap { (lba: UInt64, blocks: UInt32) -> [UInt8] in
            beBytes(lba, 8) + beBytes(UInt64(blocks), 4) + [0, 0, 0, 0]
        }
        return be16(6 + body.count) + be16(body.count) + [0, 0, 0, 0] + body
    }

    func unmapCDB(_ length: Int, anchor: Bool = false) -> [UInt8] { [0x42, anchor ? 1 : 0, 0, 0, 0, 0, 0] + be16(length) + [0] }

    @Test func plansAndParses() {
        let srb = SCSIRequest(address: disk0, cdb: unmapCDB(40), direction: .write, dataTransferLength: 40)
        #expect(map.plan(srb, bufferLength: 40) == .unmap(disk: disk0, parameterListLength: 40))
        #expect(map.unmapRanges(parameterList: list([(8, 16), (100, 0), (2047, 1)]), disk: disk0)
                == .discard([SCSIByteRange(byteOffset: 4096, length: 8192), SCSIByteRange(byteOffset: 2047 * 512, length: 512)]))
        #expect(map.unmapRanges(parameterList: list([]), disk: disk0) == .discard([]))
        #expect(SCSIPlan.unmap(disk: disk0, parameterListLength: 40).complete(.success(bytesTransferred: 0)) == .good(transferred: 40))
    }

    @Test func cdbChecks() {
        func plan(_ cdb: [UInt8], buffer: Int, disk: VirtualDiskGeometry? = nil) -> SCSIPlan {
            let map = disk.map { SCSITargetMap(disks: [disk0: $0]) } ?? self.map
            return map.plan(SCSIRequest(address: disk0, cdb: cdb, direction: .write, dataTransferLength: UInt32(buffer)),
                            bufferLength: buffer)
        }
        #expect(plan(unmapCDB(0), buffer: 0) == .respond(.good()))
        #expect(plan(unmapCDB(4), buffer: 4) == .respond(.checkCondition(.parameterListLengthError)))
        #expect(plan(unmapCDB(24), buffer: 16) == .respond(.checkCondition(.invalidFieldInCDB)))
        #expect(plan(unmapCDB(24, anchor: true), buffer: 24) == .respond(.checkCondition(.invalidFieldInCDB)))
        #expect(plan(unmapCDB(24), buffer: 24, disk: VirtualDiskGeometry(sizeBytes: mib, readOnly: true, supportsUnmap: true))
                == .respond(.checkCondition(.writeProtected)))
        #expect(plan(unmapCDB(24), buffer: 24, disk: VirtualDiskGeometry(sizeBytes: mib)) == .respond(.checkCondition(.invalidOpcode)))
    }

    @Test func malformedListsAreRejected() {
        let badList = UnmapDecision.respond(.checkCondition(.invalidFieldInParameterList))
        #expect(map.unmapRanges(parameterList: [0, 6, 0], disk: disk0) == .respond(.checkCondition(.parameterListLengthError)))
        var truncated = list([(0, 1)])
        truncated.removeLast(4)
        #expect(map.unmapRanges(parameterList: truncated, disk: disk0) == badList)
        var oddLength = list([(0, 1)])
        oddLength[3] = 15
        #expect(map.unmapRanges(parameterList: oddLength, disk: disk0) == badList)
        var hugeLength = list([(0, 1)])
        hugeLength[0...3] = [0xFF, 0xFF, 0xFF, 0xF0]
        #expect(map.unmapRanges(parameterList: hugeLength, disk: disk0) == badList)
        #expect(map.unmapRanges(parameterList: list(Array(repeating: (0, 1), count: 5)), disk: disk0) == badList)
        #expect(map.unmapRanges(parameterList: list([(0, 1000), (1000, 100)]), disk: disk0) == badList)
        let outOfRange = UnmapDecision.respond(.checkCondition(.lbaOutOfRange))
        #expect(map.unmapRanges(parameterList: list([(2047, 2)]), disk: disk0) == outOfRange)
        #expect(map.unmapRanges(parameterList: list([(UInt64.max, UInt32.max)]), disk: disk0) == outOfRange)
        #expect(map.unmapRanges(parameterList: list([(0, 1)]), disk: SCSIAddress(lun: 4)) == .respond(.invalidLUN))
    }

    @Test func endToEndZeroesTheRanges() throws {
        var rig = StorageRig(disks: [disk0: thin])
        rig.images[disk0] = [UInt8](repeating: 0xAB, count: Int(mib))
        let parameters = list([(1, 2), (10, 1)])
        try rig.memory.write(parameters, at: 0x10_0200)
        let result = rig.run(unmapCDB(parameters.count), direction: .write, length: parameters.count)
        #expect(result.srb.srbStatus == SRBStatus.success)
        let image = rig.images[disk0] ?? []
        #expect(image[511] == 0xAB && image[512..<1536].allSatisfy { $0 == 0 } && image[1536] == 0xAB)
        #expect(image[5120..<5632].allSatisfy { $0 == 0 } && image[5632] == 0xAB)
    }
}
