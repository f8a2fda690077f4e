import KeelVMBus

/// The host side of one synthetic NIC's primary channel, as Linux's stock `hv_netvsc` expects it,
/// as a pure state machine (no I/O): NVSP version negotiation, the receive and send buffers,
/// RNDIS control (INITIALIZE, QUERY, SET, ...), transmit parsing and receive delivery through
/// transfer pages. Transmit checksum and large-send offloads and receive coalescing are offered
/// (see `NDISOffload`); no sub-channels and no RSS. Every packet that asks for
/// a completion gets exactly one; hostile input gets failure statuses and diagnostics, never a trap.
///
/// Call sequence for the device adapter: feed each guest packet to `receive(_:)` and perform the
/// returned actions in order. `.mapReceiveBuffer`/`.mapSendBuffer` → look up the GPADL and call
/// `attachReceiveBuffer(pages:)`/`attachSendBuffer(pages:)`. `.readRNDIS` → read the transfer's
/// segments and call `rndisMessage(_:for:)`. Frames from the backend go to `deliverFrame(_:)`
/// (or `deliverFrames(_:)`); link changes to `setLink(up:)`. Call `reset()` when the channel is
/// (re)opened.
public struct NetworkAdapterProtocol: Sendable {
    /// What the host offers.
    public struct Configuration: Sendable, Equatable {
        /// Exactly 6 bytes (shorter input is zero-padded, longer truncated).
        public var macAddress: [UInt8]
        /// IP MTU (68...9000); frames carry up to MTU + 14 bytes.
        public var mtu: Int
        /// Initial link state.
        public var linkUp: Bool
        /// OID_GEN_LINK_SPEED in 100 bps units (Linux shows value / 10000 Mb/s); default 10 Gb/s.
        public var linkSpeed: UInt32
        /// OID_GEN_FRIENDLY_NAME (becomes the guest's ifalias); nil = not supported.
        public var friendlyName: String?
        /// NVSP versions accepted; the highest inside the guest's [min, max] wins.
        public var acceptedVersions: Set<UInt32>

        public init(macAddress: [UInt8], mtu: Int = 1500, linkUp: Bool = true, linkSpeed: UInt32 = 100_000_000,
                    friendlyName: String? = nil,
                    acceptedVersions: Set<UInt32> = [NVSPVersion.v61, NVSPVersion.v6, NVSPVersion.v5,
                                                     NVSPVersion.v4, NVSPVersion.v2]) {
            self.macAddress = Array((macAddress + [UInt8](repeating: 0, count: 6)).prefix(6))
            self.mtu = min(max(mtu, 68), 9000)
            self.linkUp = linkUp
            self.linkSpeed = linkSpeed
            self.friendlyName = friendlyName
            self.acceptedVersions = acceptedVersions
        }

        /// Receive sub-allocation size: 256 bytes for RNDIS header and PPIs, the frame, slack;
        /// 8-aligned, and never below 576 so the largest control response (a 512-byte name) fits.
        public var receiveSectionSize: Int { max(576, (256 + mtu + 36 + 7) / 8 * 8) }
        /// Receive sub-allocation size for a buffer of `bufferBytes`: 16 KiB when at least
        /// `minimumCoalescedSections` of those fit (Linux's default 18 MB buffer holds 1105), so
        /// a coalesced TCP packet (at most `coalescedPacketLimit` bytes) is one RNDIS message
        /// for Keel to write and the guest to parse, not a chain of ~10; else `receiveSectionSize`.
        public func receiveSectionSize(bufferBytes: Int) -> Int {
            bufferBytes / Self.coalescedSectionSize >= Self.minimumCoalescedSections
                ? Self.coalescedSectionSize : receiveSectionSize
        }
        /// 16 KiB: a packet of `coalescedPacketLimit` bytes, its RNDIS header and PPIs.
        public static let coalescedSectionSize = 16384
        public static let minimumCoalescedSections = 128
        /// Largest untagged Ethernet frame.
        public var maxFrameLength: Int { mtu + 14 }
    }

