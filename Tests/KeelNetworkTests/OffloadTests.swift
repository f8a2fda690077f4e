import KeelNetwork
import KeelSystem
import KeelVMBus
import Testing

/// A textbook RFC 1071 checksum over `bytes` (written independently of Keel's).
func referenceChecksum(_ bytes: [UInt8], initial: UInt32 = 0) -> UInt16 {
    var sum = initial
    var i = 0
    while i < bytes.count {
        sum += UInt32(bytes[i]) << 8 + (i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0)
        i += 2
    }
    while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
    return ~UInt16(sum)
}

/// An Ethernet + IPv4 (or IPv6) + TCP frame to `testMAC` with `payload` bytes, checksums as Linux
/// leaves them for an offload (`check` holds whatever the caller puts there).
func tcpFrame(ipv6: Bool = false, payload: Int, totalLengthField: UInt16? = nil, seed: UInt8 = 3) -> [UInt8] {
    var frame = testMAC + [0x02, 0, 0, 0, 0, 0x99] + (ipv6 ? [0x86, 0xDD] : [0x08, 0x00])
    let tcpLength = 20 + payload
    if ipv6 {
        let length = totalLengthField ?? UInt16(tcpLength)
        frame += [0x60, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF), 6, 64]
        frame += (0..<16).map { UInt8($0) } + (0..<16).map { UInt8(0xF0 | $0) }
    } else {
        let length = totalLengthField ?? UInt16(20 + tcpLength)
        frame += [0x45, 0, UInt8(length >> 8), UInt8(length & 0xFF), 0x12, 0x34, 0x40, 0, 64, 6, 0, 0,
                  10, 79, 0, 2, 10, 79, 0, 1]
    }
    frame += [0x9C, 0x40, 0x13, 0x89, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xFF, 0xFF, 0, 0, 0, 0]
    frame += (0..<payload).map { UInt8(truncatingIfNeeded: Int(seed) &* 7 &+ $0) }
    return frame
}

/// The TCP checksum a receiver computes over `frame` (0 when it is right), from the IP header.
func tcpChecksumResidue(_ frame: [UInt8], ipv6: Bool) -> UInt16 {
    let ipStart = 14, tcpStart = ipv6 ? 54 : 34
    let addresses = ipv6 ? Array(frame[ipStart + 8 ..< ipStart + 40]) : Array(frame[ipStart + 12 ..< ipStart + 20])
    let segment = Array(frame[tcpStart...])
    var pseudo = addresses + [0, 6]
    pseudo += [UInt8(segment.count >> 8 & 0xFF), UInt8(segment.count & 0xFF)]
    if pseudo.count % 2 == 1 { pseudo.append(0) }
    return referenceChecksum(pseudo + segment)
}

@Suite struct TransmitOffloadTests {
    /// Linux's CHECKSUM_PARTIAL: the TCP check field holds the pseudo-header sum for the length.
    func seedPseudoHeader(_ frame: inout [UInt8], ipv6: Bool) {
        let tcpStart = ipv6 ? 54 : 34
        let addresses = ipv6 ? Array(frame[22..<54]) : Array(frame[26..<34])
        let length = frame.count - tcpStart
        let folded = ~referenceChecksum(addresses + [0, 6, UInt8(length >> 8), UInt8(length & 0xFF)])
        frame[tcpStart + 16] = UInt8(folded >> 8)
        frame[tcpStart + 17] = UInt8(folded & 0xFF)
    }

    @Test func checksumPPIBecomesANeedsChecksumHeader() throws {
        var guest = readyGuest()
        var frame = tcpFrame(payload: 200)
        seedPseudoHeader(&frame, ipv6: false)
        let ppi = RNDISRequest.ppi(type: 0, value: 1 | 1 << 2 | 34 << 16)   // IPv4, TCP, header at 34
        #expect(status(guest.sendSection(0, RNDISRequest.packet(frame, ppis: ppi))) == NVSPStatus.success)
        #expect(guest.frames == [frame])
        let header = try #require(guest.transmitHeaders.first)
        #expect(header == VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 16))
        #expect(header.bytes == [1, 0, 0, 0, 0, 0, 34, 0, 16, 0])
    }

