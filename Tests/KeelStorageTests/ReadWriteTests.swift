import KeelStorage
import Testing

@Suite struct ReadWriteTests {
    let map = SCSITargetMap(disks: [disk0: VirtualDiskGeometry(sizeBytes: 64 * mib),
                                    SCSIAddress(lun: 1): VirtualDiskGeometry(sizeBytes: mib, readOnly: true)])

    func plan(_ cdb: [UInt8], lun: UInt8 = 0, buffer: Int) -> SCSIPlan {
        let direction: SCSIDataDirection = cdb[0] & 0x02 != 0 ? .write : .read
        return map.plan(SCSIRequest(address: SCSIAddress(lun: lun), cdb: cdb, direction: direction,
                                    dataTransferLength: UInt32(buffer)), bufferLength: buffer)
    }

    func read10(_ lba: UInt32, _ blocks: UInt16, fua: Bool = false) -> [UInt8] {
        [0x28, fua ? 0x08 : 0] + beBytes(UInt64(lba), 4) + [0] + be16(Int(blocks)) + [0]
    }

    func cdb16(_ op: UInt8, _ lba: UInt64, _ blocks: UInt32, flags: UInt8 = 0) -> [UInt8] {
        [op, flags] + beBytes(lba, 8) + beBytes(UInt64(blocks), 4) + [0, 0]
    }

