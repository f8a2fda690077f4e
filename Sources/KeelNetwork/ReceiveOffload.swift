import KeelSystem

/// A frame from the backend with the TAP's virtio-net header: whether the host kernel left its
/// checksum to us (NEEDS_CSUM), vouched for it (DATA_VALID), or handed over a large TCP packet.
public struct ReceivedFrame: Sendable, Equatable {
    public var bytes: [UInt8]
    public var header: VirtioNetHeader

    public init(_ bytes: [UInt8], header: VirtioNetHeader = VirtioNetHeader()) {
        self.bytes = bytes
        self.header = header
    }
}

/// One RNDIS message for a receive section: header and PPIs, a slice of a frame, padding.
struct OutgoingMessage {
    let header: [UInt8]
    let payload: ArraySlice<UInt8>
    let length: Int
}

/// Host → guest offloads: completing checksums the host kernel left open, the receive checksum
/// PPI, and coalesced (RSC) chains for large TCP packets.
enum ReceiveOffload {
    /// Largest coalesced frame: a 64 KiB IP packet behind a tagged Ethernet header.
    static let maxCoalescedFrame = 0xFFFF + 18
    /// Receive checksum PPI bits: TCP, UDP and IPv4 header checksums verified.
    static let tcpSucceeded: UInt32 = 1 << 3
    static let udpSucceeded: UInt32 = 1 << 4
    static let ipSucceeded: UInt32 = 1 << 5
    /// RNDIS_PKTINFO_ID (internal type 1) flags.
    static let packetIDType: UInt32 = 1 | 1 << 31
    static let subAllocated: UInt8 = 1 << 0
    static let firstFragment: UInt8 = 1 << 1
    static let lastFragment: UInt8 = 1 << 2

    /// IP version and transport protocol of a frame (optionally 802.1Q-tagged).
    struct Transport: Equatable {
        let ipv6: Bool
        let protocolNumber: UInt8
    }

    static func transport(of frame: [UInt8]) -> Transport? {
        let ipStart = frame.networkHeaderStart
        guard frame.count >= ipStart + 20 else { return nil }
        switch (frame[ipStart - 2], frame[ipStart - 1]) {
        case (0x08, 0x00): return Transport(ipv6: false, protocolNumber: frame[ipStart + 9])
        case (0x86, 0xDD) where frame.count >= ipStart + 40: return Transport(ipv6: true, protocolNumber: frame[ipStart + 6])
        default: return nil
        }
    }

    /// The checksum the host kernel left partial (NEEDS_CSUM: the field holds the pseudo-header
    /// sum): where it goes and its value; nil if the offsets do not fit the frame.
    static func checksum(_ frame: [UInt8], header: VirtioNetHeader) -> (offset: Int, value: UInt16)? {
        let start = Int(header.checksumStart), field = start + Int(header.checksumOffset)
        guard start < frame.count, field + 2 <= frame.count else { return nil }
        var value = ~InternetChecksum.fold(InternetChecksum.add(frame, start..<frame.count))
        if value == 0, header.checksumOffset == 6 { value = 0xFFFF }   // UDP: 0 means "no checksum"
        return (field, value)
    }

    /// The packet-id PPI's value for one fragment of a coalesced chain.
    static func packetID(_ id: UInt16, first: Bool, last: Bool) -> UInt32 {
        var flags = subAllocated
        if first { flags |= firstFragment }
        if last { flags |= lastFragment }
        return UInt32(1) | UInt32(flags) << 8 | UInt32(id) << 16
    }
}

/// The per-packet information on one received packet. Keel attaches at most two: the packet-id
/// PPI of receive coalescing, then the checksum PPI. Kept inline, so building a packet's header
/// allocates no list for them.
struct ReceivePPIs: Equatable {
    /// The packet-id PPI's value (`ReceiveOffload.packetID`), if any.
    var packetID: UInt32?
    /// The checksum PPI's value (NDIS_TCP_IP_CHECKSUM_PACKET_INFO), if any.
    var checksum: UInt32?

    var count: Int { (packetID == nil ? 0 : 1) + (checksum == nil ? 0 : 1) }

    /// These with the packet-id PPI of fragment `first`/`last` of coalesced packet `id`.
    func with(packetID id: UInt16, first: Bool, last: Bool) -> ReceivePPIs {
        ReceivePPIs(packetID: ReceiveOffload.packetID(id, first: first, last: last), checksum: checksum)
    }

    /// Only the packet-id PPI (a later fragment of a chain, which carries no checksum PPI).
    var withoutChecksum: ReceivePPIs { ReceivePPIs(packetID: packetID) }
}