    @Test func udpChecksumUsesItsOwnField() throws {
        var guest = readyGuest()
        let frame = ethernetFrame(length: 120)
        let ppi = RNDISRequest.ppi(type: 0, value: 1 | 1 << 3 | 34 << 16)
        #expect(status(guest.sendSection(0, RNDISRequest.packet(frame, ppis: ppi))) == NVSPStatus.success)
        #expect(guest.transmitHeaders.first?.checksumOffset == 6)
    }

    @Test func checksumOutsideTheFrameIsRefused() {
        var guest = readyGuest()
        let ppi = RNDISRequest.ppi(type: 0, value: 1 | 1 << 2 | 1000 << 16)
        #expect(status(guest.sendSection(0, RNDISRequest.packet(ethernetFrame(length: 100), ppis: ppi)))
            == NVSPStatus.invalidRNDISPacket)
        #expect(guest.frames.isEmpty)
        #expect(guest.diagnostics.map(\.kind) == [.malformedRNDIS])
    }

    /// LSOv2 as netvsc sends it: IP length and checksum zeroed, TCP check seeded without length.
    func largeSend(ipv6: Bool, payload: Int, mss: UInt32) -> (frame: [UInt8], ppi: [UInt8]) {
        var frame = tcpFrame(ipv6: ipv6, payload: payload, totalLengthField: 0)
        let tcpStart = ipv6 ? 54 : 34
        let addresses = ipv6 ? Array(frame[22..<54]) : Array(frame[26..<34])
        let seeded = ~referenceChecksum(addresses + [0, 6, 0, 0])
        frame[tcpStart + 16] = UInt8(seeded >> 8)
        frame[tcpStart + 17] = UInt8(seeded & 0xFF)
        let value = mss | UInt32(tcpStart) << 20 | 1 << 30 | (ipv6 ? 1 << 31 : 0)
        return (frame, RNDISRequest.ppi(type: 2, value: value))
    }

    @Test(arguments: [false, true])
    func largeSendIsCompletedForTheKernel(ipv6: Bool) throws {
        var guest = readyGuest()
        let (frame, ppi) = largeSend(ipv6: ipv6, payload: 9000, mss: 1448)
        #expect(status(guest.sendGPA(RNDISRequest.packet(frame, ppis: ppi))) == NVSPStatus.success)
        var sent = try #require(guest.frames.first)
        let header = try #require(guest.transmitHeaders.first)
        let tcpStart = ipv6 ? 54 : 34
        #expect(header == VirtioNetHeader(flags: VirtioNetHeader.needsChecksum,
                                          gsoType: ipv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4,
                                          headerLength: UInt16(tcpStart + 20), segmentSize: 1448,
                                          checksumStart: UInt16(tcpStart), checksumOffset: 16))
        if ipv6 {
            #expect(Int(sent[18]) << 8 | Int(sent[19]) == 20 + 9000)
        } else {
            #expect(Int(sent[16]) << 8 | Int(sent[17]) == 40 + 9000)
            #expect(referenceChecksum(Array(sent[14..<34])) == 0)   // a valid IPv4 header checksum
        }
        // What the kernel does with NEEDS_CSUM: sum from csum_start over the rest, fold, invert.
        let check = referenceChecksum(Array(sent[tcpStart...]))
        sent[tcpStart + 16] = UInt8(check >> 8)
        sent[tcpStart + 17] = UInt8(check & 0xFF)
        #expect(tcpChecksumResidue(sent, ipv6: ipv6) == 0)
        #expect(sent[(tcpStart + 20)...] == frame[(tcpStart + 20)...])
    }

    @Test func largeSendOfOneSegmentNeedsOnlyTheChecksum() throws {
        var guest = readyGuest()
        let (frame, ppi) = largeSend(ipv6: false, payload: 500, mss: 1448)
        #expect(status(guest.sendSection(0, RNDISRequest.packet(frame, ppis: ppi))) == NVSPStatus.success)
        let header = try #require(guest.transmitHeaders.first)
        #expect(header.gsoType == VirtioNetHeader.gsoNone && header.flags == VirtioNetHeader.needsChecksum)
    }

    @Test func largeSendWithAVLANPPIShiftsTheOffsets() throws {
        var guest = readyGuest()
        let (frame, lso) = largeSend(ipv6: false, payload: 4000, mss: 1000)
        let vlan = RNDISRequest.ppi(type: 6, value: 7 << 4)
        #expect(status(guest.sendGPA(RNDISRequest.packet(frame, ppis: lso + vlan))) == NVSPStatus.success)
        let header = try #require(guest.transmitHeaders.first)
        #expect(header.checksumStart == 38 && header.headerLength == 58)
        #expect(guest.frames.first?.count == frame.count + 4)
    }

    @Test func largeSendOnSomethingElseIsRefused() {
        var guest = readyGuest()
        // ARP frame, then an IPv4 frame whose header does not end at the claimed TCP offset, then MSS 0.
        let bad: [[UInt8]] = [
            ethernetFrame(length: 3000).enumerated().map { $0.offset == 12 ? 0x08 : $0.offset == 13 ? 0x06 : $0.element },
            largeSend(ipv6: false, payload: 3000, mss: 1448).frame,
            largeSend(ipv6: false, payload: 3000, mss: 0).frame,
        ]
        let ppis = [RNDISRequest.ppi(type: 2, value: 1448 | 34 << 20 | 1 << 30),
                    RNDISRequest.ppi(type: 2, value: 1448 | 40 << 20 | 1 << 30),
                    RNDISRequest.ppi(type: 2, value: 0 | 34 << 20 | 1 << 30)]
        for (frame, ppi) in zip(bad, ppis) {
            #expect(status(guest.sendGPA(RNDISRequest.packet(frame, ppis: ppi))) == NVSPStatus.invalidRNDISPacket)
        }
        #expect(guest.frames.isEmpty)
        #expect(guest.diagnostics.count == 3)
    }

    /// A GPA-direct transfer of `message` at guest address 0x90_0000 (as netvsc's page buffers).
    func transfer(of message: [UInt8], guest: inout GuestHarness) throws -> RNDISTransfer {
        let range = GPADirectBuffer.Range(byteCount: message.count, byteOffset: 0,
                                          pfns: (0..<UInt64((message.count + 4095) / 4096)).map { 0x900 + $0 })
        let packet = try GPADirectBuffer(ranges: [range]).packet(transactionID: 77, payload: nvsp([107, 0, 0xFFFF_FFFF, 0]))
        let actions = guest.adapter.receive(packet)
        let first = actions.transfers.first
        return try #require(first)
    }

    @Test func largePacketLeavesItsPayloadInGuestMemory() throws {
        var guest = readyGuest()
        let (frame, ppi) = largeSend(ipv6: false, payload: 20000, mss: 1448)
        let message = RNDISRequest.packet(frame, ppis: ppi)
        let plan = try transfer(of: message, guest: &guest)
        let prefixLength = NetworkAdapterProtocol.transmitPrefixLength
        let planned = guest.adapter.rndisPacket(prefix: Array(message.prefix(prefixLength)), for: plan)
        let actions = try #require(planned)
        guard case .transmit(let transmit) = actions.first else { Issue.record("no transmit"); return }
        #expect(status(actions.sent.first) == NVSPStatus.success)
        // The head is fixed up like the whole-frame path; the rest names the message's remaining bytes.
        var whole = readyGuest()
        whole.sendGPA(message)
        let firstFrame = whole.frames.first
        let expected = try #require(firstFrame)
        #expect(transmit.header == whole.transmitHeaders.first)
        #expect(transmit.frame == Array(expected.prefix(transmit.frame.count)))
        #expect(transmit.rest.reduce(0) { $0 + $1.length } == expected.count - transmit.frame.count)
        #expect(transmit.rest.first?.address == 0x90_0000 + UInt64(prefixLength))
        #expect(transmit.frame.count + transmit.rest.reduce(0) { $0 + $1.length } == frame.count)
    }

    @Test func prefixPathDeclinesWhatItCannotTake() throws {
        var guest = readyGuest()
        let (frame, ppi) = largeSend(ipv6: false, payload: 20000, mss: 1448)
        let message = RNDISRequest.packet(frame, ppis: ppi)
        let plan = try transfer(of: message, guest: &guest)
        let prefix = Array(message.prefix(NetworkAdapterProtocol.transmitPrefixLength))
        var corrupt = prefix
        corrupt[4] = 0   // msg_len too short for the transfer
        #expect(guest.adapter.rndisPacket(prefix: corrupt, for: plan) == nil)
        var badPPI = prefix
        badPPI[44] = 200   // PPI size past the PPI area
        #expect(guest.adapter.rndisPacket(prefix: badPPI, for: plan) == nil)
        #expect(guest.adapter.rndisPacket(prefix: Array(prefix.prefix(30)), for: plan) == nil)
        #expect(guest.diagnostics.isEmpty)   // declining reports nothing; the whole-read path does
    }

    @Test func oversizedFrameWithoutLargeSendIsStillRefused() {
        var guest = readyGuest()
        #expect(status(guest.sendGPA(RNDISRequest.packet(tcpFrame(payload: 3000)))) == NVSPStatus.invalidRNDISPacket)
        #expect(guest.diagnostics.map(\.kind) == [.droppedFrame])
    }
}

