/// A guest → host message from HvPostMessage, copied out of guest memory and validated.
public struct PostedMessage: Sendable, Equatable {
    /// VP that made the call.
    public var vp: Int
    /// Connection id (bits 23:0; VMBus: 1 or 4 for channel management).
    public var connectionID: UInt32
    /// Message type (VMBus: 1); non-zero and below 0x80000000.
    public var messageType: UInt32
    /// At most 240 bytes.
    public var payload: [UInt8]

    public init(vp: Int, connectionID: UInt32, messageType: UInt32, payload: [UInt8]) {
        self.vp = vp
        self.connectionID = connectionID
        self.messageType = messageType
        self.payload = payload
    }
}

/// A guest → host event signal from HvSignalEvent (or a write to the signal-event port that
/// no ioeventfd matched).
public struct SignalEventRequest: Sendable, Equatable {
    public var vp: Int
    /// Connection id (bits 23:0), e.g. the channel's connection id from its offer.
    public var connectionID: UInt32
    /// Event flag number (Linux: 0; carries no information for VMBus).
    public var flagNumber: UInt16

    public init(vp: Int, connectionID: UInt32, flagNumber: UInt16 = 0) {
        self.vp = vp
        self.connectionID = connectionID
        self.flagNumber = flagNumber
    }
}