    @Test func plansCarryByteOffsets() {
        #expect(plan(read10(8, 16), buffer: 8192) == .read(SCSITransfer(disk: disk0, byteOffset: 4096, length: 8192)))
        #expect(plan([0x2A, 0x08] + beBytes(100, 4) + [0, 0, 1, 0], buffer: 512)
                == .write(SCSITransfer(disk: disk0, byteOffset: 51_200, length: 512, forceUnitAccess: true)))
        #expect(plan(cdb16(0x88, 131_070, 2), buffer: 1024)
                == .read(SCSITransfer(disk: disk0, byteOffset: 131_070 * 512, length: 1024)))
        #expect(plan(cdb16(0x8A, 5, 1, flags: 0x08), buffer: 512)
                == .write(SCSITransfer(disk: disk0, byteOffset: 2560, length: 512, forceUnitAccess: true)))
        #expect(plan([0xA8, 0] + beBytes(3, 4) + beBytes(2, 4) + [0, 0], buffer: 1024)
                == .read(SCSITransfer(disk: disk0, byteOffset: 1536, length: 1024)))
        // READ(6): 21-bit LBA, length 0 means 256 blocks.
        #expect(plan([0x08, 0x01, 0x00, 0x02, 0, 0], buffer: 256 * 512)
                == .read(SCSITransfer(disk: disk0, byteOffset: 0x10002 * 512, length: 256 * 512)))
        #expect(plan([0x0A, 0, 0, 1, 1, 0], buffer: 512) == .write(SCSITransfer(disk: disk0, byteOffset: 512, length: 512)))
        #expect(plan(read10(0, 0), buffer: 0) == .respond(.good()))
        #expect(plan([0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0], buffer: 0) == .flush(disk: disk0))
        #expect(plan([0x91] + [UInt8](repeating: 0, count: 15), buffer: 0) == .flush(disk: disk0))
        // A larger buffer is an underrun: only the CDB's blocks move.
        #expect(plan(read10(0, 1), buffer: 4096) == .read(SCSITransfer(disk: disk0, byteOffset: 0, length: 512)))
    }

    @Test func rangeAndLengthErrors() {
        let outOfRange = SCSIPlan.respond(.checkCondition(.lbaOutOfRange))
        #expect(plan(read10(131_072, 1), buffer: 512) == outOfRange)
        #expect(plan(read10(131_071, 2), buffer: 1024) == outOfRange)
        #expect(plan(read10(131_072, 0), buffer: 0) == outOfRange)
        #expect(plan(read10(UInt32.max, UInt16.max), buffer: 0) == outOfRange)
        #expect(plan(cdb16(0x88, UInt64.max, UInt32.max), buffer: 512) == outOfRange)
        #expect(plan(cdb16(0x8A, UInt64.max - 1, 2), buffer: 1024) == outOfRange)
        #expect(plan(cdb16(0x88, 0, 0xFFFF_FFFF), buffer: 512) == outOfRange)
        // Transfer longer than the buffer (or than data_transfer_length).
        let invalid = SCSIPlan.respond(.checkCondition(.invalidFieldInCDB))
        #expect(plan(read10(0, 2), buffer: 512) == invalid)
        #expect(plan(read10(0, 1), buffer: 0) == invalid)
        let srb = SCSIRequest(address: disk0, cdb: read10(0, 8), direction: .read, dataTransferLength: 512)
        #expect(map.plan(srb, bufferLength: 4096) == invalid)
        // Protection information is not supported.
        #expect(plan(cdb16(0x88, 0, 1, flags: 0x20), buffer: 512) == invalid)
    }

    @Test func writesToReadOnlyDisksAreDataProtect() {
        let protected = SCSIPlan.respond(.checkCondition(.writeProtected))
        #expect(plan([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], lun: 1, buffer: 512) == protected)
        #expect(plan(cdb16(0x8A, 0, 1), lun: 1, buffer: 512) == protected)
        #expect(plan(read10(0, 1), lun: 1, buffer: 512) == .read(SCSITransfer(disk: SCSIAddress(lun: 1), byteOffset: 0, length: 512)))
        var rig = StorageRig(disks: [disk0: VirtualDiskGeometry(sizeBytes: mib, readOnly: true)])
        let srb = rig.run([0x2A, 0, 0, 0, 0, 0, 0, 0, 1, 0], direction: .write, length: 512).srb
        expectSense(srb, key: 7, asc: 0x27, srbCode: SRBStatus.error)
    }

    @Test func writeThenReadRoundTripsThroughGuestMemory() throws {
        var rig = StorageRig(disks: [disk0: VirtualDiskGeometry(sizeBytes: mib)])
        let pattern = (0..<12_288).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try rig.memory.write(pattern, at: 0x20_0123)
        let write = rig.run([0x2A, 0, 0, 0, 0, 10, 0, 0, 24, 0], direction: .write, length: 12_288, bufferAddress: 0x20_0123)
        #expect(write.srb.srbStatus == SRBStatus.success && write.srb.dataTransferLength == 12_288)
        #expect(Array(rig.images[disk0]?[5120..<17_408] ?? []) == pattern)
        let read = rig.run(cdb16(0x88, 10, 24), length: 12_288, bufferAddress: 0x30_0FF8)
        #expect(read.srb.srbStatus == SRBStatus.success && read.data == pattern)
        let last = rig.run(read10(2047, 1), length: 512)
        #expect(last.srb.srbStatus == SRBStatus.success)
        expectSense(rig.run(read10(2048, 1), length: 512).srb, key: 5, asc: 0x21)
    }

    @Test func ioOutcomes() {
        let read = SCSIPlan.read(SCSITransfer(disk: disk0, byteOffset: 0, length: 4096))
        let write = SCSIPlan.write(SCSITransfer(disk: disk0, byteOffset: 0, length: 4096))
        #expect(read.complete(.success(bytesTransferred: 4096)) == .good(transferred: 4096))
        #expect(read.complete(.success(bytesTransferred: 100)) == .checkCondition(.unrecoveredReadError))
        #expect(read.complete(.ioError(code: 5)) == .checkCondition(.unrecoveredReadError))
        #expect(write.complete(.ioError(code: 5)) == .checkCondition(.writeError))
        #expect(write.complete(.noSpace) == .checkCondition(.spaceAllocationFailed))
        #expect(SCSIPlan.flush(disk: disk0).complete(.ioError(code: 5)) == .checkCondition(.mediumError))
        #expect(SCSIPlan.flush(disk: disk0).complete(.success(bytesTransferred: 0)) == .good())
        let medium = SCSICompletion.checkCondition(.unrecoveredReadError)
        #expect(medium.srbStatus == 0x84 && medium.scsiStatus == 2 && medium.dataTransferLength == 0)
        #expect(medium.sense == [0x70, 0, 3, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0, 0, 0, 0, 0])
        #expect(SCSICompletion.checkCondition(.spaceAllocationFailed).sense[12...13] == [0x27, 0x07])
    }

    @Test func completionPacketEchoesTheNexus() {
        var controller = readyController()
        let address = SCSIAddress(path: 3, target: 1, lun: 7)
        let srb = SCSIRequest(address: address, cdb: read10(0, 1), direction: .read, dataTransferLength: 512)
        guard case .execute(let request) = controller.receive(srbPacket(srb, buffer: contiguousBuffer(address: 0x1000, length: 512), id: 1234)) else {
            Issue.record("not executed")
            return
        }
        #expect(request.bufferLength == 512)
        #expect(request.guestSegments(length: 512)?.map(\.address) == [0x1000])
        #expect(request.guestSegments(length: 513) == nil)
        let packet = request.completionPacket(.checkCondition(.lbaOutOfRange))
        #expect(packet?.type == .completion && packet?.transactionID == 1234 && packet?.payload.count == 64)
        #expect(vstor(packet)?.status == NTStatus.success && vstor(packet)?.operation == 1)
        let response = responseSRB(packet)
        #expect(response?.address == address && response?.srbStatus == 0x86 && response?.senseInfoLength == 18)
        #expect(response?.raw[0] == 52)
        // A caller's overstated transfer count is clamped to the buffer.
        #expect(responseSRB(request.completionPacket(.good(transferred: 1 << 30)))?.dataTransferLength == 512)
    }
}