@Suite struct ReceiveOffloadTests {

    /// The frame the guest rebuilds from its received messages (netvsc's rsc_add_data), and the
    /// checksum PPI value of the first fragment.
    func reassemble(_ messages: [[UInt8]]) -> (frame: [UInt8], checksumInfo: UInt32?, fragments: Int) {
        var frame: [UInt8] = []
        var checksum: UInt32?
        for (index, message) in messages.enumerated() {
            let dataOffset = Int(le32(message, 8)), dataLength = Int(le32(message, 12))
            let ppiOffset = Int(le32(message, 28)), ppiLength = Int(le32(message, 32))
            var position = 8 + ppiOffset
            var flags: UInt8?
            while ppiLength > 0, position < 8 + ppiOffset + ppiLength {
                let size = Int(le32(message, position)), type = le32(message, position + 4)
                let value = le32(message, position + Int(le32(message, position + 8)))
                if type == 0, index == 0 { checksum = value }
                if type == 1 | 1 << 31 { flags = UInt8(value >> 8 & 0xFF) }
                position += size
            }
            if messages.count > 1 {
                #expect(flags.map { $0 & 1 != 0 } == true)
                #expect(flags.map { $0 & 2 != 0 } == (index == 0))
                #expect(flags.map { $0 & 4 != 0 } == (index == messages.count - 1))
            }
            frame += message[(8 + dataOffset)..<(8 + dataOffset + dataLength)]
        }
        return (frame, checksum, messages.count)
    }

