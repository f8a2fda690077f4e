import KeelSystem

/// Receive segment coalescing, as Hyper-V's virtual switch does it (RSC): in-order TCP segments
/// of one flow that the TAP hands over together reach the guest as one coalesced packet, so the
/// guest allocates, processes and acknowledges once per packet instead of once per segment.
///
/// Nothing is copied: each segment stays where the backend read it. The first keeps its headers,
/// rewritten for the whole packet (IP length and checksum, PSH, window, timestamps); the others
/// give only their payload, which their RNDIS messages point at past their own headers.
///
/// Segments join only when the result is what the sender could have sent as one segment: same
/// addresses, ports, ACK number, IP fields and TCP options (timestamps may advance), contiguous
/// sequence numbers, no flag but ACK and PSH, and a checksum the host vouched for. PSH does not
/// end a packet (as in Linux's LRO and NICs' hardware LRO; Linux receivers do not act on it);
/// the packet carries it if any of its segments did.
struct CoalescibleSegment {
    /// Ethernet, IP and TCP headers together.
    let headerLength: Int
    let ipv6: Bool
    /// Where the TCP header starts.
    let tcpStart: Int
    let sequence: UInt32
    let payloadLength: Int
    /// Whether the TCP options are exactly NOP, NOP, timestamps (whose values may differ).
    let timestampsOnly: Bool

    static let ethernetHeaderLength = 14
    static let flagACK: UInt8 = 0x10
    static let flagPSH: UInt8 = 0x08
    /// TCP timestamps option preceded by two NOPs (RFC 7323's recommended layout).
    static let timestampOptionPrefix: [UInt8] = [1, 1, 8, 10]

    /// The segment in `bytes` (a frame of `length` bytes, at least its headers present), or nil if
    /// it cannot be part of a coalesced packet: not untagged IPv4 (no options, not a fragment) or
    /// IPv6 (no extension headers) carrying TCP, no payload, a flag other than ACK and PSH, a
    /// length field that disagrees with the frame, or a checksum nobody vouched for.
    init?(_ bytes: [UInt8], length: Int, header: VirtioNetHeader) {
        let ethernet = Self.ethernetHeaderLength
        let verified = header.flags & (VirtioNetHeader.needsChecksum | VirtioNetHeader.dataValid) != 0
        guard verified, bytes.count >= ethernet + 40 else { return nil }
        switch (bytes[12], bytes[13]) {
        case (0x08, 0x00):
            guard bytes[ethernet] == 0x45, bytes[ethernet + 9] == 6,
                  bytes[ethernet + 6] & 0x3F == 0, bytes[ethernet + 7] == 0,   // not a fragment
                  Int(bytes[ethernet + 2]) << 8 | Int(bytes[ethernet + 3]) == length - ethernet else { return nil }
            ipv6 = false
            tcpStart = ethernet + 20
        case (0x86, 0xDD):
            guard bytes[ethernet] >> 4 == 6, bytes[ethernet + 6] == 6, bytes.count >= ethernet + 60,
                  Int(bytes[ethernet + 4]) << 8 | Int(bytes[ethernet + 5]) == length - ethernet - 40 else { return nil }
            ipv6 = true
            tcpStart = ethernet + 40
        default:
            return nil
        }
        let tcpLength = Int(bytes[tcpStart + 12] >> 4) * 4
        let flags = bytes[tcpStart + 13]
        guard tcpLength >= 20, bytes.count >= tcpStart + tcpLength, length > tcpStart + tcpLength,
              flags & ~(Self.flagACK | Self.flagPSH) == 0, flags & Self.flagACK != 0 else { return nil }
        headerLength = tcpStart + tcpLength
        payloadLength = length - headerLength
        sequence = UInt32(bytes[tcpStart + 4]) << 24 | UInt32(bytes[tcpStart + 5]) << 16
            | UInt32(bytes[tcpStart + 6]) << 8 | UInt32(bytes[tcpStart + 7])
        timestampsOnly = tcpLength == 32 && bytes[(tcpStart + 20)..<(tcpStart + 24)].elementsEqual(Self.timestampOptionPrefix)
    }

