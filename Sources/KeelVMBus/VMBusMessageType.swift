/// The channel-management message number (CHANNELMSG_*) at offset 0 of every VMBus message.
public enum VMBusMessageType: UInt32, Sendable, CaseIterable {
    case offerChannel = 1
    case rescindChannelOffer = 2
    case requestOffers = 3
    case allOffersDelivered = 4
    case openChannel = 5
    case openChannelResult = 6
    case closeChannel = 7
    case gpadlHeader = 8
    case gpadlBody = 9
    case gpadlCreated = 10
    case gpadlTeardown = 11
    case gpadlTorndown = 12
    case relidReleased = 13
    case initiateContact = 14
    case versionResponse = 15
    case unload = 16
    case unloadResponse = 17
    case tlConnectRequest = 21
    case modifyChannel = 22
    case modifyChannelResponse = 24

    /// The smallest message (header included) this implementation accepts for the type. For
    /// host→guest types these are at least Linux's minimum payload sizes (hyperv-platform.md §5.2).
    public var minimumSize: Int {
        switch self {
        case .offerChannel: 196
        case .rescindChannelOffer, .closeChannel, .relidReleased, .gpadlTorndown: 12
        case .requestOffers, .allOffersDelivered, .unload, .unloadResponse: 8
        case .openChannel: 148
        case .openChannelResult, .gpadlCreated: 20
        case .gpadlHeader: 20 + 8  // header and one range descriptor; PFNs may all follow in bodies
        case .gpadlBody: 16 + 8  // header and at least one PFN
        case .gpadlTeardown, .versionResponse, .modifyChannel, .modifyChannelResponse: 16
        case .initiateContact, .tlConnectRequest: 40
        }
    }

    /// Whether the guest sends this type (false: the host sends it).
    public var isGuestToHost: Bool {
        switch self {
        case .requestOffers, .openChannel, .closeChannel, .gpadlHeader, .gpadlBody, .gpadlTeardown,
             .relidReleased, .initiateContact, .unload, .tlConnectRequest, .modifyChannel:
            true
        default:
            false
        }
    }
}
