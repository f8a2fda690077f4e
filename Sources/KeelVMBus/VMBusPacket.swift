import KeelSystem

/// Ring-buffer packet types (the descriptor's first field).
public enum VMBusPacketType: UInt16, Sendable {
    case synch = 1
    case addTransferPageSet = 2
    case removeTransferPageSet = 3
    case establishGPADL = 4
    case teardownGPADL = 5
    case dataInBand = 6
    case dataUsingTransferPages = 7
    case dataUsingGPADL = 8
    case dataUsingGPADirect = 9
    case cancelRequest = 10
    case completion = 11
    case dataUsingAdditionalPacket = 12
    case additionalData = 13
}

/// One ring-buffer packet: a 16-byte descriptor, type-specific header bytes, then the payload,
/// padded to 8 bytes. The 8-byte trailer that follows on the ring is not part of it.
public struct VMBusPacket: Sendable, Equatable {
    /// Raw packet type (the guest may send types this host does not know).
    public let rawType: UInt16
    /// Descriptor flags; bit 0 = completion requested.
    public let flags: UInt16
    public let transactionID: UInt64
    /// Byte offset of the payload from the descriptor start (a multiple of 8, at least 16).
    public let dataOffset: Int
    /// The whole packet (descriptor included), a multiple of 8 bytes.
    public let bytes: [UInt8]

    /// Builds a packet; `header` goes between descriptor and payload and is padded to 8 bytes.
    public init(type: VMBusPacketType, flags: UInt16 = 0, transactionID: UInt64, header: [UInt8] = [], payload: [UInt8]) {
        self.init(type: type, flags: flags, transactionID: transactionID, headerLength: header.count,
                  payloadLength: payload.count) { bytes, dataOffset in
            bytes.replaceSubrange(VMBusPacket.descriptorSize..<VMBusPacket.descriptorSize + header.count, with: header)
            bytes.replaceSubrange(dataOffset..<dataOffset + payload.count, with: payload)
        }
    }

    /// Builds a packet in one allocation: `fill` writes the header (from `descriptorSize`) and
    /// the payload (from the data offset it is given) into the zeroed, correctly sized bytes.
    /// Every packet the host sends (each completion among them) comes through here.
    public init(type: VMBusPacketType, flags: UInt16 = 0, transactionID: UInt64, headerLength: Int, payloadLength: Int,
                fill: (_ bytes: inout [UInt8], _ dataOffset: Int) -> Void) {
        let dataOffset = VMBusPacket.descriptorSize + (headerLength + 7) / 8 * 8
        let length = (dataOffset + payloadLength + 7) / 8 * 8
        var bytes = [UInt8](zeros: length)
        let descriptor = UInt64(type.rawValue) | UInt64(UInt16(truncatingIfNeeded: dataOffset / 8)) << 16
            | UInt64(UInt16(truncatingIfNeeded: length / 8)) << 32 | UInt64(flags) << 48
        bytes.withFieldStores { field in
            field.store(descriptor, at: 0)
            field.store(transactionID, at: 8)
        }
        fill(&bytes, dataOffset)
        precondition(bytes.count == length, "a packet's fill changed its length")
        self.init(rawType: type.rawValue, flags: flags, transactionID: transactionID, dataOffset: dataOffset, bytes: bytes)
    }

    init(rawType: UInt16, flags: UInt16, transactionID: UInt64, dataOffset: Int, bytes: [UInt8]) {
        self.rawType = rawType
        self.flags = flags
        self.transactionID = transactionID
        self.dataOffset = dataOffset
        self.bytes = bytes
    }

    public static let descriptorSize = 16
    /// Bytes of the trailer (previous write index << 32) after each packet.
    public static let trailerSize = 8
    /// The largest packet the 16-bit length field (in 8-byte units) can describe.
    public static let maximumSize = Int(UInt16.max) * 8

    public var type: VMBusPacketType? { VMBusPacketType(rawValue: rawType) }
    /// Whether the data offset lies inside the packet, past the descriptor (the guest wrote it;
    /// `header` and `payload` need it).
    public var hasValidDataOffset: Bool { dataOffset >= VMBusPacket.descriptorSize && dataOffset <= bytes.count }
    public var completionRequested: Bool { flags & 1 != 0 }
    /// Bytes between the descriptor and the payload (e.g. GPA-direct ranges).
    public var header: [UInt8] { Array(bytes[VMBusPacket.descriptorSize..<dataOffset]) }
    /// Everything from the data offset to the end of the packet (padding included, as Linux sees it).
    public var payload: [UInt8] { Array(bytes[dataOffset...]) }
    /// Bytes this packet takes on a ring, trailer included.
    public var ringSize: Int { bytes.count + VMBusPacket.trailerSize }
}