    /// Byte ranges that every segment of one packet must share: Ethernet header, IP fields but
    /// lengths, checksum and identification, ports, ACK number and TCP header length.
    private static let sharedIPv4: [Range<Int>] = [0..<16, 20..<24, 26..<34, 34..<38, 42..<47]
    private static let sharedIPv6: [Range<Int>] = [0..<18, 20..<54, 54..<58, 62..<67]

    /// Whether `next` (headers in `nextBytes`) carries on right after this packet, which so far
    /// ends at sequence number `end` with the headers of its last segment in `lastBytes`.
    func isContinued(by next: CoalescibleSegment, nextBytes: [UInt8], end: UInt32, lastBytes: [UInt8]) -> Bool {
        guard next.headerLength == headerLength, next.ipv6 == ipv6, next.sequence == end,
              (ipv6 ? Self.sharedIPv6 : Self.sharedIPv4).allSatisfy({ lastBytes[$0].elementsEqual(nextBytes[$0]) }) else { return false }
        let options = (tcpStart + 20)..<headerLength
        if lastBytes[options].elementsEqual(nextBytes[options]) { return true }
        // Timestamps may move forward, never back (so the guest's PAWS check still passes).
        guard timestampsOnly, next.timestampsOnly else { return false }
        return Self.notBefore(nextBytes, lastBytes, at: tcpStart + 24) && Self.notBefore(nextBytes, lastBytes, at: tcpStart + 28)
    }

    /// Whether the big-endian 32-bit value at `offset` of `a` is at or after the one in `b`
    /// (serial-number arithmetic, RFC 1982).
    private static func notBefore(_ a: [UInt8], _ b: [UInt8], at offset: Int) -> Bool {
        Int32(bitPattern: bigEndian32(a, offset) &- bigEndian32(b, offset)) >= 0
    }

