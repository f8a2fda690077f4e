import KeelSystem

/// A sense key with its additional sense code and qualifier; encoded as fixed-format sense.
public struct SCSISense: Sendable, Equatable {
    public var key: UInt8
    public var asc: UInt8
    public var ascq: UInt8

    public init(key: UInt8, asc: UInt8, ascq: UInt8 = 0) {
        self.key = key
        self.asc = asc
        self.ascq = ascq
    }

    public static let noSense = SCSISense(key: 0x0, asc: 0x00)
    public static let invalidOpcode = SCSISense(key: 0x5, asc: 0x20)
    public static let lbaOutOfRange = SCSISense(key: 0x5, asc: 0x21)
    public static let invalidFieldInCDB = SCSISense(key: 0x5, asc: 0x24)
    public static let invalidFieldInParameterList = SCSISense(key: 0x5, asc: 0x26)
    public static let parameterListLengthError = SCSISense(key: 0x5, asc: 0x1A)
    public static let savingParametersNotSupported = SCSISense(key: 0x5, asc: 0x39)
    public static let writeProtected = SCSISense(key: 0x7, asc: 0x27)
    /// Thin-provisioning space exhausted (SBC "space allocation failed write protect").
    public static let spaceAllocationFailed = SCSISense(key: 0x7, asc: 0x27, ascq: 0x07)
    public static let unrecoveredReadError = SCSISense(key: 0x3, asc: 0x11)
    public static let writeError = SCSISense(key: 0x3, asc: 0x0C)
    public static let mediumError = SCSISense(key: 0x3, asc: 0x00)

    /// Fixed-format sense data (response code 0x70, additional length 10): 18 bytes.
    public var fixedFormat: [UInt8] {
        var bytes = [UInt8](zeros: 18)
        bytes[0] = 0x70
        bytes[2] = key & 0x0F
        bytes[7] = 10
        bytes[12] = asc
        bytes[13] = ascq
        return bytes
    }
}

/// The outcome of one SRB as the guest will see it: statuses, sense, bytes transferred and, for
/// emulated commands, the data-in bytes the caller copies to the start of the guest buffer.
public struct SCSICompletion: Sendable, Equatable {
    public var srbStatus: UInt8
    public var scsiStatus: UInt8
    public var sense: [UInt8]
    public var dataTransferLength: UInt32
    public var dataIn: [UInt8]

    public init(srbStatus: UInt8, scsiStatus: UInt8, sense: [UInt8] = [], dataTransferLength: UInt32 = 0,
                dataIn: [UInt8] = []) {
        self.srbStatus = srbStatus
        self.scsiStatus = scsiStatus
        self.sense = sense
        self.dataTransferLength = dataTransferLength
        self.dataIn = dataIn
    }

    /// GOOD with `data` to copy into the guest buffer.
    public static func good(dataIn data: [UInt8] = []) -> SCSICompletion {
        SCSICompletion(srbStatus: SRBStatus.success, scsiStatus: SCSIStatus.good,
                       dataTransferLength: UInt32(truncatingIfNeeded: data.count), dataIn: data)
    }

    /// GOOD after the caller moved `bytes` between the disk and the guest buffer.
    public static func good(transferred bytes: Int) -> SCSICompletion {
        SCSICompletion(srbStatus: SRBStatus.success, scsiStatus: SCSIStatus.good,
                       dataTransferLength: UInt32(clamping: bytes))
    }

    /// CHECK CONDITION with autosense and no data: SRB status INVALID_REQUEST for ILLEGAL REQUEST,
    /// ERROR for everything else (media, data protect).
    public static func checkCondition(_ sense: SCSISense) -> SCSICompletion {
        let code = sense.key == 0x5 ? SRBStatus.invalidRequest : SRBStatus.error
        return SCSICompletion(srbStatus: code | SRBStatus.autosenseValid, scsiStatus: SCSIStatus.checkCondition,
                              sense: sense.fixedFormat)
    }

