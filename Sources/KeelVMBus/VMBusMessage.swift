/// A VMBus channel-management message (hyperv-platform.md §5.3), in both directions: the host
/// decodes what the guest posts and encodes its answers; tests do the reverse to play the guest.
public enum VMBusMessage: Sendable, Equatable {
    case offerChannel(OfferChannel)
    case rescindChannelOffer(relid: UInt32)
    case requestOffers
    case allOffersDelivered
    case openChannel(OpenChannel)
    case openChannelResult(relid: UInt32, openID: UInt32, status: UInt32)
    case closeChannel(relid: UInt32)
    case gpadlHeader(GPADLHeader)
    case gpadlBody(GPADLBody)
    case gpadlCreated(relid: UInt32, handle: UInt32, status: UInt32)
    case gpadlTeardown(relid: UInt32, handle: UInt32)
    case gpadlTorndown(handle: UInt32)
    case relidReleased(relid: UInt32)
    case initiateContact(InitiateContact)
    case versionResponse(VersionResponse)
    case unload
    case unloadResponse
    case tlConnectRequest(endpointID: VMBusGUID, serviceID: VMBusGUID)
    case modifyChannel(relid: UInt32, targetVP: UInt32)
    case modifyChannelResponse(relid: UInt32, status: UInt32)

    /// OFFERCHANNEL body (196 bytes on the wire).
    public struct OfferChannel: Sendable, Equatable {
        public var classID: VMBusGUID
        public var instanceID: VMBusGUID
        public var flags: UInt16
        public var mmioMegabytes: UInt16
        /// The 120-byte user-defined area (pipe mode in the first dword for pipe offers).
        public var userDefined: [UInt8]
        public var subchannelIndex: UInt16
        public var relid: UInt32
        public var monitorID: UInt8
        public var monitorAllocated: Bool
        public var dedicatedInterrupt: Bool
        public var connectionID: UInt32

        public init(
            classID: VMBusGUID, instanceID: VMBusGUID, flags: UInt16 = 0, mmioMegabytes: UInt16 = 0,
            userDefined: [UInt8] = [], subchannelIndex: UInt16 = 0, relid: UInt32, monitorID: UInt8 = 0xFF,
            monitorAllocated: Bool = false, dedicatedInterrupt: Bool = true, connectionID: UInt32
        ) {
            self.classID = classID
            self.instanceID = instanceID
            self.flags = flags
            self.mmioMegabytes = mmioMegabytes
            self.userDefined = Self.normalized(userDefined)
            self.subchannelIndex = subchannelIndex
            self.relid = relid
            self.monitorID = monitorID
            self.monitorAllocated = monitorAllocated
            self.dedicatedInterrupt = dedicatedInterrupt
            self.connectionID = connectionID
        }

        static func normalized(_ bytes: [UInt8]) -> [UInt8] {
            Array(bytes.prefix(120)) + repeatElement(0, count: max(0, 120 - bytes.count))
        }
    }

    /// OPENCHANNEL body (148 bytes on the wire).
    public struct OpenChannel: Sendable, Equatable {
        public var relid: UInt32
        public var openID: UInt32
        public var ringGPADL: UInt32
        /// VP that receives the channel's host→guest interrupts.
        public var targetVP: UInt32
        /// First page of the host→guest ring within the ring GPADL.
        public var downstreamPageOffset: UInt32
        /// The 120-byte device-specific user data.
        public var userData: [UInt8]

        public init(relid: UInt32, openID: UInt32, ringGPADL: UInt32, targetVP: UInt32,
                    downstreamPageOffset: UInt32, userData: [UInt8] = []) {
            self.relid = relid
            self.openID = openID
            self.ringGPADL = ringGPADL
            self.targetVP = targetVP
            self.downstreamPageOffset = downstreamPageOffset
            self.userData = OfferChannel.normalized(userData)
        }
    }

    /// GPADL_HEADER: the start of a GPADL. `rangeBytes` is the leading part of the range buffer
    /// ({u32 byte count, u32 byte offset, u64 PFN[]} per range); bodies carry the rest.
    public struct GPADLHeader: Sendable, Equatable {
        public var relid: UInt32
        public var handle: UInt32
        /// Total bytes of all range descriptors including their PFN arrays.
        public var rangeBufferLength: UInt16
        public var rangeCount: UInt16
        public var rangeBytes: [UInt8]

