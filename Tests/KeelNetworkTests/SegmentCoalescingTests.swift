import KeelSystem
import Testing

@testable import KeelNetwork

/// A segment of a host→guest TCP stream as Linux sends it: Ethernet to `testMAC`, IPv4 (valid
/// header checksum) or IPv6, NOP NOP timestamps unless `timestamps` is nil.
func streamSegment(ipv6: Bool = false, sequence: UInt32, payload: [UInt8], flags: UInt8 = 0x10,
                   window: UInt16 = 500, timestamps: (UInt32, UInt32)? = (1000, 77), ack: UInt32 = 1,
                   sourcePort: UInt16 = 5002, tos: UInt8 = 0, fragmentFlags: UInt8 = 0x40) -> [UInt8] {
    func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
    let options: [UInt8] = timestamps.map { [1, 1, 8, 10] + be32($0.0) + be32($0.1) } ?? []
    var tcp = [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xFF), 0x9C, 0x40] + be32(sequence) + be32(ack)
    tcp += [UInt8((20 + options.count) / 4) << 4, flags, UInt8(window >> 8), UInt8(window & 0xFF), 0xAB, 0xCD, 0, 0]
    tcp += options
    var frame = testMAC + [0x02, 0, 0, 0, 0, 0x99] + (ipv6 ? [0x86, 0xDD] : [0x08, 0x00])
    let length = tcp.count + payload.count
    if ipv6 {
        frame += [0x60 | tos >> 4, tos << 4, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 6, 64]
        frame += (0..<16).map { UInt8($0) } + (0..<16).map { UInt8(0xF0 | $0) }
    } else {
        var ip: [UInt8] = [0x45, tos, UInt8((20 + length) >> 8), UInt8((20 + length) & 0xFF), 0x12, 0x34,
                           fragmentFlags, 0, 64, 6, 0, 0, 10, 79, 0, 1, 10, 79, 0, 2]
        let sum = referenceChecksum(ip)
        ip[10] = UInt8(sum >> 8)
        ip[11] = UInt8(sum & 0xFF)
        frame += ip
    }
    return frame + tcp + payload
}

/// Bytes of a stream's payload, distinct per offset.
func streamBytes(_ range: Range<Int>) -> [UInt8] { range.map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 8) } }

/// Host → guest segments that arrive together from the TAP, delivered in place as coalesced packets.
@Suite struct SegmentCoalescingTests {
    /// The host vouched for the checksums (so no frame here has one completed by Keel).
    static let verified = VirtioNetHeader(flags: VirtioNetHeader.dataValid)

    /// Reads `frames` into reservations as the TAP would, delivers them in one batch, and returns
    /// the packets the guest reassembles (a chain's fragments joined), with their checksum PPIs.
    func receive(_ frames: [[UInt8]], header: VirtioNetHeader = verified, guest: inout GuestHarness) throws
        -> [(frame: [UInt8], checksumInfo: UInt32?, fragments: Int)] {
        var direct: [DirectFrame] = []
        for frame in frames {
            let reserved = guest.adapter.reserveReceive()
            let reservation = try #require(reserved)
            DirectReceiveTests().backendWrites(frame, into: reservation, guest: &guest)
            let visible = frame.count <= DirectFrame.fullReadLimit ? frame : Array(frame.prefix(DirectFrame.headLength))
            direct.append(DirectFrame(reservation: reservation, length: frame.count, header: header, bytes: visible))
        }
        let before = guest.received.count
        guest.run(guest.adapter.deliverDirect(direct))
        var packets: [[[UInt8]]] = []
        var chainOpen = false
        for (_, message) in guest.received[before...] {
            let flags = packetIDFlags(message)
            if chainOpen { packets[packets.count - 1].append(message) } else { packets.append([message]) }
            chainOpen = flags.map { $0 & 4 == 0 } ?? false
        }
        return packets.map { ReceiveOffloadTests().reassemble($0) }
    }

    /// The flags of a message's packet-id PPI (first 2, last 4), nil without one.
    func packetIDFlags(_ message: [UInt8]) -> UInt8? {
        let ppiOffset = Int(le32(message, 28)), ppiLength = Int(le32(message, 32))
        var position = 8 + ppiOffset
        while ppiLength > 0, position < 8 + ppiOffset + ppiLength {
            if le32(message, position + 4) == 1 | 1 << 31 { return UInt8(le32(message, position + 12) >> 8 & 0xFF) }
            position += Int(le32(message, position))
        }
        return nil
    }

