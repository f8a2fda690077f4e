import KeelNetwork
import KeelSystem
import KeelVMBus
import Testing

/// Random offload requests in both directions: checksum and large-send PPIs with random values
/// on random TCP-ish frames (whole-read and prefix paths), and random virtio-net headers and
/// sizes on received frames (copied and in-place paths). Nothing traps, every send is
/// completed, and every frame that reaches the TAP has a header whose offsets fit it.
@Suite struct OffloadFuzzTests {
    func randomTCPFrame(_ rng: inout SeededGenerator) -> [UInt8] {
        var frame = tcpFrame(ipv6: Bool.random(using: &rng), payload: Int.random(in: 0...9000, using: &rng),
                             totalLengthField: Bool.random(using: &rng) ? 0 : nil)
        for _ in 0..<Int.random(in: 0...6, using: &rng) {   // corrupt a few header bytes
            frame[Int.random(in: 12..<min(frame.count, 80), using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        }
        return frame
    }

    func randomPPIs(_ rng: inout SeededGenerator) -> [UInt8] {
        var ppis: [UInt8] = []
        if Bool.random(using: &rng) { ppis += RNDISRequest.ppi(type: 0, value: UInt32.random(in: 0...UInt32.max, using: &rng)) }
        if Bool.random(using: &rng) {
            let mss = UInt32.random(in: 0...2000, using: &rng), offset = UInt32([34, 54, 38, 0, 1023].randomElement(using: &rng)!)
            ppis += RNDISRequest.ppi(type: 2, value: mss | offset << 20 | 1 << 30 | UInt32.random(in: 0...1, using: &rng) << 31)
        }
        if Int.random(in: 0..<4, using: &rng) == 0 { ppis += RNDISRequest.ppi(type: 6, value: UInt32.random(in: 0...0xFFFF, using: &rng)) }
        return ppis
    }

    @Test func randomTransmitOffloads() throws {
        var rng = SeededGenerator(seed: 0x0FF1_0AD5)
        var guest = readyGuest()
        for round in 0..<800 {
            let message = RNDISRequest.packet(randomTCPFrame(&rng), ppis: randomPPIs(&rng))
            let before = guest.frames.count
            if round % 2 == 0 {
                #expect(guest.sendGPA(message) != nil)
            } else if message.count > NetworkAdapterProtocol.transmitPrefixLength {
                let range = GPADirectBuffer.Range(byteCount: message.count, byteOffset: 0,
                                                  pfns: (0..<UInt64((message.count + 4095) / 4096)).map { 0x900 + $0 })
                let packet = try GPADirectBuffer(ranges: [range]).packet(transactionID: 5, payload: nvsp([107, 0, 0xFFFF_FFFF, 0]))
                guard let transfer = guest.adapter.receive(packet).transfers.first else { continue }
                let prefix = Array(message.prefix(NetworkAdapterProtocol.transmitPrefixLength))
                if let actions = guest.adapter.rndisPacket(prefix: prefix, for: transfer) {
                    #expect(actions.sent.count == 1)
                    for case .transmit(let t) in actions {
                        let length = t.frame.count + t.rest.reduce(0) { $0 + $1.length }
                        #expect(t.header.flags & VirtioNetHeader.needsChecksum == 0
                                || Int(t.header.checksumStart) + Int(t.header.checksumOffset) + 2 <= length)
                    }
                }
            }
            for (frame, header) in zip(guest.frames[before...], guest.transmitHeaders[before...]) {
                #expect(header.flags & VirtioNetHeader.needsChecksum == 0
                        || Int(header.checksumStart) + Int(header.checksumOffset) + 2 <= frame.count)
                #expect(header.gsoType == 0 || (header.segmentSize > 0 && Int(header.headerLength) <= frame.count))
            }
        }
    }

    @Test func randomReceivedFrames() throws {
        var rng = SeededGenerator(seed: 0x5EC7_1025)
        var guest = readyGuest(receivePageCount: 256)
        let free = guest.adapter.freeDataSections
        for _ in 0..<500 {
            var frame = randomTCPFrame(&rng)
            if Bool.random(using: &rng) { frame += (0..<Int.random(in: 0...60000, using: &rng)).map { UInt8(truncatingIfNeeded: $0) } }
            let header = VirtioNetHeader(flags: UInt8.random(in: 0...3, using: &rng), gsoType: [0, 1, 4, 0x81].randomElement(using: &rng)!,
                                         headerLength: UInt16.random(in: 0...200, using: &rng),
                                         segmentSize: UInt16.random(in: 0...2000, using: &rng),
                                         checksumStart: UInt16.random(in: 0...2000, using: &rng),
                                         checksumOffset: [6, 16, UInt16.random(in: 0...0xFFFF, using: &rng)].randomElement(using: &rng)!)
            if Bool.random(using: &rng) {
                if let delivery = guest.adapter.deliverFrames([ReceivedFrame(frame, header: header)]).delivery {
                    guest.accept(delivery)
                }
            } else if let reservation = guest.adapter.reserveReceive() {
                let length = min(frame.count, reservation.capacity)
                let visible = length <= DirectFrame.fullReadLimit ? Array(frame.prefix(length)) : Array(frame.prefix(DirectFrame.headLength))
                guest.run(guest.adapter.deliverDirect([DirectFrame(reservation: reservation, length: length,
                                                                   header: header, bytes: visible)]))
            }
        }
        #expect(guest.adapter.freeDataSections == free)   // everything delivered was completed or given back
    }
}