    /// The LUN does not exist: the guest drops it (DID_NO_CONNECT). No sense.
    public static let invalidLUN = SCSICompletion(srbStatus: SRBStatus.invalidLUN, scsiStatus: SCSIStatus.checkCondition)

    /// A malformed SRB (not a SCSI-level error): INVALID_REQUEST without sense.
    public static let invalidRequest = SCSICompletion(srbStatus: SRBStatus.invalidRequest, scsiStatus: SCSIStatus.good)
}

/// What the caller's I/O produced for a planned read, write, flush or unmap.
public enum SCSIIOResult: Sendable, Equatable {
    /// Done; for reads and writes the bytes moved (fewer than planned counts as a medium error).
    case success(bytesTransferred: Int)
    /// The backend failed (errno or similar; only informative). Reported as MEDIUM ERROR.
    case ioError(code: Int32)
    /// The backend ran out of space (ENOSPC). Reported as DATA PROTECT 0x27/0x07, the SBC code
    /// for exhausted thin provisioning, which Linux fails without retrying.
    case noSpace
}

/// A byte range of a disk image.
public struct SCSIByteRange: Sendable, Equatable {
    public var byteOffset: UInt64
    public var length: UInt64

    public init(byteOffset: UInt64, length: UInt64) {
        self.byteOffset = byteOffset
        self.length = length
    }
}

/// One read or write between a disk image and the start of the guest's data buffer.
public struct SCSITransfer: Sendable, Equatable {
    public var disk: SCSIAddress
    public var byteOffset: UInt64
    public var length: Int
    /// WRITE with FUA: make the data durable (flush) before completing.
    public var forceUnitAccess: Bool

    public init(disk: SCSIAddress, byteOffset: UInt64, length: Int, forceUnitAccess: Bool = false) {
        self.disk = disk
        self.byteOffset = byteOffset
        self.length = length
        self.forceUnitAccess = forceUnitAccess
    }
}

/// What an SRB needs. The pure module does no I/O: the caller performs the plan against the disk
/// image and the guest buffer, then turns the outcome into a completion with `complete(_:)`.
public enum SCSIPlan: Sendable, Equatable {
    /// Answered by emulation; copy `dataIn` (if any) to the start of the guest buffer.
    case respond(SCSICompletion)
    /// Read `length` bytes at `byteOffset` of the image into the guest buffer (offset 0 on).
    case read(SCSITransfer)
    /// Write `length` bytes from the guest buffer to the image; flush afterwards if FUA.
    case write(SCSITransfer)
    /// Flush the image (SYNCHRONIZE CACHE).
    case flush(disk: SCSIAddress)
    /// Copy `parameterListLength` bytes from the guest buffer, pass them to
    /// `SCSITargetMap.unmapRanges(parameterList:disk:)`, discard the ranges, then complete.
    case unmap(disk: SCSIAddress, parameterListLength: Int)

    /// The completion for the caller's I/O result. `.respond` plans return their completion.
    public func complete(_ result: SCSIIOResult) -> SCSICompletion {
        switch (self, result) {
        case (.respond(let completion), _):
            return completion
        case (.read(let transfer), .success(let bytes)):
            return bytes >= transfer.length ? .good(transferred: transfer.length) : .checkCondition(.unrecoveredReadError)
        case (.write(let transfer), .success(let bytes)):
            return bytes >= transfer.length ? .good(transferred: transfer.length) : .checkCondition(.writeError)
        case (.unmap(_, let length), .success):
            return .good(transferred: length)
        case (.flush, .success):
            return .good()
        case (.read, .ioError):
            return .checkCondition(.unrecoveredReadError)
        case (.write, .ioError):
            return .checkCondition(.writeError)
        case (_, .ioError):
            return .checkCondition(.mediumError)
        case (_, .noSpace):
            return .checkCondition(.spaceAllocationFailed)
        }
    }
}

/// The result of parsing an UNMAP parameter list.
public enum UnmapDecision: Sendable, Equatable {
    /// Discard these ranges (possibly none), then complete the plan with `.success`.
    case discard([SCSIByteRange])
    /// The list is invalid; answer with this completion.
    case respond(SCSICompletion)
}
