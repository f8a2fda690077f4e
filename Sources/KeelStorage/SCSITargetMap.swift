/// SCSI opcodes this emulation answers.
enum SCSIOpcode {
    static let testUnitReady: UInt8 = 0x00
    static let requestSense: UInt8 = 0x03
    static let read6: UInt8 = 0x08
    static let write6: UInt8 = 0x0A
    static let inquiry: UInt8 = 0x12
    static let modeSense6: UInt8 = 0x1A
    static let startStopUnit: UInt8 = 0x1B
    static let preventAllowMediumRemoval: UInt8 = 0x1E
    static let readCapacity10: UInt8 = 0x25
    static let read10: UInt8 = 0x28
    static let write10: UInt8 = 0x2A
    static let verify10: UInt8 = 0x2F
    static let synchronizeCache10: UInt8 = 0x35
    static let unmap: UInt8 = 0x42
    static let modeSense10: UInt8 = 0x5A
    static let read16: UInt8 = 0x88
    static let write16: UInt8 = 0x8A
    static let verify16: UInt8 = 0x8F
    static let synchronizeCache16: UInt8 = 0x91
    static let serviceActionIn16: UInt8 = 0x9E
    static let reportLUNs: UInt8 = 0xA0
    static let read12: UInt8 = 0xA8
    static let write12: UInt8 = 0xAA

    /// The CDB length implied by the opcode's group (1 for vendor/reserved groups).
    static func cdbLength(_ opcode: UInt8) -> Int {
        switch opcode >> 5 {
        case 0: 6
        case 1, 2: 10
        case 4: 16
        case 5: 12
        default: 1
        }
    }
}

/// The disks behind one SCSI controller, keyed by (path, target, LUN), and the SCSI emulation
/// that answers the guest's commands for them. Pure: `plan` decides what an SRB needs, the caller
/// performs any disk I/O, and `SCSIPlan.complete(_:)` turns the outcome into a completion.
public struct SCSITargetMap: Sendable, Equatable {
    public let disks: [SCSIAddress: VirtualDiskGeometry]
    /// The controller's max_transfer_bytes (VPD 0xB0 reports it in blocks).
    public let maxTransferBytes: Int
    /// UNMAP limits reported in VPD 0xB0 and enforced on parameter lists.
    public let maxUnmapBlockDescriptors: Int
    public let maxUnmapBlocks: UInt32

    public init(disks: [SCSIAddress: VirtualDiskGeometry], maxTransferBytes: Int = 0x40000,
                maxUnmapBlockDescriptors: Int = 64, maxUnmapBlocks: UInt32 = 0x0040_0000) {
        self.disks = disks
        self.maxTransferBytes = max(4096, min(maxTransferBytes, Int(UInt32.max)))
        self.maxUnmapBlockDescriptors = max(1, min(maxUnmapBlockDescriptors, 1024))
        self.maxUnmapBlocks = max(1, maxUnmapBlocks)
    }

    /// The LUNs present on `path`/`target`, ascending.
    public func luns(path: UInt8, target: UInt8) -> [UInt8] {
        disks.keys.filter { $0.path == path && $0.target == target }.map(\.lun).sorted()
    }

    /// Decides what `srb` needs. `bufferLength` is the size of the guest data buffer (for a
    /// GPA-direct packet its `totalBytes`; 0 without one); the smaller of it and the SRB's
    /// data_transfer_length is what may be transferred.
    public func plan(_ srb: SCSIRequest, bufferLength: Int) -> SCSIPlan {
        guard srb.cdbLength >= 1, srb.cdbLength <= 16 else { return .respond(.invalidRequest) }
        let command = SCSICommand(cdb: srb.cdb, bufferLength: max(0, min(bufferLength, Int(srb.dataTransferLength))))
        guard srb.cdbLength >= SCSIOpcode.cdbLength(command.opcode) else {
            return .respond(.checkCondition(.invalidFieldInCDB))
        }
        guard let disk = disks[srb.address] else { return .respond(missingLUN(command, address: srb.address)) }
        return plan(command, disk: disk, address: srb.address)
    }

