import KeelSystem

/// A SCSI nexus on one controller: path (channel 0–7), target (0–1) and LUN. Identifies a disk.
public struct SCSIAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var path: UInt8
    public var target: UInt8
    public var lun: UInt8

    public init(path: UInt8 = 0, target: UInt8 = 0, lun: UInt8) {
        self.path = path
        self.target = target
        self.lun = lun
    }

    public static func < (a: SCSIAddress, b: SCSIAddress) -> Bool {
        (a.path, a.target, a.lun) < (b.path, b.target, b.lun)
    }

    public var description: String { "\(path):\(target):\(lun)" }
}

/// SRB status codes (low 6 bits) and flags of `vm_srb.srb_status`.
public enum SRBStatus {
    public static let success: UInt8 = 0x01
    public static let aborted: UInt8 = 0x02
    public static let error: UInt8 = 0x04
    public static let invalidRequest: UInt8 = 0x06
    public static let dataOverrun: UInt8 = 0x12
    public static let invalidLUN: UInt8 = 0x20
    public static let internalError: UInt8 = 0x30
    public static let queueFrozen: UInt8 = 0x40
    public static let autosenseValid: UInt8 = 0x80
}

/// SAM status codes for `vm_srb.scsi_status`.
public enum SCSIStatus {
    public static let good: UInt8 = 0x00
    public static let checkCondition: UInt8 = 0x02
    public static let busy: UInt8 = 0x08
}

/// `vm_srb.data_in`: the direction of the data buffer.
public enum SCSIDataDirection: UInt8, Sendable {
    case write = 0
    case read = 1
    case none = 2
}

/// The `vm_srb` (vmscsi_request) of an EXECUTE_SRB packet: 52 bytes on Win8+ (36 before, without
/// the queue/flags/timeout extension). Keeps the raw bytes so the completion can echo them.
public struct SCSIRequest: Sendable, Equatable {
    public static let size = 52
    public static let legacySize = 36
    /// Offset of the CDB / sense-data union and its size.
    static let cdbOffset = 16
    static let unionSize = 20

    /// The SRB as received, zero-padded to 52 bytes.
    public let raw: [UInt8]

    /// Decodes the union of a vstor packet (missing bytes read as zero).
    public init(decoding body: [UInt8]) {
        raw = body.sized(Self.size)
    }

    /// Builds a request the way storvsc does (for tests and guest models).
    public init(address: SCSIAddress, cdb: [UInt8], direction: SCSIDataDirection, dataTransferLength: UInt32,
                senseInfoLength: UInt8 = 20) {
        var bytes = [UInt8](zeros: Self.size)
        bytes.setLE(UInt16(Self.size), at: 0)
        bytes[5] = address.path
        bytes[6] = address.target
        bytes[7] = address.lun
        bytes[8] = UInt8(truncatingIfNeeded: cdb.count)
        bytes[9] = senseInfoLength
        bytes[10] = direction.rawValue
        bytes.setLE(dataTransferLength, at: 12)
        bytes.setBytes(Array(cdb.prefix(16)), at: Self.cdbOffset)
        bytes.setLE(UInt32(60), at: 44)
        raw = bytes
    }

    public var srbStatus: UInt8 { raw.byte(2) }
    public var scsiStatus: UInt8 { raw.byte(3) }
    public var address: SCSIAddress { SCSIAddress(path: raw.byte(5), target: raw.byte(6), lun: raw.byte(7)) }
    /// The guest's claimed CDB length (may exceed 16: hostile).
    public var cdbLength: Int { Int(raw.byte(8)) }
    public var senseInfoLength: Int { Int(raw.byte(9)) }
    /// Raw `data_in` byte; see `direction`.
    public var dataIn: UInt8 { raw.byte(10) }
    public var direction: SCSIDataDirection? { SCSIDataDirection(rawValue: dataIn) }
    /// Bytes the guest says its data buffer holds.
    public var dataTransferLength: UInt32 { raw.le(UInt32.self, at: 12) }
    /// The CDB: `cdbLength` bytes, at most 16.
    public var cdb: [UInt8] { raw.bytes(Self.cdbOffset, min(cdbLength, 16)) }
    /// The sense data area (responses only).
    public var senseData: [UInt8] { raw.bytes(Self.cdbOffset, min(senseInfoLength, Self.unionSize)) }

    /// The SRB with the response fields filled in: status bytes, sense length and data, and the
    /// bytes transferred. Everything else is echoed (path, target, LUN, extension).
    func response(srbStatus: UInt8, scsiStatus: UInt8, sense: [UInt8], transferred: UInt32) -> [UInt8] {
        var bytes = raw
        bytes.setLE(UInt16(Self.size), at: 0)
        bytes[2] = srbStatus
        bytes[3] = scsiStatus
        let senseBytes = Array(sense.prefix(Self.unionSize))
        bytes[9] = UInt8(senseBytes.count)
        bytes.setLE(transferred, at: 12)
        bytes.setBytes(senseBytes.sized(Self.unionSize), at: Self.cdbOffset)
        return bytes
    }
}
