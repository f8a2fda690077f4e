import KeelSystem

/// Receive sections reserved for one frame that the backend reads straight into guest memory,
/// so Keel never copies received payload: each section's data area follows a fixed room for the
/// RNDIS header and PPIs, which are written once the frame's length is known.
///
/// A frame too long for one section continues in the next ones, each of which first leaves
/// `headerGap` bytes free: room for a copy of the frame's headers, so that a large TCP packet
/// can reach the guest as several packets of one section each (see `coalescedPacketLimit`).
public struct ReceiveReservation: Sendable, Equatable {
    let sections: [Int]
    /// Where the frame's bytes go, in order (section data areas, split at page boundaries).
    public let dataSegments: [GuestSegment]
    /// Bytes the reservation holds.
    public let capacity: Int
    /// Frame bytes in the first section; each later one holds `firstChunk - headerGap`.
    let firstChunk: Int
    let headerGap: Int

    /// Sections a frame of `length` bytes fills.
    func sectionsUsed(by length: Int) -> Int {
        // Past the first section, each holds `firstChunk - headerGap` more (rounded up).
        length <= firstChunk ? 1 : 1 + (length - headerGap - 1) / (firstChunk - headerGap)
    }

    /// Where the frame's bytes in section `index` (of those used) start in the frame, and how many.
    func chunk(_ index: Int, of length: Int) -> (start: Int, count: Int) {
        let start = index == 0 ? 0 : firstChunk + (index - 1) * (firstChunk - headerGap)
        return (start, min(index == 0 ? firstChunk : firstChunk - headerGap, length - start))
    }
}

/// A frame the backend read into a reservation.
public struct DirectFrame: Sendable, Equatable {
    public let reservation: ReceiveReservation
    public let length: Int
    public let header: VirtioNetHeader
    /// The frame's first bytes read back from guest memory: all of it when it is at most
    /// `fullReadLimit` bytes (a checksum may need completing), else at least `headLength`.
    public let bytes: [UInt8]

    public static let fullReadLimit = 2048
    public static let headLength = 256

    public init(reservation: ReceiveReservation, length: Int, header: VirtioNetHeader, bytes: [UInt8]) {
        self.reservation = reservation
        self.length = length
        self.header = header
        self.bytes = bytes
    }
}

extension NetworkAdapterProtocol {
    /// Room before a section's data: RNDIS header (44) and up to two PPIs (32), 8-aligned.
    static let directHeaderRoom = 80

    /// Sections for the largest frame the guest may receive now (an unsegmented 64 KiB TCP
    /// packet while it has coalescing on, else one), or nil if they are not free or frames are not
    /// wanted. Give them back with `cancel(_:)` or hand the frame to `deliverDirect(_:)`.
    public mutating func reserveReceive() -> ReceiveReservation? {
        guard acceptsFrames, let sectionSize = receiveBuffer?.sectionSize else { return nil }
        let room = sectionSize - Self.directHeaderRoom
        let coalescing = offloadSettings.coalescing
        let firstChunk = coalescing ? min(room, Self.coalescedPacketLimit) : room
        // The gap is a guess (the last TCP packet's headers); a frame whose headers differ is chained.
        let gap = coalescing ? min(predictedHeaderLength, firstChunk / 2) : 0
        let largest = coalescing ? ReceiveOffload.maxCoalescedFrame : room
        let layout = ReceiveReservation(sections: [], dataSegments: [], capacity: largest, firstChunk: firstChunk, headerGap: gap)
        // Bound only after reserving: a copy alive while the buffer is mutated would copy its free list.
        guard let sections = receiveBuffer?.reserve(layout.sectionsUsed(by: largest)), let buffer = receiveBuffer else { return nil }
        var segments: [GuestSegment] = []
        segments.reserveCapacity(2 * sections.count)
        for (index, section) in sections.enumerated() {
            let area = layout.chunk(index, of: largest)
            _ = buffer.pages.appendSegments(offset: buffer.byteOffset(ofSection: section) + Self.directHeaderRoom
                                                + (index == 0 ? 0 : gap),
                                            length: area.count, to: &segments)
        }
        return ReceiveReservation(sections: sections, dataSegments: segments, capacity: largest,
                                  firstChunk: firstChunk, headerGap: gap)
    }

