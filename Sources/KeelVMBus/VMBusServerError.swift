/// Host-side misuse of the VMBus server API (never caused by the guest).
public enum VMBusServerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// All relids 1–2047 are taken (including rescinded ones the guest has not released).
    case noFreeRelid
    /// A primary channel with the same class and instance GUID is already registered.
    case duplicateOffer(classID: VMBusGUID, instanceID: VMBusGUID)
    /// No channel with this relid.
    case unknownChannel(relid: UInt32)

    public var description: String {
        switch self {
        case .noFreeRelid: "no free VMBus relid (limit \(VMBusServer.maxRelid))"
        case let .duplicateOffer(classID, instanceID): "VMBus channel \(classID)/\(instanceID) is already offered"
        case let .unknownChannel(relid): "no VMBus channel with relid \(relid)"
        }
    }
}