    /// `plan(_:bufferLength:)` for a request from the controller protocol.
    public func plan(_ request: StorageRequest) -> SCSIPlan {
        plan(request.srb, bufferLength: request.bufferLength)
    }

    private func plan(_ command: SCSICommand, disk: VirtualDiskGeometry, address: SCSIAddress) -> SCSIPlan {
        switch command.opcode {
        case SCSIOpcode.testUnitReady, SCSIOpcode.startStopUnit, SCSIOpcode.preventAllowMediumRemoval:
            return .respond(.good())
        case SCSIOpcode.requestSense:
            return .respond(command.dataIn(SCSISense.noSense.fixedFormat, allocationLength: Int(command.cdb[4])))
        case SCSIOpcode.inquiry:
            return .respond(inquiry(command, disk: disk))
        case SCSIOpcode.reportLUNs:
            return .respond(reportLUNs(command, address: address))
        case SCSIOpcode.readCapacity10:
            return .respond(command.dataIn(readCapacity10(disk), allocationLength: 8))
        case SCSIOpcode.serviceActionIn16 where command.cdb[1] & 0x1F == 0x10:
            return .respond(command.dataIn(readCapacity16(disk), allocationLength: Int(command.cdb.be(UInt32.self, at: 10))))
        case SCSIOpcode.serviceActionIn16:
            return .respond(.checkCondition(.invalidFieldInCDB))
        case SCSIOpcode.modeSense6, SCSIOpcode.modeSense10:
            return .respond(modeSense(command, disk: disk))
        case SCSIOpcode.read6, SCSIOpcode.read10, SCSIOpcode.read12, SCSIOpcode.read16,
             SCSIOpcode.write6, SCSIOpcode.write10, SCSIOpcode.write12, SCSIOpcode.write16:
            return readWrite(command, disk: disk, address: address)
        case SCSIOpcode.verify10, SCSIOpcode.verify16:
            return .respond(verify(command, disk: disk))
        case SCSIOpcode.synchronizeCache10, SCSIOpcode.synchronizeCache16:
            return .flush(disk: address)
        case SCSIOpcode.unmap where disk.supportsUnmap:
            return unmap(command, disk: disk, address: address)
        default:
            return .respond(.checkCondition(.invalidOpcode))
        }
    }

    /// A path/target/LUN with no disk: standard INQUIRY says "no LUN here" (0x7F), REPORT LUNS
    /// lists the target's LUNs, everything else is INVALID_LUN.
    private func missingLUN(_ command: SCSICommand, address: SCSIAddress) -> SCSICompletion {
        switch command.opcode {
        case SCSIOpcode.inquiry where command.cdb[1] & 0x03 == 0:
            guard command.cdb[2] == 0 else { return .checkCondition(.invalidFieldInCDB) }
            let data = standardInquiry(vendorFields: address.lun == 0 ? SCSIIdentity.microsoft : nil, present: false)
            return command.dataIn(data, allocationLength: Int(command.cdb.be(UInt16.self, at: 3)))
        case SCSIOpcode.reportLUNs:
            return reportLUNs(command, address: address)
        default:
            return .invalidLUN
        }
    }
}

/// A CDB (zero-padded to 16 bytes) and the usable size of the guest's data buffer.
struct SCSICommand {
    let cdb: [UInt8]
    let bufferLength: Int

    init(cdb: [UInt8], bufferLength: Int) {
        self.cdb = cdb.sized(16)
        self.bufferLength = bufferLength
    }

    var opcode: UInt8 { cdb[0] }

    /// GOOD with `data` cut to the allocation length and the buffer.
    func dataIn(_ data: [UInt8], allocationLength: Int) -> SCSICompletion {
        .good(dataIn: Array(data.prefix(max(0, min(allocationLength, bufferLength)))))
    }
}