    public mutating func cancel(_ reservation: ReceiveReservation) {
        receiveBuffer?.unreserve(reservation.sections[...])
    }

    /// Writes the RNDIS headers around frames already in their sections and names them in
    /// transfer-page packets (one frame's chain never spans two). Unused sections go back;
    /// unwanted frames are dropped as in `deliverFrames`.
    public mutating func deliverDirect(_ frames: [DirectFrame]) -> [NetworkAction] {
        var deliveries: [Delivery] = []
        var regions: [Delivery.Region] = []
        var sections: [Int] = []
        var patches: [GuestWrite] = []
        regions.reserveCapacity(frames.count)
        sections.reserveCapacity(frames.count)
        func flush(_ protocolState: inout NetworkAdapterProtocol) {
            guard !regions.isEmpty, let id = protocolState.receiveBuffer?.track(sections),
                  let delivery = protocolState.transferPages(transactionID: id, regions: regions, channelType: 0,
                                                             extraWrites: patches) else { return }
            deliveries.append(delivery)
            (regions, sections, patches) = ([], [], [])
        }
        for run in coalescedRuns(frames) {
            // The regions it may add: one per frame of a coalesced run, one per section a frame fills.
            let single = frames[run.lowerBound]
            let adding = run.count == 1 ? single.reservation.sectionsUsed(by: single.length) : run.count
            if regions.count + adding > Self.maxRangesPerPacket { flush(&self) }
            let placed = run.count == 1 ? place(single, into: &regions) : placeCoalesced(frames[run], into: &regions)
            guard let placed else {
                for frame in frames[run] { cancel(frame.reservation) }
                continue
            }
            patches += placed.patches
            for frame in frames[run] {
                sections += frame.reservation.sections.prefix(placed.sectionsPerFrame)
                receiveBuffer?.unreserve(frame.reservation.sections.dropFirst(placed.sectionsPerFrame))
            }
        }
        flush(&self)
        return deliveries.map { .deliver($0) }
    }

    /// Appends the regions of one frame (header only, data in place) and returns its checksum
    /// patch and sections used; nil to drop it (nothing appended). A frame past one section is a
    /// TCP packet: split into one packet per section when it can be, else chained.
    private mutating func place(_ frame: DirectFrame, into regions: inout [Delivery.Region]) -> PlacedFrames? {
        guard acceptsFrames, let buffer = receiveBuffer, frame.length <= frame.reservation.capacity,
              let (coalesced, completeChecksum, ppis) = receiveTreatment(frame.bytes, length: frame.length,
                                                                         header: frame.header) else { return nil }
        let segment = CoalescibleSegment(frame.bytes, length: frame.length, header: frame.header)
        if let segment { predictedHeaderLength = segment.headerLength }
        let reservation = frame.reservation
        let used = reservation.sectionsUsed(by: frame.length)
        if used > 1, let segment, segment.headerLength == reservation.headerGap {
            split(frame, segment, sections: used, ppis: ppis, buffer: buffer, into: &regions)
            return PlacedFrames(patches: [], sectionsPerFrame: used)
        }
        var patches: [GuestWrite] = []
        if completeChecksum {
            guard frame.bytes.count == frame.length,
                  let (offset, value) = ReceiveOffload.checksum(frame.bytes, header: frame.header),
                  let written = Self.guestWrites([UInt8(value >> 8), UInt8(value & 0xFF)], at: offset,
                                                 in: reservation.dataSegments) else { return nil }
            patches = written
        }
        for (index, section) in reservation.sections.prefix(used).enumerated() {
            let chunk = reservation.chunk(index, of: frame.length)
            var sectionPPIs = index == 0 ? ppis : ReceivePPIs()
            if coalesced {
                sectionPPIs = sectionPPIs.with(packetID: nextCoalescedID, first: index == 0, last: index == used - 1)
            }
            let (header, length) = RNDISEncode.packetHeader(dataLength: chunk.count, ppis: sectionPPIs,
                                                              dataStart: Self.directHeaderRoom + (index == 0 ? 0 : reservation.headerGap))
            regions.append(Delivery.Region(offset: buffer.byteOffset(ofSection: section), header: header[...],
                                           payload: [], length: length, fillsPadding: false))
        }
        if coalesced { nextCoalescedID &+= 1 }
        return PlacedFrames(patches: patches, sectionsPerFrame: used)
    }