    /// Send-buffer section size announced in SEND_SEND_BUF_COMPLETE (as Hyper-V).
    public static let sendSectionSize = 6144
    /// Largest receive or send buffer accepted (64 MiB; Linux uses at most 31 MiB).
    public static let maxBufferPages = 16384
    /// Largest RNDIS byte stream read for one SEND_RNDIS_PKT: a large send plus its headers.
    public static let maxRNDISTransferBytes = 0xFFFF + 18 + 1024
    /// INITIALIZE_CMPLT: max_packets_per_msg and packet alignment (1 << 3 = 8 bytes).
    public static let maxPacketsPerMessage: UInt32 = 8
    public static let packetAlignmentShift: UInt32 = 3
    /// Ranges per transfer-page packet in a batched delivery (a 64 KiB frame in small sections takes ~40).
    public static let maxRangesPerPacket = 128
    /// RNDIS control messages waiting for a free receive section.
    public static let maxQueuedControlMessages = 64

    public let configuration: Configuration
    public internal(set) var negotiatedVersion: UInt32?
    /// NDIS version the guest announced (major << 16 | minor).
    public internal(set) var ndisVersion: UInt32?
    /// MTU the guest announced in SEND_NDIS_CONFIG (informational).
    public internal(set) var guestMTU: UInt32?
    public internal(set) var rndisInitialized = false
    /// OID_GEN_CURRENT_PACKET_FILTER; data frames are delivered only while it is non-zero.
    public internal(set) var packetFilter: UInt32 = 0
    /// What OID_TCP_OFFLOAD_PARAMETERS turned on (receive checksum reporting, coalescing).
    public internal(set) var offloadSettings = OffloadSettings()
    public internal(set) var linkUp: Bool
    var receiveBuffer: ReceiveBuffer?
    var sendBuffer: SendBuffer?
    var pendingReceiveBuffer: BufferRequest?
    var pendingSendBuffer: BufferRequest?
    var controlQueue: [[UInt8]] = []
    /// Packet id carried by the next coalesced chain (informational for the guest).
    var nextCoalescedID: UInt16 = 0
    /// Header bytes of the last TCP packet received (Ethernet, IPv4, TCP with timestamps until
    /// one arrives): the gap a direct read leaves for them in each later section.
    var predictedHeaderLength = 66

    public init(configuration: Configuration) {
        self.configuration = configuration
        self.linkUp = configuration.linkUp
    }

    /// The guest (re)opened the channel: forget everything but the configuration and link state.
    public mutating func reset() {
        self = NetworkAdapterProtocol(configuration: configuration, linkUp: linkUp)
    }

    private init(configuration: Configuration, linkUp: Bool) {
        self.configuration = configuration
        self.linkUp = linkUp
    }

