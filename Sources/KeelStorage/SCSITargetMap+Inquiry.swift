/// INQUIRY identification strings, already fixed-width ASCII (8 / 16 / 4 bytes).
struct SCSIIdentity {
    var vendor: [UInt8]
    var product: [UInt8]
    var revision: [UInt8]

    init(vendor: String, product: String, revision: String) {
        self.vendor = fixedASCII(vendor, width: 8)
        self.product = fixedASCII(product, width: 16)
        self.revision = fixedASCII(revision, width: 4)
    }

    init(_ disk: VirtualDiskGeometry) { self.init(vendor: disk.vendor, product: disk.product, revision: disk.revision) }

    static let microsoft = SCSIIdentity(vendor: "Msft", product: "Virtual Disk", revision: "1.0")
}

/// VPD page codes.
enum VPDPage {
    static let supportedPages: UInt8 = 0x00
    static let unitSerialNumber: UInt8 = 0x80
    static let deviceIdentification: UInt8 = 0x83
    static let blockLimits: UInt8 = 0xB0
    static let blockDeviceCharacteristics: UInt8 = 0xB1
    static let logicalBlockProvisioning: UInt8 = 0xB2
}

extension SCSITargetMap {
    /// INQUIRY: standard data, or a VPD page when EVPD is set. CmdDt, a page code without EVPD and
    /// unknown pages are ILLEGAL REQUEST with no data (the guest then sees the page as absent).
    func inquiry(_ command: SCSICommand, disk: VirtualDiskGeometry) -> SCSICompletion {
        let cdb = command.cdb
        let allocation = Int(cdb.be(UInt16.self, at: 3))
        guard cdb[1] & 0x02 == 0 else { return .checkCondition(.invalidFieldInCDB) }
        guard cdb[1] & 0x01 != 0 else {
            guard cdb[2] == 0 else { return .checkCondition(.invalidFieldInCDB) }
            return command.dataIn(standardInquiry(vendorFields: SCSIIdentity(disk), present: true), allocationLength: allocation)
        }
        guard let page = vpdPage(cdb[2], disk: disk) else { return .checkCondition(.invalidFieldInCDB) }
        return command.dataIn(page, allocationLength: allocation)
    }

    /// 36 bytes of standard INQUIRY data: direct-access disk, SPC-3, response format 2, command
    /// queuing. A missing LUN gets qualifier 3 / type 0x1F (0x7F) and, except on LUN 0, no strings.
    func standardInquiry(vendorFields: SCSIIdentity?, present: Bool) -> [UInt8] {
        var data = [UInt8](repeating: 0, count: 36)
        data[0] = present ? 0x00 : 0x7F
        data[2] = 0x05
        data[3] = 0x02
        data[4] = UInt8(data.count - 5)
        data[7] = 0x02
        if let fields = vendorFields {
            data.setBytes(fields.vendor, at: 8)
            data.setBytes(fields.product, at: 16)
            data.setBytes(fields.revision, at: 32)
        }
        return data
    }

    func supportedVPDPages(_ disk: VirtualDiskGeometry) -> [UInt8] {
        var pages = [VPDPage.supportedPages, VPDPage.unitSerialNumber, VPDPage.deviceIdentification,
                     VPDPage.blockLimits, VPDPage.blockDeviceCharacteristics]
        if disk.supportsUnmap { pages.append(VPDPage.logicalBlockProvisioning) }
        return pages
    }

    /// A whole VPD page (4-byte header with a big-endian page length), or nil if unsupported.
    func vpdPage(_ code: UInt8, disk: VirtualDiskGeometry) -> [UInt8]? {
        let body: [UInt8]
        switch code {
        case VPDPage.supportedPages: body = supportedVPDPages(disk)
        case VPDPage.unitSerialNumber: body = Array(disk.serial.utf8)
        case VPDPage.deviceIdentification: body = deviceIdentification(disk)
        case VPDPage.blockLimits: body = blockLimits(disk)
        case VPDPage.blockDeviceCharacteristics: body = blockDeviceCharacteristics()
        case VPDPage.logicalBlockProvisioning where disk.supportsUnmap: body = [0, 0x80, 0x02, 0]
        default: return nil
        }
        var header: [UInt8] = [0x00, code, 0, 0]
        header.setBE(UInt16(truncatingIfNeeded: body.count), at: 2)
        return header + body
    }

    /// Two designators for the logical unit: NAA locally assigned (type 3) from a hash of the
    /// serial, and a T10 vendor ID ("vendor" + serial).
    private func deviceIdentification(_ disk: VirtualDiskGeometry) -> [UInt8] {
        var naa = [UInt8](repeating: 0, count: 8)
        naa.setBE(0x3000_0000_0000_0000 | (disk.identifierHash & 0x0FFF_FFFF_FFFF_FFFF), at: 0)
        let t10 = fixedASCII(disk.vendor, width: 8) + Array(disk.serial.utf8)
        return [0x01, 0x03, 0x00, 0x08] + naa + [0x02, 0x01, 0x00, UInt8(truncatingIfNeeded: t10.count)] + t10
    }

    /// Block limits (page length 0x3C): transfer lengths in logical blocks, consistent with
    /// max_transfer_bytes; UNMAP limits only when the disk supports it.
    private func blockLimits(_ disk: VirtualDiskGeometry) -> [UInt8] {
        var body = [UInt8](repeating: 0, count: 0x3C)
        let maxBlocks = UInt32(clamping: maxTransferBytes / disk.logicalBlockSize)
        body.setBE(UInt16(clamping: disk.blocksPerPhysicalBlock), at: 2)
        body.setBE(maxBlocks, at: 4)
        body.setBE(maxBlocks, at: 8)
        if disk.supportsUnmap {
            body.setBE(maxUnmapBlocks, at: 16)
            body.setBE(UInt32(maxUnmapBlockDescriptors), at: 20)
            body.setBE(UInt32(disk.blocksPerPhysicalBlock), at: 24)
        }
        return body
    }

    /// Block device characteristics (page length 0x3C): medium rotation rate 1 = non-rotating.
    private func blockDeviceCharacteristics() -> [UInt8] {
        var body = [UInt8](repeating: 0, count: 0x3C)
        body.setBE(UInt16(1), at: 0)
        return body
    }
}
