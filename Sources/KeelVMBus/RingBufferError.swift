import KeelSystem

/// Why a ring buffer cannot be used. Guest-caused errors put the ring in a failed state: the
/// channel should be treated as broken until the guest reopens it.
public enum RingBufferError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Fewer than two pages, or a page address that is not page-aligned.
    case badLayout(String)
    /// A guest-written index is not an 8-byte aligned offset inside the data area.
    case indexOutOfRange(field: String, value: UInt32, dataSize: Int)
    /// A packet's descriptor does not fit the bytes the writer published.
    case corruptPacket(String)
    /// A page of the ring is no longer inside guest RAM.
    case memory(GuestMemoryError)
    /// The host tried to write a packet that can never fit (host bug, not a guest error).
    case packetTooLarge(size: Int, dataSize: Int)

    public var description: String {
        switch self {
        case let .badLayout(reason): "bad ring layout: \(reason)"
        case let .indexOutOfRange(field, value, dataSize):
            "ring \(field) \(value) out of range (data size \(dataSize), must be a multiple of 8)"
        case let .corruptPacket(reason): "corrupt ring packet: \(reason)"
        case let .memory(error): "ring access failed: \(error)"
        case let .packetTooLarge(size, dataSize): "packet of \(size) bytes cannot fit a ring of \(dataSize) bytes"
        }
    }
}
