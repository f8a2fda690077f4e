extension SCSITargetMap {
    /// READ CAPACITY(10): last LBA (0xFFFFFFFF when it does not fit: the guest retries with 16)
    /// and the logical block size.
    func readCapacity10(_ disk: VirtualDiskGeometry) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: 8)
        data.setBE(UInt32(clamping: disk.lastLBA), at: 0)
        data.setBE(UInt32(disk.logicalBlockSize), at: 4)
        return data
    }

    /// READ CAPACITY(16): last LBA, block size, logical-per-physical exponent and LBPME for thin
    /// (UNMAP-capable) disks.
    func readCapacity16(_ disk: VirtualDiskGeometry) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: 32)
        data.setBE(disk.lastLBA, at: 0)
        data.setBE(UInt32(disk.logicalBlockSize), at: 8)
        data[13] = disk.physicalBlockExponent & 0x0F
        data[14] = disk.supportsUnmap ? 0x80 : 0
        return data
    }

    /// REPORT LUNS: the LUNs present on the request's path and target (8-byte entries, single-level
    /// peripheral addressing), possibly none. Select-report values other than 0–2 are invalid.
    func reportLUNs(_ command: SCSICommand, address: SCSIAddress) -> SCSICompletion {
        guard command.cdb[2] <= 2 else { return .checkCondition(.invalidFieldInCDB) }
        let list = luns(path: address.path, target: address.target)
        var data = [UInt8](repeating: 0, count: 8 + 8 * list.count)
        data.setBE(UInt32(8 * list.count), at: 0)
        for (i, lun) in list.enumerated() { data[8 + 8 * i + 1] = lun }
        return command.dataIn(data, allocationLength: Int(command.cdb.be(UInt32.self, at: 6)))
    }

    /// MODE SENSE(6) and (10): the caching page (write cache enabled, read cache enabled) alone or
    /// as "all pages"; no block descriptors. The header carries write protect and DPOFUA. Saved
    /// values are not supported; other pages are ILLEGAL REQUEST with no data.
    func modeSense(_ command: SCSICommand, disk: VirtualDiskGeometry) -> SCSICompletion {
        let cdb = command.cdb
        let ten = command.opcode == SCSIOpcode.modeSense10
        let control = cdb[2] >> 6
        let page = cdb[2] & 0x3F
        let subpage = cdb[3]
        guard control != 3 else { return .checkCondition(.savingParametersNotSupported) }
        switch (page, subpage) {
        case (0x08, 0x00), (0x3F, 0x00), (0x3F, 0xFF): break
        default: return .checkCondition(.invalidFieldInCDB)
        }
        var caching = [UInt8](repeating: 0, count: 20)
        caching[0] = 0x08
        caching[1] = 0x12
        if control != 1 { caching[2] = 0x04 }
        let deviceSpecific: UInt8 = (disk.readOnly ? 0x80 : 0) | 0x10
        var header: [UInt8]
        if ten {
            header = [0, 0, 0, deviceSpecific, 0, 0, 0, 0]
            header.setBE(UInt16(header.count + caching.count - 2), at: 0)
        } else {
            header = [UInt8(4 + caching.count - 1), 0, deviceSpecific, 0]
        }
        let allocation = ten ? Int(cdb.be(UInt16.self, at: 7)) : Int(cdb[4])
        return command.dataIn(header + caching, allocationLength: allocation)
    }

    /// VERIFY(10)/(16) without byte comparison: a range check, then GOOD (nothing to verify against).
    func verify(_ command: SCSICommand, disk: VirtualDiskGeometry) -> SCSICompletion {
        let cdb = command.cdb
        guard cdb[1] & 0xE6 == 0 else { return .checkCondition(.invalidFieldInCDB) }
        let sixteen = command.opcode == SCSIOpcode.verify16
        let lba = sixteen ? cdb.be(UInt64.self, at: 2) : UInt64(cdb.be(UInt32.self, at: 2))
        let blocks = sixteen ? UInt64(cdb.be(UInt32.self, at: 10)) : UInt64(cdb.be(UInt16.self, at: 7))
        guard Self.inRange(lba: lba, blocks: blocks, disk: disk) else { return .checkCondition(.lbaOutOfRange) }
        return .good()
    }

    /// Whether `blocks` blocks starting at `lba` lie on the disk (overflow-safe). The LBA itself must
    /// exist even for a zero-length transfer.
    static func inRange(lba: UInt64, blocks: UInt64, disk: VirtualDiskGeometry) -> Bool {
        let capacity = disk.blockCount
        return lba < capacity && blocks <= capacity - lba
    }
}