    @Test func coalescedPacketArrivesAsOneChain() throws {
        var guest = readyGuest()
        #expect(guest.adapter.offloadSettings.coalesceIPv4 && guest.adapter.offloadSettings.receiveChecksumIPv4)
        var frame = tcpFrame(payload: 60000)
        frame[47] |= 0x01   // FIN: a packet that cannot be split into several
        let gso = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv4,
                                  headerLength: 54, segmentSize: 1448, checksumStart: 34, checksumOffset: 16)
        let before = guest.received.count
        let (delivery, consumed) = guest.adapter.deliverFrames([ReceivedFrame(frame, header: gso)])
        #expect(consumed == 1)
        let sectionSize = try #require(guest.adapter.receiveBufferLayout?.sectionSize)
        #expect(delivery?.regions.allSatisfy { $0.length <= sectionSize } == true)
        guest.accept(try #require(delivery))
        let (rebuilt, checksum, fragments) = reassemble(guest.received[before...].map(\.message))
        #expect(rebuilt == frame)
        #expect(fragments == 36)
        #expect(checksum == 1 << 3 | 1 << 5)
    }

    @Test func coalescingOffDropsLargePackets() {
        var guest = readyGuest()
        guest.control(RNDISRequest.set(20, RNDISOID.offloadParameters,
                                       [0x80, 3, 28, 0] + [UInt8](repeating: 0, count: 18) + [1, 1, 0, 0, 0, 0]))
        #expect(!guest.adapter.offloadSettings.coalescing)
        let (delivery, consumed) = guest.adapter.deliverFrames([ReceivedFrame(tcpFrame(payload: 5000))])
        #expect(delivery == nil && consumed == 1)
        #expect(guest.adapter.deliverFrames([ReceivedFrame(tcpFrame(payload: 1000))]).delivery != nil)
    }

