/// A host → guest SynIC message for one SIMP slot.
public struct SynICMessage: Sendable, Equatable {
    public static let maxPayloadSize = 240
    /// Message type for VMBus channel messages.
    public static let vmbusChannelMessage: UInt32 = 1

    public let messageType: UInt32
    /// Sender / origination id (low 24 bits = port id); Linux ignores it.
    public let sender: UInt64
    public let payload: [UInt8]

    public init(messageType: UInt32, sender: UInt64 = 0, payload: [UInt8]) throws(HyperVError) {
        guard messageType != 0 else { throw .messageTypeNone }
        guard payload.count <= Self.maxPayloadSize else { throw .messagePayloadTooLarge(payload.count) }
        self.messageType = messageType
        self.sender = sender
        self.payload = payload
    }

    /// Bytes 4..<256 of the slot (everything but the type word), with the pending flag.
    func slotBodyBytes(morePending: Bool) -> [UInt8] {
        var body = [UInt8](repeating: 0, count: SynICLayout.slotSize - 4)
        body[0] = UInt8(payload.count)                       // slot offset 4: payload size
        body[1] = morePending ? SynICLayout.messagePendingFlag : 0   // offset 5: flags
        body.storeLE(sender, at: 4, count: 8)                // offset 8: sender
        body.replaceSubrange(12..<12 + payload.count, with: payload)  // offset 16: payload
        return body
    }
}

/// An interrupt the VM must inject: vector on VP (fixed, edge; `KVM_SIGNAL_MSI` to the VP's
/// APIC id).
public struct SynICInterrupt: Sendable, Equatable, Hashable {
    public var vp: Int
    public var vector: UInt8

    public init(vp: Int, vector: UInt8) {
        self.vp = vp
        self.vector = vector
    }
}

/// Offsets in the SIMP and SIEFP pages.
enum SynICLayout {
    static let sintCount = 16
    static let slotSize = 256
    static let pageSize: UInt64 = 4096
    static let messagePendingFlag: UInt8 = 1
    static let flagsOffset: UInt64 = 5
    static let eventFlagsPerSINT = 2048
}
