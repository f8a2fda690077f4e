import KeelSystem

/// RNDIS message types (`msg_type`, the first u32 of every RNDIS message).
public enum RNDISMessageType {
    public static let packet: UInt32 = 0x0000_0001
    public static let initialize: UInt32 = 0x0000_0002
    public static let initializeComplete: UInt32 = 0x8000_0002
    public static let halt: UInt32 = 0x0000_0003
    public static let query: UInt32 = 0x0000_0004
    public static let queryComplete: UInt32 = 0x8000_0004
    public static let set: UInt32 = 0x0000_0005
    public static let setComplete: UInt32 = 0x8000_0005
    public static let reset: UInt32 = 0x0000_0006
    public static let resetComplete: UInt32 = 0x8000_0006
    public static let indicateStatus: UInt32 = 0x0000_0007
    public static let keepalive: UInt32 = 0x0000_0008
    public static let keepaliveComplete: UInt32 = 0x8000_0008
}

/// RNDIS status values (responses) and status indications.
public enum RNDISStatus {
    public static let success: UInt32 = 0
    public static let failure: UInt32 = 0xC000_0001
    public static let notSupported: UInt32 = 0xC000_00BB
    public static let invalidData: UInt32 = 0xC001_0015
    public static let bufferOverflow: UInt32 = 0x8000_0005
    public static let mediaConnect: UInt32 = 0x4001_000B
    public static let mediaDisconnect: UInt32 = 0x4001_000C
}

/// NDIS object identifiers this host answers (queries) or accepts (sets).
public enum RNDISOID {
    public static let supportedList: UInt32 = 0x0001_0101
    public static let hardwareStatus: UInt32 = 0x0001_0102
    public static let mediaSupported: UInt32 = 0x0001_0103
    public static let mediaInUse: UInt32 = 0x0001_0104
    public static let maximumFrameSize: UInt32 = 0x0001_0106
    public static let linkSpeed: UInt32 = 0x0001_0107
    public static let currentPacketFilter: UInt32 = 0x0001_010E
    public static let currentLookahead: UInt32 = 0x0001_010F
    public static let maximumTotalSize: UInt32 = 0x0001_0111
    public static let mediaConnectStatus: UInt32 = 0x0001_0114
    public static let networkLayerAddresses: UInt32 = 0x0001_0118
    public static let receiveScaleCapabilities: UInt32 = 0x0001_0203
    public static let receiveScaleParameters: UInt32 = 0x0001_0204
    public static let rndisConfigParameter: UInt32 = 0x0001_021B
    public static let friendlyName: UInt32 = 0x0002_0216
    public static let permanentAddress: UInt32 = 0x0101_0101
    public static let currentAddress: UInt32 = 0x0101_0102
    public static let multicastList: UInt32 = 0x0101_0103
    public static let maximumMulticastListSize: UInt32 = 0x0101_0104
    public static let offloadParameters: UInt32 = 0xFC01_020C
    public static let offloadHardwareCapabilities: UInt32 = 0xFC01_020D
}

/// Bits of OID_GEN_CURRENT_PACKET_FILTER (Linux sets DIRECTED | ALL_MULTICAST | BROADCAST).
public enum NDISPacketFilter {
    public static let directed: UInt32 = 0x01
    public static let multicast: UInt32 = 0x02
    public static let allMulticast: UInt32 = 0x04
    public static let broadcast: UInt32 = 0x08
    public static let promiscuous: UInt32 = 0x20
}

/// Host → guest RNDIS messages, byte-exact.
enum RNDISEncode {
    /// INITIALIZE_CMPLT (52 bytes): RNDIS 1.0, connectionless 802.3.
    static func initializeComplete(requestID: UInt32, status: UInt32, maxPackets: UInt32,
                                   maxTransferSize: UInt32, alignmentShift: UInt32) -> [UInt8] {
        fields(RNDISMessageType.initializeComplete,
               [requestID, status, 1, 0, 1, 0, maxPackets, maxTransferSize, alignmentShift, 0, 0])
    }

    /// QUERY_CMPLT: the data follows the 24-byte message; info_buf_offset 16 (from req_id).
    static func queryComplete(requestID: UInt32, status: UInt32, data: [UInt8]) -> [UInt8] {
        var w = LEWriter(capacity: 24 + data.count)
        w.u32(RNDISMessageType.queryComplete)
        w.u32(UInt32(truncatingIfNeeded: 24 + data.count))
        w.u32(requestID)
        w.u32(status)
        w.u32(UInt32(truncatingIfNeeded: data.count))
        w.u32(16)
        w.append(data)
        return w.bytes
    }

