/// Errors from building Hyper-V values on the host side (guest misbehaviour is never an error:
/// it gets an architectural answer instead).
public enum HyperVError: Error, Equatable, CustomStringConvertible {
    /// A SynIC message payload longer than the 240 bytes a slot holds.
    case messagePayloadTooLarge(Int)
    /// Message type 0 means "empty slot" and cannot be sent.
    case messageTypeNone

    public var description: String {
        switch self {
        case .messagePayloadTooLarge(let n): "SynIC message payload of \(n) bytes exceeds \(SynICMessage.maxPayloadSize)"
        case .messageTypeNone: "SynIC message type 0 (HVMSG_NONE) cannot be sent"
        }
    }
}
