/// Why a VMBus channel-management message could not be decoded.
public enum VMBusMessageError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Shorter than the 8-byte header or than the type's minimum size.
    case truncated(type: UInt32, size: Int, minimum: Int)
    /// Longer than the 240-byte SynIC payload limit.
    case oversized(size: Int)
    /// A message number this implementation does not know (or one reserved and unused).
    case unknownType(UInt32)
    /// The sizes inside the message do not add up (e.g. a PFN array that is not whole u64s).
    case malformed(type: VMBusMessageType, reason: String)

    /// The largest VMBus message: the SynIC message payload.
    public static let maximumSize = 240

    public var description: String {
        switch self {
        case let .truncated(type, size, minimum):
            "VMBus message type \(type) truncated: \(size) bytes, need at least \(minimum)"
        case let .oversized(size):
            "VMBus message of \(size) bytes exceeds the \(VMBusMessageError.maximumSize)-byte limit"
        case let .unknownType(type):
            "unknown VMBus message type \(type)"
        case let .malformed(type, reason):
            "malformed VMBus \(type) message: \(reason)"
        }
    }
}