    private static func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        UInt32(bytes[offset]) << 24 | UInt32(bytes[offset + 1]) << 16 | UInt32(bytes[offset + 2]) << 8 | UInt32(bytes[offset + 3])
    }

    /// This (first) segment's headers rewritten for a coalesced packet of `totalLength` bytes
    /// whose last segment's headers are `lastBytes`: IP length (and IPv4 checksum), PSH if any
    /// segment had it, and the last segment's window and timestamps. The TCP checksum is left
    /// alone: the guest is told it was verified and does not look at it.
    func coalescedHeaders(_ firstBytes: [UInt8], totalLength: Int, lastBytes: [UInt8], push: Bool) -> [UInt8] {
        var headers = Array(firstBytes.prefix(headerLength))
        let t = tcpStart
        storeIPLength(&headers, at: 0, frameLength: totalLength)
        if push { headers[t + 13] |= Self.flagPSH }
        headers.replaceSubrange(t + 14..<t + 16, with: lastBytes[t + 14..<t + 16])
        if timestampsOnly { headers.replaceSubrange(t + 24..<t + 32, with: lastBytes[t + 24..<t + 32]) }
        return headers
    }

    /// Rewrites a copy of this segment's headers, at `base` in `bytes`, for piece `index` of it:
    /// the `payloadLength` bytes of payload that start `payloadOffset` bytes in. Sequence number,
    /// IP length (and IPv4 identification and checksum) follow the piece; PSH stays only on the
    /// last piece. The TCP checksum is left alone, as for a coalesced packet.
    func rewriteForPiece(_ bytes: inout [UInt8], at base: Int, index: Int, payloadOffset: Int, payloadLength: Int, last: Bool) {
        let sharedSum = sharedHeaderSum(bytes, at: base), identification = self.identification(bytes, at: base)
        bytes.withFieldStores { fields in
            storePieceFields(fields, at: base, index: index, payloadOffset: payloadOffset, payloadLength: payloadLength,
                             identification: identification, sharedSum: sharedSum)
        }
        if !last { bytes[base + tcpStart + 13] &= ~Self.flagPSH }
    }

    /// The IPv4 identification of the headers at `base` of `bytes` (0 for IPv6, which has none).
    func identification(_ bytes: [UInt8], at base: Int) -> UInt16 {
        guard !ipv6 else { return 0 }
        let e = base + Self.ethernetHeaderLength
        return UInt16(bytes[e + 4]) << 8 | UInt16(bytes[e + 5])
    }

    /// The part of an IPv4 header checksum that every piece of this segment shares: the
    /// one's-complement sum of the header at `base` of `bytes` without its length,
    /// identification and checksum fields (0 for IPv6, which has no header checksum).
    func sharedHeaderSum(_ bytes: [UInt8], at base: Int) -> UInt64 {
        guard !ipv6 else { return 0 }
        let e = base + Self.ethernetHeaderLength
        return InternetChecksum.add(bytes, e..<e + 2) &+ InternetChecksum.add(bytes, e + 6..<e + 10)
            &+ InternetChecksum.add(bytes, e + 12..<e + 20)
    }

    /// Stores what differs per piece into a copy of these headers at `base` whose other fields
    /// are already right: IP length, IPv4 identification
    /// (`identification` advanced by `index`) and header checksum (from `sharedSum`), and the
    /// sequence number of the piece's first payload byte.
    func storePieceFields(_ fields: FieldStores, at base: Int, index: Int, payloadOffset: Int, payloadLength: Int,
                          identification: UInt16, sharedSum: UInt64) {
        let e = base + Self.ethernetHeaderLength
        let ipLength = headerLength - Self.ethernetHeaderLength + payloadLength
        if ipv6 {
            fields.storeBigEndian(UInt16(clamping: ipLength - 40), at: e + 4)
        } else {
            let length = UInt16(clamping: ipLength), id = identification &+ UInt16(truncatingIfNeeded: index)
            fields.storeBigEndian(length, at: e + 2)
            fields.storeBigEndian(id, at: e + 4)
            fields.storeBigEndian(~InternetChecksum.fold(sharedSum &+ UInt64(length) &+ UInt64(id)), at: e + 10)
        }
        fields.storeBigEndian(sequence &+ UInt32(truncatingIfNeeded: payloadOffset), at: base + tcpStart + 4)
    }

    /// Stores, in the headers at `base` of `bytes`, the IP length for a frame of `frameLength`
    /// bytes (Ethernet header included); for IPv4 also recomputes the header checksum.
    private func storeIPLength(_ bytes: inout [UInt8], at base: Int, frameLength: Int) {
        let e = base + Self.ethernetHeaderLength
        if ipv6 {
            InternetChecksum.store(UInt16(clamping: frameLength - Self.ethernetHeaderLength - 40), in: &bytes, at: e + 4)
        } else {
            InternetChecksum.store(UInt16(clamping: frameLength - Self.ethernetHeaderLength), in: &bytes, at: e + 2)
            InternetChecksum.fillIPv4Header(&bytes, ipStart: e, headerLength: 20)
        }
    }
}

extension NetworkAdapterProtocol {
    /// The longest TCP packet the guest gets while it has coalescing on: frames are joined up to
    /// it and larger ones split into packets of at most this size. Linux copies each received
    /// packet into one buffer of its length plus 384 bytes (headroom and shared info), so up to
    /// here that is one 16 KiB allocation, filled to 97 %.
    ///
    /// Why not 64 KiB: the guest's TCP sizes its advertised window from the fill of the last
    /// packet's buffer. With packets of every size between 33 and 64 KB (as the host's TCP sends
    /// them) that fill swings from 50 to 99 %, the window overshoots the receive buffer, and the
    /// guest prunes its queue and drops segments: in the rig, 1 to 4 drops and about 2
    /// retransmission timeouts per 100 MB, against none with virtio-net or with 16 KB packets.
    static let coalescedPacketLimit = 16_000