    static func setComplete(requestID: UInt32, status: UInt32) -> [UInt8] {
        fields(RNDISMessageType.setComplete, [requestID, status])
    }

    static func keepaliveComplete(requestID: UInt32, status: UInt32) -> [UInt8] {
        fields(RNDISMessageType.keepaliveComplete, [requestID, status])
    }

    /// RESET_CMPLT has no request id: status, addressing_reset (0: filters kept).
    static func resetComplete(status: UInt32) -> [UInt8] {
        fields(RNDISMessageType.resetComplete, [status, 0])
    }

    /// INDICATE_STATUS (20 bytes) without a status buffer.
    static func indicateStatus(_ status: UInt32) -> [UInt8] {
        fields(RNDISMessageType.indicateStatus, [status, 0, 0])
    }

    /// A PACKET message header: 8-byte RNDIS header, 36-byte body, then 16-byte PPIs (type, value);
    /// the data follows them, or starts at message offset `dataStart` when given (a gap between).
    /// `leadingData`, if any, is the data's first bytes: the header returned then runs through them.
    static func packetHeader(dataLength: Int, ppis: ReceivePPIs,
                             dataStart: Int? = nil, leadingData: ArraySlice<UInt8> = []) -> (header: [UInt8], length: Int) {
        let headerLength = dataStart ?? 44 + 16 * ppis.count
        var bytes = [UInt8](zeros: leadingData.isEmpty ? 44 + 16 * ppis.count : headerLength + leadingData.count)
        if !leadingData.isEmpty { bytes.replaceSubrange(headerLength..., with: leadingData) }
        let length = storePacketHeader(in: &bytes, at: 0, dataLength: dataLength, ppis: ppis, dataStart: headerLength)
        return (bytes, length)
    }

    /// Stores the fields of a PACKET header at `base` (one `storePacketHeader` wrote) that
    /// change with its data length, and the value of its first PPI; returns the message length.
    static func storePacketLength(_ fields: FieldStores, at base: Int, dataLength: Int, dataStart: Int,
                                  firstPPIValue: UInt32) -> Int {
        let length = (dataStart + dataLength + 7) / 8 * 8
        fields.store(UInt32(truncatingIfNeeded: length), at: base + 4)
        fields.store(UInt32(truncatingIfNeeded: dataLength), at: base + 12)
        fields.store(firstPPIValue, at: base + 44 + 12)
        return length
    }

    /// Stores a PACKET message header (as `packetHeader`) at `base` in `bytes`, which must be zero
    /// there and hold it; returns the message's length.
    static func storePacketHeader(in bytes: inout [UInt8], at base: Int, dataLength: Int,
                                  ppis: ReceivePPIs, dataStart: Int) -> Int {
        // Built in place (one per received packet): no OOB data, vc handle and reserved zero.
        let length = (dataStart + dataLength + 7) / 8 * 8
        bytes.withFieldStores { field in
            field.store(RNDISMessageType.packet, at: base)
            field.store(UInt32(truncatingIfNeeded: length), at: base + 4)
            field.store(UInt32(dataStart - 8), at: base + 8)          // data offset (from the body)
            field.store(UInt32(truncatingIfNeeded: dataLength), at: base + 12)
            field.store(UInt32(ppis.count == 0 ? 0 : 36), at: base + 28)     // PPI offset
            field.store(UInt32(16 * ppis.count), at: base + 32)
            var at = base + 44
            func storePPI(_ type: UInt32, _ value: UInt32?) {
                guard let value else { return }
                field.store(UInt32(16), at: at)
                field.store(type, at: at + 4)
                field.store(UInt32(12), at: at + 8)
                field.store(value, at: at + 12)
                at += 16
            }
            storePPI(ReceiveOffload.packetIDType, ppis.packetID)
            storePPI(RNDISPacketDecoder.checksumPPIType, ppis.checksum)
        }
        return length
    }

    private static func fields(_ type: UInt32, _ body: [UInt32]) -> [UInt8] {
        var w = LEWriter(capacity: 8 + 4 * body.count)
        w.u32(type)
        w.u32(UInt32(8 + 4 * body.count))
        for value in body { w.u32(value) }
        return w.bytes
    }
}
