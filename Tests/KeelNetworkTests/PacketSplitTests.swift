import KeelSystem
import Testing

@testable import KeelNetwork

/// Large TCP packets from the host reach the guest as packets of at most 16 000 bytes, each with
/// its own headers, whether read in place or copied.
@Suite struct PacketSplitTests {
    static let gso = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv4,
                                     headerLength: 66, segmentSize: 1448, checksumStart: 34, checksumOffset: 16)

    /// Checks that `packets` carry `original`'s payload, in order, as segments of its flow: same
    /// addresses, ports, ACK and options; sequence numbers and IP lengths that match each piece;
    /// a valid IPv4 header checksum; PSH only on the last one, if the original had it.
    func expectPieces(_ packets: [(frame: [UInt8], checksumInfo: UInt32?, fragments: Int)], of original: [UInt8],
                      ipv6: Bool, count: Int) {
        let tcpStart = ipv6 ? 54 : 34
        let headerLength = tcpStart + Int(original[tcpStart + 12] >> 4) * 4
        func be(_ bytes: [UInt8], _ at: Int, _ n: Int) -> Int { (at..<at + n).reduce(0) { $0 << 8 | Int(bytes[$1]) } }
        #expect(packets.count == count)
        var payload: [UInt8] = []
        for (index, packet) in packets.enumerated() {
            let frame = packet.frame
            #expect(packet.fragments == 1)
            #expect(frame.count <= 16_000 && frame.count > headerLength)
            #expect(packet.checksumInfo == (ipv6 ? 1 << 3 : 1 << 3 | 1 << 5))
            guard frame.count > headerLength else { continue }
            #expect(be(frame, tcpStart + 4, 4) == (be(original, tcpStart + 4, 4) + payload.count) & 0xFFFF_FFFF)
            if ipv6 {
                #expect(be(frame, 18, 2) == frame.count - 54)
                #expect(frame[14..<18] == original[14..<18] && frame[20..<54] == original[20..<54])
            } else {
                #expect(be(frame, 16, 2) == frame.count - 14)
                #expect(referenceChecksum(Array(frame[14..<34])) == 0)
                #expect(frame[20..<24] == original[20..<24] && frame[26..<34] == original[26..<34])
            }
            let push = original[tcpStart + 13] & 0x08 != 0 && index == packets.count - 1
            #expect(frame[tcpStart + 13] == (original[tcpStart + 13] & ~0x08) | (push ? 0x08 : 0))
            #expect(frame[tcpStart..<tcpStart + 4] == original[tcpStart..<tcpStart + 4])
            #expect(frame[(tcpStart + 8)..<(tcpStart + 13)] == original[(tcpStart + 8)..<(tcpStart + 13)])
            #expect(frame[(tcpStart + 14)..<headerLength] == original[(tcpStart + 14)..<headerLength])
            payload += frame[headerLength...]
        }
        let samePayload = payload == Array(original[headerLength...])   // (compared first: too long to print)
        #expect(samePayload)
    }

    /// The guest's packets from messages: a message opens a packet unless a chain is open.
    func packets(_ messages: [[UInt8]]) -> [(frame: [UInt8], checksumInfo: UInt32?, fragments: Int)] {
        var grouped: [[[UInt8]]] = []
        var chainOpen = false
        for message in messages {
            let flags = SegmentCoalescingTests().packetIDFlags(message)
            if chainOpen { grouped[grouped.count - 1].append(message) } else { grouped.append([message]) }
            chainOpen = flags.map { $0 & 4 == 0 } ?? false
        }
        return grouped.map { ReceiveOffloadTests().reassemble($0) }
    }

    @Test(arguments: [false, true])
    func largePacketReadInPlaceIsSplitWithoutMovingPayload(ipv6: Bool) throws {
        var guest = readyGuest(receivePageCount: 4096)
        let free = guest.adapter.freeDataSections
        var header = Self.gso
        if ipv6 {
            // The first IPv6 packet teaches the 86-byte header gap; it is small and stays whole.
            let small = streamSegment(ipv6: true, sequence: 1, payload: streamBytes(0..<3000))
            #expect(try SegmentCoalescingTests().receive([small], guest: &guest).map(\.frame) == [small])
            header.gsoType = VirtioNetHeader.gsoTCPv6
            header.checksumStart = 54
        }
        let frame = streamSegment(ipv6: ipv6, sequence: 0xFFFF_F000, payload: streamBytes(0..<60000), flags: 0x18)
        let received = try SegmentCoalescingTests().receive([frame], header: header, guest: &guest)
        expectPieces(received, of: frame, ipv6: ipv6, count: 4)
        #expect(guest.adapter.freeDataSections == free)   // completed, and the unused sections came back
    }

    @Test func largestIPv4PacketFitsItsReservation() throws {
        var guest = readyGuest(receivePageCount: 4096)
        let frame = streamSegment(sequence: 9, payload: streamBytes(0..<(65535 - 52)))
        expectPieces(try SegmentCoalescingTests().receive([frame], header: Self.gso, guest: &guest), of: frame, ipv6: false, count: 5)
    }

    @Test(arguments: [false, true])
    func copiedLargePacketIsSplitTheSameWay(ipv6: Bool) throws {
        var guest = readyGuest(receivePageCount: 4096)
        let frame = streamSegment(ipv6: ipv6, sequence: 77, payload: streamBytes(0..<50000), flags: 0x18)
        let before = guest.received.count
        let (delivery, consumed) = guest.adapter.deliverFrames([ReceivedFrame(frame, header: Self.gso)])
        #expect(consumed == 1)
        guest.accept(try #require(delivery))
        expectPieces(packets(guest.received[before...].map(\.message)), of: frame, ipv6: ipv6, count: 4)
    }

    /// A frame whose headers are not the length guessed when its sections were laid out is
    /// chained whole; the next one is laid out for its headers and split.
    @Test func unexpectedHeaderLengthIsChainedThenLearned() throws {
        var guest = readyGuest(receivePageCount: 4096)
        let frame = streamSegment(sequence: 5, payload: streamBytes(0..<40000), timestamps: nil)
        let first = try SegmentCoalescingTests().receive([frame], header: Self.gso, guest: &guest)
        #expect(first.count == 1 && first.first?.frame == frame && first.first?.fragments == 3)
        expectPieces(try SegmentCoalescingTests().receive([frame], header: Self.gso, guest: &guest), of: frame, ipv6: false, count: 3)
    }

    /// Small receive buffers keep frame-sized sections: large packets become frame-sized ones.
    @Test func smallSectionsSplitIntoSectionSizedPackets() throws {
        var guest = readyGuest()
        let frame = streamSegment(sequence: 5, payload: streamBytes(0..<20000), flags: 0x18)
        let before = guest.received.count
        guest.accept(try #require(guest.adapter.deliverFrames([ReceivedFrame(frame, header: Self.gso)]).delivery))
        let received = packets(guest.received[before...].map(\.message))
        expectPieces(received, of: frame, ipv6: false, count: (20000 + 1642) / 1643)
    }
}