    /// Handles one packet from the guest.
    public mutating func receive(_ packet: VMBusPacket) -> [NetworkAction] {
        let wellFormed = packet.hasValidDataOffset
        let payload = PacketPayload(packet)
        switch packet.rawType {
        case VMBusPacketType.completion.rawValue:
            // Never answered, whatever it holds: only the transaction id matters.
            return receiveCompletion(transactionID: packet.transactionID, payload: payload)
        case _ where !wellFormed:
            return reject(packet, type: 0, .malformedNVSP, "packet data offset \(packet.dataOffset) outside its \(packet.bytes.count) bytes")
        case VMBusPacketType.dataInBand.rawValue, VMBusPacketType.dataUsingGPADirect.rawValue:
            break
        default:
            return reject(packet, type: 0, .unexpectedNVSP, "unexpected packet type \(packet.rawType) on the network channel")
        }
        let type = payload.u32(0)
        guard payload.count >= 4, payload.count >= NVSPMessage.minimumLength(ofRequest: type) else {
            return reject(packet, type: type, .malformedNVSP, "NVSP message type \(type) truncated to \(payload.count) bytes")
        }
        guard packet.rawType == VMBusPacketType.dataInBand.rawValue || type == NVSPMessageType.sendRNDISPacket else {
            return reject(packet, type: type, .unexpectedNVSP, "NVSP message type \(type) in a GPA-direct packet")
        }
        guard type == NVSPMessageType.initialize || negotiatedVersion != nil else {
            return reject(packet, type: type, .unexpectedNVSP, "NVSP message type \(type) before INIT")
        }
        switch type {
        case NVSPMessageType.initialize:
            return initialize(packet, low: payload.u32(4), high: payload.u32(8))
        case NVSPMessageType.sendNDISVersion:
            ndisVersion = payload.u32(4) << 16 | payload.u32(8) & 0xFFFF
            return complete(packet, [type, NVSPStatus.success])
        case NVSPMessageType.sendNDISConfig:
            guestMTU = payload.u32(4)
            return complete(packet, [type, NVSPStatus.success])
        case NVSPMessageType.sendReceiveBuffer, NVSPMessageType.sendSendBuffer:
            return requestBuffer(packet, type: type, payload: payload)
        case NVSPMessageType.revokeReceiveBuffer, NVSPMessageType.revokeSendBuffer:
            return revokeBuffer(packet, type: type, id: payload.u16(4))
        case NVSPMessageType.sendRNDISPacket:
            return planRNDIS(packet, payload: payload)
        case NVSPMessageType.subchannel:
            // No vRSS: grant no sub-channels (Linux accepts any count up to what it asked for).
            return complete(packet, [type, NVSPStatus.success, 0])
        case NVSPMessageType.switchDataPath:
            return complete(packet, [type, NVSPStatus.success])
        default:
            return reject(packet, type: type, .unexpectedNVSP, "unsupported NVSP message type \(type)")
        }
    }

    /// INIT: accept the highest configured version inside [low, high]. A repeated INIT starts over.
    private mutating func initialize(_ packet: VMBusPacket, low: UInt32, high: UInt32) -> [NetworkAction] {
        var actions: [NetworkAction] = []
        if negotiatedVersion != nil {
            actions += releaseBuffers()
            reset()
        }
        let accepted = configuration.acceptedVersions
        guard let version = accepted.filter({ $0 >= low && $0 <= high }).max() else {
            let status = low > (accepted.max() ?? 0) ? NVSPStatus.protocolTooNew
                : high < (accepted.min() ?? 0) ? NVSPStatus.protocolTooOld : NVSPStatus.protocolUnsupported
            return actions + complete(packet, [NVSPMessageType.initializeComplete, 0, NVSPMessage.maxMDLChainLength, status])
        }
        negotiatedVersion = version
        return actions + complete(packet, [NVSPMessageType.initializeComplete, version, NVSPMessage.maxMDLChainLength,
                                           NVSPStatus.success])
    }

    /// The completion for a request (if it asked for one) carrying the NVSP `fields`.
    func complete(transactionID: UInt64, requested: Bool, _ fields: [UInt32]) -> [NetworkAction] {
        completion(transactionID: transactionID, requested: requested, fields).map { [.send($0)] } ?? []
    }

    /// The completion packet for a request, if the guest asked for one.
    func completion(transactionID: UInt64, requested: Bool, _ fields: [UInt32]) -> VMBusPacket? {
        guard requested else { return nil }
        return VMBusPacket(type: .completion, transactionID: transactionID, headerLength: 0,
                           payloadLength: NVSPMessage.size) { bytes, start in NVSPMessage.store(fields, in: &bytes, at: start) }
    }

    func complete(_ packet: VMBusPacket, _ fields: [UInt32]) -> [NetworkAction] {
        complete(transactionID: packet.transactionID, requested: packet.completionRequested, fields)
    }

    /// The failure completion for a request of NVSP `type` (if one was requested) and a diagnostic.
    func reject(_ packet: VMBusPacket, type: UInt32, status: UInt32 = NVSPStatus.failure,
                _ kind: NetworkDiagnostic.Kind, _ message: String) -> [NetworkAction] {
        let replyType = NVSPMessage.completionType(for: type)
        let fields = replyType == NVSPMessageType.initializeComplete
            ? [replyType, 0, NVSPMessage.maxMDLChainLength, status] : [replyType, status]
        return complete(packet, fields) + [.diagnostic(NetworkDiagnostic(kind, message))]
    }
}