    /// Which consecutive frames go to the guest as one coalesced packet (see `CoalescibleSegment`):
    /// only while it has coalescing on for their IP version, only frames that each fit one
    /// section, and only runs longer than one frame may be; every frame is in exactly one run.
    func coalescedRuns(_ frames: [DirectFrame]) -> [Range<Int>] {
        guard let room = receiveBuffer.map({ min($0.sectionSize - Self.directHeaderRoom, Self.coalescedPacketLimit) }) else {
            return frames.indices.map { $0..<$0 + 1 }
        }
        var runs: [Range<Int>] = []
        var start = 0
        var open: (segment: CoalescibleSegment, total: Int, end: UInt32)?
        for (index, frame) in frames.enumerated() {
            let next = frame.length <= room ? CoalescibleSegment(frame.bytes, length: frame.length, header: frame.header) : nil
            if let run = open, let next,
               run.segment.isContinued(by: next, nextBytes: frame.bytes, end: run.end, lastBytes: frames[index - 1].bytes),
               run.total + next.payloadLength <= Self.coalescedPacketLimit,
               run.total + next.payloadLength > configuration.maxFrameLength + 4 {
                open = (run.segment, run.total + next.payloadLength, next.sequence &+ UInt32(next.payloadLength))
                continue
            }
            if index > 0 { runs.append(start..<index) }
            start = index
            open = next.flatMap { segment in
                let coalescing = segment.ipv6 ? offloadSettings.coalesceIPv6 : offloadSettings.coalesceIPv4
                return coalescing ? (segment, frame.length, segment.sequence &+ UInt32(segment.payloadLength)) : nil
            }
        }
        if !frames.isEmpty { runs.append(start..<frames.count) }
        return runs
    }

    /// Consecutive TCP segments (each in one section) as one coalesced chain, their regions
    /// appended to `regions`: the first frame whole with its headers rewritten for the packet,
    /// the others' payload only; nil to drop them (nothing appended).
    mutating func placeCoalesced(_ run: ArraySlice<DirectFrame>, into regions: inout [Delivery.Region]) -> PlacedFrames? {
        guard let first = run.first, let last = run.last, let buffer = receiveBuffer,
              let segment = CoalescibleSegment(first.bytes, length: first.length, header: first.header) else { return nil }
        var push = false
        var total = first.length
        for frame in run.dropFirst() {
            total += frame.length - segment.headerLength
            push = push || frame.bytes[segment.tcpStart + 13] & CoalescibleSegment.flagPSH != 0
        }
        let headers = segment.coalescedHeaders(first.bytes, totalLength: total, lastBytes: last.bytes, push: push)
        guard let (coalesced, _, ppis) = receiveTreatment(headers, length: total, header: first.header), coalesced,
              let patches = Self.guestWrites(headers, at: 0, in: first.reservation.dataSegments) else { return nil }
        for (index, frame) in run.enumerated() {
            let skipped = index == 0 ? 0 : segment.headerLength
            let piecePPIs = ppis.with(packetID: nextCoalescedID, first: index == 0, last: index == run.count - 1)
            let (header, length) = RNDISEncode.packetHeader(dataLength: frame.length - skipped,
                                                              ppis: index == 0 ? piecePPIs : piecePPIs.withoutChecksum,
                                                              dataStart: Self.directHeaderRoom + skipped)
            regions.append(Delivery.Region(offset: buffer.byteOffset(ofSection: frame.reservation.sections[0]),
                                           header: header[...], payload: [], length: length, fillsPadding: false))
        }
        nextCoalescedID &+= 1
        return PlacedFrames(patches: patches, sectionsPerFrame: 1)
    }
}
