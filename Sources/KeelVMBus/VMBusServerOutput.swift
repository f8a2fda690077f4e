/// A channel-management message for the guest, addressed to a VP's SINT slot.
public struct VMBusOutgoingMessage: Sendable, Equatable {
    public let targetVP: UInt32
    public let sint: UInt8
    public let message: VMBusMessage

    public init(targetVP: UInt32, sint: UInt8, message: VMBusMessage) {
        self.targetVP = targetVP
        self.sint = sint
        self.message = message
    }

    /// The SynIC message payload (its size is the payload-size byte).
    public var payload: [UInt8] { message.encode() }

    /// The SynIC message type VMBus uses for channel messages.
    public static let synicMessageType: UInt32 = 1
}

/// What the server produced for one input: messages to post, in order, and events for the VM.
public struct VMBusServerOutput: Sendable, Equatable {
    public var messages: [VMBusOutgoingMessage] = []
    public var events: [VMBusEvent] = []

    public init(messages: [VMBusOutgoingMessage] = [], events: [VMBusEvent] = []) {
        self.messages = messages
        self.events = events
    }

    mutating func diagnose(_ kind: VMBusDiagnostic.Kind, _ message: String) {
        events.append(.diagnostic(VMBusDiagnostic(kind, message)))
    }

    /// The diagnostics among the events.
    public var diagnostics: [VMBusDiagnostic] {
        events.compactMap { if case let .diagnostic(d) = $0 { d } else { nil } }
    }
}