    @Test(arguments: [false, true])
    func inOrderSegmentsReachTheGuestAsOnePacket(ipv6: Bool) throws {
        var guest = readyGuest(receivePageCount: 4096)
        let free = guest.adapter.freeDataSections
        let segments = [
            streamSegment(ipv6: ipv6, sequence: 7000, payload: streamBytes(0..<5000), window: 500, timestamps: (1000, 77)),
            streamSegment(ipv6: ipv6, sequence: 12000, payload: streamBytes(5000..<11000), flags: 0x18, window: 510, timestamps: (1001, 77)),
            streamSegment(ipv6: ipv6, sequence: 18000, payload: streamBytes(11000..<14000), window: 520, timestamps: (1002, 78)),
        ]
        let packets = try receive(segments, guest: &guest)
        #expect(packets.count == 1)
        let packet = try #require(packets.first)
        // What the sender could have sent as one segment: PSH carried, the newest window and timestamps.
        let expected = streamSegment(ipv6: ipv6, sequence: 7000, payload: streamBytes(0..<14000), flags: 0x18,
                                     window: 520, timestamps: (1002, 78))
        let asOneSegment = packet.frame == expected   // (compared first: the arrays are too long to print)
        #expect(asOneSegment)
        #expect(packet.fragments == 3)
        #expect(packet.checksumInfo == (ipv6 ? 1 << 3 : 1 << 3 | 1 << 5))
        if !ipv6 { #expect(referenceChecksum(Array(packet.frame[14..<34])) == 0) }
        #expect(guest.adapter.freeDataSections == free)   // completed, and the unused sections came back
    }

    /// Each change to the second segment that must keep it out of the first's packet.
    static let separations: [(String, [UInt8])] = [
        ("sequence gap", streamSegment(sequence: 9001, payload: streamBytes(0..<3000))),
        ("retransmission", streamSegment(sequence: 7000, payload: streamBytes(0..<3000))),
        ("other flow", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), sourcePort: 5003)),
        ("other ACK", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), ack: 2)),
        ("FIN", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), flags: 0x11)),
        ("URG", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), flags: 0x30)),
        ("CWR", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), flags: 0x90)),
        ("RST", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), flags: 0x14)),
        ("timestamps back", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), timestamps: (999, 77))),
        ("echo back", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), timestamps: (1000, 76))),
        ("other options", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), timestamps: nil)),
        ("ECN mark", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), tos: 3)),
        ("fragment", streamSegment(sequence: 9000, payload: streamBytes(0..<3000), fragmentFlags: 0x20)),
        ("no payload", streamSegment(sequence: 9000, payload: [])),
    ]

    @Test(arguments: separations.indices)
    func segmentsThatCannotJoinStayWhole(index: Int) throws {
        var guest = readyGuest(receivePageCount: 4096)
        let first = streamSegment(sequence: 7000, payload: streamBytes(0..<2000))
        let second = Self.separations[index].1
        let packets = try receive([first, second], guest: &guest)
        let whole = packets.map(\.frame) == [first, second]
        #expect(whole, "\(Self.separations[index].0)")
    }

    @Test func segmentsWithoutAVouchedChecksumStayWhole() throws {
        var guest = readyGuest(receivePageCount: 4096)
        let segments = [streamSegment(sequence: 1, payload: streamBytes(0..<3000)),
                        streamSegment(sequence: 3001, payload: streamBytes(3000..<6000))]
        let whole = try receive(segments, header: VirtioNetHeader(), guest: &guest).map(\.frame) == segments
        #expect(whole)
    }

    @Test func nothingIsJoinedWhileTheGuestHasCoalescingOff() throws {
        var guest = readyGuest(receivePageCount: 4096)
        guest.control(RNDISRequest.set(20, RNDISOID.offloadParameters,
                                       [0x80, 3, 28, 0] + [UInt8](repeating: 0, count: 18) + [1, 1, 0, 0, 0, 0]))
        let segments = [streamSegment(sequence: 1, payload: streamBytes(0..<700)),
                        streamSegment(sequence: 701, payload: streamBytes(700..<1400))]
        let whole = try receive(segments, guest: &guest).map(\.frame) == segments
        #expect(whole)
    }

    /// Linux copies a packet into one buffer: joined packets stop at 16 000 bytes, a 16 KiB buffer.
    @Test(arguments: [(900, [4]), (1000, [3, 1])])
    func packetsStayWithinTheGuestsBuffer(lastPayload: Int, fragments: [Int]) throws {
        var guest = readyGuest(receivePageCount: 4096)
        var segments: [[UInt8]] = []
        for (index, size) in [5000, 5000, 5000, lastPayload].enumerated() {
            segments.append(streamSegment(sequence: UInt32(index * 5000), payload: streamBytes(index * 5000..<index * 5000 + size)))
        }
        let packets = try receive(segments, guest: &guest)
        #expect(packets.map(\.fragments) == fragments)
        #expect(packets.allSatisfy { $0.frame.count <= 16_000 })
    }

    @Test func smallSegmentsThatFitOneFrameAreNotChained() throws {
        var guest = readyGuest(receivePageCount: 4096)
        let segments = [streamSegment(sequence: 1, payload: streamBytes(0..<100)),
                        streamSegment(sequence: 101, payload: streamBytes(100..<200))]
        let whole = try receive(segments, guest: &guest).map(\.frame) == segments
        #expect(whole)
    }

    /// Hostile or garbled frames from the host side: runs of mutated stream segments never trap,
    /// and every section comes back.
    @Test func mutatedStreamsNeverTrapOrLeakSections() throws {
        var rng = SeededGenerator(seed: 0xC0A1_E5CE)
        var guest = readyGuest(receivePageCount: 4096)
        let free = guest.adapter.freeDataSections
        var sequence: UInt32 = 1
        for _ in 0..<200 {
            var frames: [[UInt8]] = []
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let size = Int.random(in: 0...20000, using: &rng)
                var frame = streamSegment(ipv6: Bool.random(using: &rng), sequence: sequence,
                                          payload: streamBytes(0..<size), flags: [0x10, 0x18, 0x12].randomElement(using: &rng)!)
                sequence &+= UInt32(size)
                for _ in 0..<Int.random(in: 0...2, using: &rng) {
                    frame[Int.random(in: 0..<min(frame.count, 90), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
                if Int.random(in: 0..<8, using: &rng) == 0 { frame = Array(frame.prefix(Int.random(in: 0...90, using: &rng))) }
                if !frame.isEmpty { frames.append(frame) }
            }
            _ = try receive(frames, guest: &guest)
        }
        #expect(guest.adapter.freeDataSections == free)
    }
}