    @Test func chainLongerThanTheBufferIsDroppedNotStuck() {
        var guest = readyGuest(receivePageCount: 8)   // 18 sections, 16 for data: a 64 KiB chain needs 36
        let (delivery, consumed) = guest.adapter.deliverFrames([ReceivedFrame(tcpFrame(payload: 60000)),
                                                                ReceivedFrame(tcpFrame(payload: 100))])
        #expect(consumed == 2)
        #expect(delivery?.regions.count == 1)   // the small frame behind it still got through
    }

    @Test func coalescingIsOnlyForTCP() {
        var guest = readyGuest()
        var udp = tcpFrame(payload: 5000)
        udp[23] = 17
        #expect(guest.adapter.deliverFrames([ReceivedFrame(udp)]).delivery == nil)
    }

    /// Payload lengths that end the sum on each byte of an eight-byte word, and none.
    @Test(arguments: [0, 1, 2, 3, 5, 7, 700, 701])
    func openChecksumIsCompletedAndReported(payload: Int) throws {
        var guest = readyGuest()
        var frame = tcpFrame(payload: payload)
        let tcpLength = UInt16(20 + payload)
        // The kernel's CHECKSUM_PARTIAL: the pseudo-header sum in the field.
        let folded = ~referenceChecksum(Array(frame[26..<34]) + [0, 6, UInt8(tcpLength >> 8), UInt8(tcpLength & 0xFF)])
        frame[50] = UInt8(folded >> 8)
        frame[51] = UInt8(folded & 0xFF)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 16)
        let before = guest.received.count
        guest.accept(try #require(guest.adapter.deliverFrames([ReceivedFrame(frame, header: header)]).delivery))
        let (rebuilt, checksum, _) = reassemble(guest.received[before...].map(\.message))
        #expect(tcpChecksumResidue(rebuilt, ipv6: false) == 0)
        #expect(checksum == 1 << 3 | 1 << 5)
    }

    @Test func checksumIsReportedOnlyWhenKnownAndWanted() throws {
        var guest = readyGuest()
        let valid = VirtioNetHeader(flags: VirtioNetHeader.dataValid)
        for (header, expected) in [(valid, UInt32?(1 << 3 | 1 << 5)), (VirtioNetHeader(), nil)] {
            let before = guest.received.count
            guest.accept(try #require(guest.adapter.deliverFrames([ReceivedFrame(tcpFrame(payload: 100), header: header)]).delivery))
            #expect(reassemble(guest.received[before...].map(\.message)).checksumInfo == expected)
        }
        // The guest turns receive checksum offload off: no PPI even for a verified frame.
        guest.control(RNDISRequest.set(21, RNDISOID.offloadParameters, [0x80, 3, 28, 0, 0, 2, 2, 2, 2] + [UInt8](repeating: 0, count: 19)))
        let before = guest.received.count
        guest.accept(try #require(guest.adapter.deliverFrames([ReceivedFrame(tcpFrame(payload: 100), header: valid)]).delivery))
        #expect(reassemble(guest.received[before...].map(\.message)).checksumInfo == nil)
    }

    @Test func openChecksumOutsideTheFrameDropsIt() {
        var guest = readyGuest()
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 200, checksumOffset: 16)
        let (delivery, consumed) = guest.adapter.deliverFrames([ReceivedFrame(tcpFrame(payload: 100), header: header)])
        #expect(delivery == nil && consumed == 1)
    }

    @Test func offloadParametersTooShortAreInvalid() {
        var guest = readyGuest()
        let response = guest.control(RNDISRequest.set(22, RNDISOID.offloadParameters, [0x80, 3, 28, 0]))
        #expect(response.map { le32($0, 12) } == RNDISStatus.invalidData)
    }
}

/// Frames the backend reads straight into reserved receive sections.
@Suite struct DirectReceiveTests {