    /// One TCP packet per section of a frame read with header gaps: the first keeps the frame's
    /// headers, each later one gets a copy in its gap, all rewritten for their piece and written
    /// with the RNDIS header in front of them. No payload moves. Every piece's header starts as a
    /// copy of one template (RNDIS header and PPIs, then the frame's headers with PSH cleared), so
    /// per piece only the fields that differ are stored.
    private mutating func split(_ frame: DirectFrame, _ segment: CoalescibleSegment, sections used: Int,
                                ppis: ReceivePPIs, buffer: ReceiveBuffer, into regions: inout [Delivery.Region]) {
        let reservation = frame.reservation, headerLength = segment.headerLength
        let room = Self.directHeaderRoom, slot = room + headerLength
        let flagsOffset = room + segment.tcpStart + 13
        var template = [UInt8](zeros: slot)
        _ = RNDISEncode.storePacketHeader(in: &template, at: 0, dataLength: 0,
                                          ppis: ppis.with(packetID: 0, first: true, last: true), dataStart: room)
        template.replaceSubrange(room..<slot, with: frame.bytes[..<headerLength])
        let flags = template[flagsOffset]
        template[flagsOffset] = flags & ~CoalescibleSegment.flagPSH
        let sharedSum = segment.sharedHeaderSum(template, at: room), identification = segment.identification(template, at: room)
        var headers: [UInt8] = []
        headers.reserveCapacity(used * slot)
        for _ in 0..<used { headers.append(contentsOf: template) }
        let first = regions.count
        var payloadOffset = 0
        var id = nextCoalescedID
        headers.withFieldStores { fields in
            for index in 0..<used {
                let chunk = reservation.chunk(index, of: frame.length)
                let payloadLength = index == 0 ? chunk.count - headerLength : chunk.count
                let base = index * slot
                let length = RNDISEncode.storePacketLength(fields, at: base, dataLength: headerLength + payloadLength, dataStart: room,
                                                           firstPPIValue: ReceiveOffload.packetID(id, first: true, last: true))
                id &+= 1
                segment.storePieceFields(fields, at: base + room, index: index, payloadOffset: payloadOffset,
                                         payloadLength: payloadLength, identification: identification, sharedSum: sharedSum)
                if index == used - 1 { fields.store(flags, at: base + flagsOffset) }
                payloadOffset += payloadLength
                // The header slice is taken once `headers` is complete (below): a slice alive while
                // it is still written would make it copy.
                regions.append(Delivery.Region(offset: buffer.byteOffset(ofSection: reservation.sections[index]),
                                               header: [], payload: [], length: length, fillsPadding: false))
            }
        }
        nextCoalescedID = id
        for index in 0..<used {
            regions[first + index].header = headers[index * slot..<(index + 1) * slot]
        }
    }

    /// Writes of `bytes` at `offset` into a frame read into `segments`; nil if they do not fit.
    static func guestWrites(_ bytes: [UInt8], at offset: Int, in segments: [GuestSegment]) -> [GuestWrite]? {
        guard let target = segments.subrange(offset: offset, length: bytes.count) else { return nil }
        var writes: [GuestWrite] = []
        var consumed = 0
        for piece in target {
            writes.append(GuestWrite(address: piece.address, bytes: bytes[consumed..<consumed + piece.length]))
            consumed += piece.length
        }
        return writes
    }
}

/// What placing one frame or run decided besides its regions (appended to the caller's list):
/// header rewrites, and how many of each frame's reserved sections it fills.
struct PlacedFrames {
    let patches: [GuestWrite]
    /// Sections each frame used (a coalesced run's frames use one each).
    let sectionsPerFrame: Int
}