extension NetworkAdapterProtocol {
    /// Appends the RNDIS message(s) for one received frame to `messages`; false to drop it. One
    /// message normally: the header and the frame in one array, an open checksum completed in it.
    /// A frame past the MTU (only a TCP packet with coalescing on for its IP version may be) is
    /// split into packets of at most `coalescedPacketLimit` bytes, or, when its headers do not
    /// allow that, sent as a chain of fragments (first/last flags, one section each).
    mutating func appendReceiveMessages(for received: ReceivedFrame, sectionSize: Int,
                                        to messages: inout [OutgoingMessage]) -> Bool {
        let frame = received.bytes
        guard let (coalesced, completeChecksum, ppis) = receiveTreatment(frame, length: frame.count,
                                                                         header: received.header) else { return false }
        guard coalesced else {
            var checksum: (offset: Int, value: UInt16)?
            if completeChecksum {
                guard let completed = ReceiveOffload.checksum(frame, header: received.header) else { return false }
                checksum = completed
            }
            var (message, length) = RNDISEncode.packetHeader(dataLength: frame.count, ppis: ppis, leadingData: frame[...])
            if let (offset, value) = checksum {
                InternetChecksum.store(value, in: &message, at: message.count - frame.count + offset)
            }
            messages.append(OutgoingMessage(header: message, payload: [], length: length))
            return true
        }
        let room = sectionSize - 44 - 32 - 7
        let packetLimit = min(room, Self.coalescedPacketLimit)
        if frame.count > packetLimit, let segment = CoalescibleSegment(frame, length: frame.count, header: received.header),
           segment.headerLength < packetLimit / 2 {
            predictedHeaderLength = segment.headerLength
            appendSplitMessages(frame, segment, packetLimit: packetLimit, ppis: ppis, to: &messages)
            return true
        }
        // Even fragments, each with the packet-id PPI; the checksum PPI rides on the first.
        let pieces = (frame.count + room - 1) / room
        let chunk = (frame.count + pieces - 1) / pieces
        let id = nextCoalescedID
        nextCoalescedID &+= 1
        var start = 0
        while start < frame.count {
            let end = min(start + chunk, frame.count)
            let piecePPIs = ppis.with(packetID: id, first: start == 0, last: end == frame.count)
            let (header, length) = RNDISEncode.packetHeader(dataLength: end - start,
                                                              ppis: start == 0 ? piecePPIs : piecePPIs.withoutChecksum)
            messages.append(OutgoingMessage(header: header, payload: frame[start..<end], length: length))
            start = end
        }
        return true
    }

    /// A large TCP packet as packets of at most `packetLimit` bytes, each one message with a
    /// rewritten copy of the headers (see `coalescedPacketLimit`).
    private mutating func appendSplitMessages(_ frame: [UInt8], _ segment: CoalescibleSegment, packetLimit: Int,
                                              ppis: ReceivePPIs, to messages: inout [OutgoingMessage]) {
        let headerLength = segment.headerLength, piece = packetLimit - headerLength
        var index = 0
        var start = headerLength
        while start < frame.count {
            let end = min(start + piece, frame.count)
            let piecePPIs = ppis.with(packetID: nextCoalescedID, first: true, last: true)
            nextCoalescedID &+= 1
            var (header, length) = RNDISEncode.packetHeader(dataLength: headerLength + end - start, ppis: piecePPIs,
                                                              leadingData: frame[..<headerLength])
            segment.rewriteForPiece(&header, at: header.count - headerLength, index: index,
                                    payloadOffset: start - headerLength, payloadLength: end - start, last: end == frame.count)
            messages.append(OutgoingMessage(header: header, payload: frame[start..<end], length: length))
            index += 1
            start = end
        }
    }

    /// How a received frame of `length` bytes (`bytes` holds at least its headers) goes to the
    /// guest, or nil to drop it (see `wants`): as a coalesced chain (past the MTU: only TCP with
    /// coalescing on for its IP version), whether its open checksum must be completed first
    /// (a chain's never is: the guest does not check it), and its checksum PPIs.
    func receiveTreatment(_ bytes: [UInt8], length: Int, header: VirtioNetHeader)
        -> (coalesced: Bool, completeChecksum: Bool, ppis: ReceivePPIs)? {
        let coalesced = length > configuration.maxFrameLength + 4
        guard wants(bytes, length: length, coalesced: coalesced) else { return nil }
        let transport = ReceiveOffload.transport(of: bytes)
        if coalesced {
            guard let transport, transport.protocolNumber == 6,
                  transport.ipv6 ? offloadSettings.coalesceIPv6 : offloadSettings.coalesceIPv4 else { return nil }
        }
        let open = header.flags & VirtioNetHeader.needsChecksum != 0
        let verified = open || header.flags & VirtioNetHeader.dataValid != 0
        return (coalesced, open && !coalesced, receivePPIs(transport: transport, verified: verified, coalesced: coalesced))
    }

    /// The checksum PPI for a frame known good, when the guest takes it (always for a chain).
    private func receivePPIs(transport: ReceiveOffload.Transport?, verified: Bool, coalesced: Bool) -> ReceivePPIs {
        guard verified, let transport,
              coalesced || (transport.ipv6 ? offloadSettings.receiveChecksumIPv6 : offloadSettings.receiveChecksumIPv4)
        else { return ReceivePPIs() }
        let ip = transport.ipv6 ? 0 : ReceiveOffload.ipSucceeded
        switch transport.protocolNumber {
        case 6: return ReceivePPIs(checksum: ReceiveOffload.tcpSucceeded | ip)
        case 17: return ReceivePPIs(checksum: ReceiveOffload.udpSucceeded | ip)
        default: return ReceivePPIs()
        }
    }
}