    /// What the TAP does: the frame's bytes into the reservation's data areas, in order.
    func backendWrites(_ frame: [UInt8], into reservation: ReceiveReservation, guest: inout GuestHarness) {
        var offset = 0
        for segment in reservation.dataSegments where offset < frame.count {
            let take = min(segment.length, frame.count - offset)
            guest.memory.write(segment.address, Array(frame[offset..<offset + take]))
            offset += take
        }
    }

    func receive(_ frame: [UInt8], header: VirtioNetHeader = VirtioNetHeader(), guest: inout GuestHarness) throws -> [[UInt8]] {
        let reserved = guest.adapter.reserveReceive()
        let reservation = try #require(reserved)
        backendWrites(frame, into: reservation, guest: &guest)
        let visible = frame.count <= DirectFrame.fullReadLimit ? frame : Array(frame.prefix(DirectFrame.headLength))
        let before = guest.received.count
        guest.run(guest.adapter.deliverDirect([DirectFrame(reservation: reservation, length: frame.count,
                                                           header: header, bytes: visible)]))
        return guest.received[before...].map(\.message)
    }

    @Test func coalescedPacketIsFramedInPlace() throws {
        var guest = readyGuest()
        let free = guest.adapter.freeDataSections
        let frame = tcpFrame(payload: 50000)
        let gso = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv4,
                                  headerLength: 54, segmentSize: 1448, checksumStart: 34, checksumOffset: 16)
        let messages = try receive(frame, header: gso, guest: &guest)
        let (rebuilt, checksum, fragments) = ReceiveOffloadTests().reassemble(messages)
        #expect(rebuilt == frame)
        // Its headers are not the 66 bytes guessed, so it is chained: 1712 bytes in the first
        // section, 1712 less the 66-byte gap in each later one.
        #expect(fragments == 1 + (frame.count - 1712 + 1645) / 1646)
        #expect(checksum == 1 << 3 | 1 << 5)
        #expect(guest.adapter.freeDataSections == free)   // completed, and the unused sections came back
    }

    @Test func smallFrameGetsItsChecksumCompleted() throws {
        var guest = readyGuest()
        var frame = tcpFrame(payload: 300)
        let folded = ~referenceChecksum(Array(frame[26..<34]) + [0, 6, 0x01, 0x40])
        frame[50] = UInt8(folded >> 8)
        frame[51] = UInt8(folded & 0xFF)
        let header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: 34, checksumOffset: 16)
        let messages = try receive(frame, header: header, guest: &guest)
        let (rebuilt, checksum, fragments) = ReceiveOffloadTests().reassemble(messages)
        #expect(fragments == 1)
        #expect(tcpChecksumResidue(rebuilt, ipv6: false) == 0)
        #expect(checksum == 1 << 3 | 1 << 5)
    }

    @Test func unwantedFramesGiveTheirSectionsBack() throws {
        var guest = readyGuest()
        let free = guest.adapter.freeDataSections
        #expect(try receive(ethernetFrame(to: [0x02, 1, 2, 3, 4, 5], length: 100), guest: &guest).isEmpty)
        var udp = tcpFrame(payload: 5000)
        udp[23] = 17
        #expect(try receive(udp, guest: &guest).isEmpty)
        #expect(guest.adapter.freeDataSections == free)
        let reserved = guest.adapter.reserveReceive()
        guest.adapter.cancel(try #require(reserved))
        #expect(guest.adapter.freeDataSections == free)
    }

    @Test func nothingIsReservedBeforeTheGuestIsReady() {
        var guest = GuestHarness()
        guest.nvspInit()
        #expect(guest.adapter.reserveReceive() == nil)
    }
}