        public init(relid: UInt32, handle: UInt32, rangeBufferLength: UInt16, rangeCount: UInt16, rangeBytes: [UInt8]) {
            self.relid = relid
            self.handle = handle
            self.rangeBufferLength = rangeBufferLength
            self.rangeCount = rangeCount
            self.rangeBytes = rangeBytes
        }

        /// A header for one range of whole pages starting at offset 0 (what Linux sends), holding
        /// the first `pfns` (at most 26 fit in one message).
        public init(relid: UInt32, handle: UInt32, totalPages: Int, pfns: [UInt64]) {
            var w = ByteWriter()
            w.u32(UInt32(truncatingIfNeeded: totalPages * 4096))
            w.u32(0)
            for pfn in pfns { w.u64(pfn) }
            self.init(relid: relid, handle: handle, rangeBufferLength: UInt16(truncatingIfNeeded: 8 + 8 * totalPages),
                      rangeCount: 1, rangeBytes: w.bytes)
        }
    }

    /// GPADL_BODY: a continuation of a GPADL's PFN list.
    public struct GPADLBody: Sendable, Equatable {
        public var messageNumber: UInt32
        public var handle: UInt32
        public var pfns: [UInt64]

        public init(messageNumber: UInt32 = 0, handle: UInt32, pfns: [UInt64]) {
            self.messageNumber = messageNumber
            self.handle = handle
            self.pfns = pfns
        }
    }

    /// INITIATE_CONTACT body (40 bytes).
    public struct InitiateContact: Sendable, Equatable {
        public var version: VMBusVersion
        /// VP that receives host→guest channel-management messages.
        public var targetVP: UInt32
        /// < 5.0: legacy interrupt page GPA. ≥ 5.0: byte 0 message SINT, byte 1 message VTL.
        public var interruptPageOrSINT: UInt64
        public var monitorPage1: UInt64
        public var monitorPage2: UInt64

        public init(version: VMBusVersion, targetVP: UInt32, interruptPageOrSINT: UInt64,
                    monitorPage1: UInt64 = 0, monitorPage2: UInt64 = 0) {
            self.version = version
            self.targetVP = targetVP
            self.interruptPageOrSINT = interruptPageOrSINT
            self.monitorPage1 = monitorPage1
            self.monitorPage2 = monitorPage2
        }

        /// The SINT for host→guest messages: byte 16 for ≥ 5.0, otherwise the fixed SINT 2.
        public var messageSINT: UInt8 {
            version.hasMessageSINT ? UInt8(truncatingIfNeeded: interruptPageOrSINT) : 2
        }
    }

    /// VERSION_RESPONSE body (16 bytes).
    public struct VersionResponse: Sendable, Equatable {
        public var versionSupported: Bool
        /// 0 success, 1 failed (low resources), 2 failed (unknown).
        public var connectionState: UInt8
        /// Connection id the guest posts to from now on (≥ 5.0).
        public var messageConnectionID: UInt32

        public init(versionSupported: Bool, connectionState: UInt8 = 0, messageConnectionID: UInt32) {
            self.versionSupported = versionSupported
            self.connectionState = connectionState
            self.messageConnectionID = messageConnectionID
        }
    }

    /// The message number of this message.
    public var type: VMBusMessageType {
        switch self {
        case .offerChannel: .offerChannel
        case .rescindChannelOffer: .rescindChannelOffer
        case .requestOffers: .requestOffers
        case .allOffersDelivered: .allOffersDelivered
        case .openChannel: .openChannel
        case .openChannelResult: .openChannelResult
        case .closeChannel: .closeChannel
        case .gpadlHeader: .gpadlHeader
        case .gpadlBody: .gpadlBody
        case .gpadlCreated: .gpadlCreated
        case .gpadlTeardown: .gpadlTeardown
        case .gpadlTorndown: .gpadlTorndown
        case .relidReleased: .relidReleased
        case .initiateContact: .initiateContact
        case .versionResponse: .versionResponse
        case .unload: .unload
        case .unloadResponse: .unloadResponse
        case .tlConnectRequest: .tlConnectRequest
        case .modifyChannel: .modifyChannel
        case .modifyChannelResponse: .modifyChannelResponse
        }
    }
}
