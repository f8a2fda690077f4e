extension SCSITargetMap {
    /// READ/WRITE (6, 10, 12, 16): checks protection fields, write protect, the LBA range and that
    /// the guest buffer holds the whole transfer, then plans the I/O. Zero blocks is GOOD at once.
    func readWrite(_ command: SCSICommand, disk: VirtualDiskGeometry, address: SCSIAddress) -> SCSIPlan {
        let cdb = command.cdb
        let lba: UInt64
        let blocks: UInt64
        var forceUnitAccess = false
        switch command.opcode {
        case SCSIOpcode.read6, SCSIOpcode.write6:
            lba = UInt64(cdb[1] & 0x1F) << 16 | UInt64(cdb.be(UInt16.self, at: 2))
            blocks = cdb[4] == 0 ? 256 : UInt64(cdb[4])
        case SCSIOpcode.read10, SCSIOpcode.write10:
            lba = UInt64(cdb.be(UInt32.self, at: 2))
            blocks = UInt64(cdb.be(UInt16.self, at: 7))
        case SCSIOpcode.read12, SCSIOpcode.write12:
            lba = UInt64(cdb.be(UInt32.self, at: 2))
            blocks = UInt64(cdb.be(UInt32.self, at: 6))
        default:
            lba = cdb.be(UInt64.self, at: 2)
            blocks = UInt64(cdb.be(UInt32.self, at: 10))
        }
        let isWrite = [SCSIOpcode.write6, SCSIOpcode.write10, SCSIOpcode.write12, SCSIOpcode.write16].contains(command.opcode)
        if SCSIOpcode.cdbLength(command.opcode) > 6 {
            guard cdb[1] & 0xE0 == 0 else { return .respond(.checkCondition(.invalidFieldInCDB)) }
            forceUnitAccess = cdb[1] & 0x08 != 0
        }
        if isWrite && disk.readOnly { return .respond(.checkCondition(.writeProtected)) }
        guard Self.inRange(lba: lba, blocks: blocks, disk: disk) else { return .respond(.checkCondition(.lbaOutOfRange)) }
        // blocks <= capacity, so the shifted values fit (at most sizeBytes).
        let length = blocks << UInt64(disk.blockShift)
        guard length <= UInt64(command.bufferLength) else { return .respond(.checkCondition(.invalidFieldInCDB)) }
        guard length > 0 else { return .respond(.good()) }
        let transfer = SCSITransfer(disk: address, byteOffset: lba << UInt64(disk.blockShift), length: Int(length),
                                    forceUnitAccess: isWrite && forceUnitAccess)
        return isWrite ? .write(transfer) : .read(transfer)
    }

    /// UNMAP: anchoring is not supported; a zero-length parameter list is a no-op; the list must
    /// fit in the guest buffer and be at least its 8-byte header.
    func unmap(_ command: SCSICommand, disk: VirtualDiskGeometry, address: SCSIAddress) -> SCSIPlan {
        let cdb = command.cdb
        guard cdb[1] & 0x01 == 0 else { return .respond(.checkCondition(.invalidFieldInCDB)) }
        if disk.readOnly { return .respond(.checkCondition(.writeProtected)) }
        let listLength = Int(cdb.be(UInt16.self, at: 7))
        guard listLength > 0 else { return .respond(.good()) }
        guard listLength >= 8 else { return .respond(.checkCondition(.parameterListLengthError)) }
        guard listLength <= command.bufferLength else { return .respond(.checkCondition(.invalidFieldInCDB)) }
        return .unmap(disk: address, parameterListLength: listLength)
    }

    /// Parses and validates the UNMAP parameter list the caller copied from the guest buffer:
    /// an 8-byte header (data length, block descriptor data length), then 16-byte descriptors
    /// (LBA, block count). Every range must lie on the disk; the descriptor count and total
    /// blocks must respect the VPD 0xB0 limits. Zero-block descriptors are skipped.
    public func unmapRanges(parameterList: [UInt8], disk address: SCSIAddress) -> UnmapDecision {
        guard let disk = disks[address] else { return .respond(.invalidLUN) }
        guard disk.supportsUnmap else { return .respond(.checkCondition(.invalidOpcode)) }
        guard parameterList.count >= 8 else { return .respond(.checkCondition(.parameterListLengthError)) }
        let dataLength = Int(parameterList.be(UInt16.self, at: 0))
        let descriptorBytes = Int(parameterList.be(UInt16.self, at: 2))
        guard dataLength + 2 <= parameterList.count, descriptorBytes + 8 <= parameterList.count,
              descriptorBytes % 16 == 0 else {
            return .respond(.checkCondition(.invalidFieldInParameterList))
        }
        let count = descriptorBytes / 16
        guard count <= maxUnmapBlockDescriptors else { return .respond(.checkCondition(.invalidFieldInParameterList)) }
        var ranges: [SCSIByteRange] = []
        var totalBlocks: UInt64 = 0
        for i in 0..<count {
            let lba = parameterList.be(UInt64.self, at: 8 + 16 * i)
            let blocks = UInt64(parameterList.be(UInt32.self, at: 16 + 16 * i))
            guard blocks > 0 else { continue }
            guard Self.inRange(lba: lba, blocks: blocks, disk: disk) else { return .respond(.checkCondition(.lbaOutOfRange)) }
            totalBlocks += blocks
            guard totalBlocks <= UInt64(maxUnmapBlocks) else { return .respond(.checkCondition(.invalidFieldInParameterList)) }
            ranges.append(SCSIByteRange(byteOffset: lba << UInt64(disk.blockShift), length: blocks << UInt64(disk.blockShift)))
        }
        return .discard(ranges)
    }
}
