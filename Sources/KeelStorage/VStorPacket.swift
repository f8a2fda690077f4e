import KeelSystem

/// vstor operation codes: the first field of every storvsc packet.
public enum VStorOperation: UInt32, Sendable {
    case completeIO = 1
    case removeDevice = 2
    case executeSRB = 3
    case resetLUN = 4
    case resetAdapter = 5
    case resetBus = 6
    case beginInitialization = 7
    case endInitialization = 8
    case queryProtocolVersion = 9
    case queryProperties = 10
    case enumerateBus = 11
    case fcHBAData = 12
    case createSubChannels = 13
    case eventNotification = 14
}

/// NTSTATUS values the host puts in a vstor packet's `status` field.
public enum NTStatus {
    public static let success: UInt32 = 0
    public static let bufferOverflow: UInt32 = 0x8000_0005
    public static let invalidParameter: UInt32 = 0xC000_000D
    public static let revisionMismatch: UInt32 = 0xC000_0059
    public static let ioTimeout: UInt32 = 0xC000_00B5
    public static let deviceDoesNotExist: UInt32 = 0xC000_00C0
    public static let invalidDeviceState: UInt32 = 0xC000_0184
    public static let ioDeviceError: UInt32 = 0xC000_0185
}

/// storvsp protocol versions (major in the high byte).
public enum VStorVersion {
    public static let win7: UInt16 = 0x0402
    public static let win8: UInt16 = 0x0501
    public static let blue: UInt16 = 0x0600
    public static let threshold: UInt16 = 0x0602
}

/// One `vstor_packet`: operation, flags (bit 0 = completion requested), NTSTATUS and a 52-byte
/// union (SRB, protocol version, channel properties or sub-channel count). Win8+ packets are
/// 64 bytes; pre-Win8 guests send 48 (a 36-byte SRB).
public struct VStorPacket: Sendable, Equatable {
    public static let size = 64
    public static let legacySize = 48
    public static let bodyOffset = 12
    public static let bodySize = 52

    public var operation: UInt32
    public var flags: UInt32
    public var status: UInt32
    /// The union, always `bodySize` bytes (zero-padded when decoded from a short packet).
    public var body: [UInt8]

    public init(operation: VStorOperation, flags: UInt32 = 0, status: UInt32 = NTStatus.success, body: [UInt8] = []) {
        self.operation = operation.rawValue
        self.flags = flags
        self.status = status
        self.body = body.sized(Self.bodySize)
    }

    /// Decodes a guest payload; nil if it is shorter than a pre-Win8 packet (48 bytes).
    /// Bytes past 64 (ring padding) are ignored.
    public init?(decoding payload: [UInt8]) {
        guard payload.count >= Self.legacySize else { return nil }
        operation = payload.le(UInt32.self, at: 0)
        flags = payload.le(UInt32.self, at: 4)
        status = payload.le(UInt32.self, at: 8)
        body = payload.bytes(Self.bodyOffset, Self.bodySize)
    }

    /// The packet as `size` bytes (cut or zero-padded): 64 for Win8+, 48 for older guests.
    public func encode(size: Int = VStorPacket.size) -> [UInt8] {
        var bytes = [UInt8](zeros: Self.bodyOffset)
        bytes.setLE(operation, at: 0)
        bytes.setLE(flags, at: 4)
        bytes.setLE(status, at: 8)
        return (bytes + body).sized(size)
    }

    /// The protocol version field of a QUERY_PROTOCOL_VERSION body.
    public var protocolVersion: UInt16 { body.le(UInt16.self, at: 0) }
    /// The count of a CREATE_SUB_CHANNELS body.
    public var subChannelCount: UInt16 { body.le(UInt16.self, at: 0) }
}

/// The channel properties the host returns for QUERY_PROPERTIES (24 bytes in the union).
public struct VStorChannelProperties: Sendable, Equatable {
    public var maxChannelCount: UInt16
    public var supportsMultiChannel: Bool
    public var maxTransferBytes: UInt32

    public init(maxChannelCount: UInt16, supportsMultiChannel: Bool, maxTransferBytes: UInt32) {
        self.maxChannelCount = maxChannelCount
        self.supportsMultiChannel = supportsMultiChannel
        self.maxTransferBytes = maxTransferBytes
    }

    /// `reserved u32, max_channel_cnt u16, reserved u16, flags u32, max_transfer_bytes u32, reserved u64`.
    public func encode() -> [UInt8] {
        var bytes = [UInt8](zeros: 24)
        bytes.setLE(maxChannelCount, at: 4)
        bytes.setLE(UInt32(supportsMultiChannel ? 1 : 0), at: 8)
        bytes.setLE(maxTransferBytes, at: 12)
        return bytes
    }

    public init(decoding body: [UInt8]) {
        maxChannelCount = body.le(UInt16.self, at: 4)
        supportsMultiChannel = body.le(UInt32.self, at: 8) & 1 != 0
        maxTransferBytes = body.le(UInt32.self, at: 12)
    }
}
