import KeelNetwork
@testable import KeelVMBus
import Testing

/// Random NVSP packets, RNDIS blobs, deliveries, completions and link flips: nothing traps, every
/// packet that asks for a completion gets exactly one, and only well-formed frames reach the TAP.
@Suite struct FuzzTests {
    static let oids: [UInt32] = [RNDISOID.maximumFrameSize, RNDISOID.permanentAddress, RNDISOID.friendlyName,
                                 RNDISOID.offloadHardwareCapabilities, RNDISOID.offloadParameters,
                                 RNDISOID.mediaConnectStatus, RNDISOID.linkSpeed, RNDISOID.receiveScaleCapabilities,
                                 RNDISOID.currentPacketFilter, RNDISOID.multicastList, RNDISOID.supportedList]
    static let nvspTypes: [UInt32] = [1, 2, 100, 101, 102, 103, 104, 105, 106, 107, 108, 125, 129, 133, 0, 999]

    func bytes(_ count: Int, _ rng: inout SeededGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &rng) }
    }

    func randomFrame(_ rng: inout SeededGenerator) -> [UInt8] {
        let destination = [testMAC, broadcastMAC, [0x01, 0, 0x5E, 0, 0, 1], bytes(6, &rng)].randomElement(using: &rng) ?? testMAC
        return ethernetFrame(to: destination, length: Int.random(in: 0...1600, using: &rng), seed: UInt8.random(in: 0...255, using: &rng))
    }

    func randomRNDIS(_ rng: inout SeededGenerator) -> [UInt8] {
        var blob: [UInt8] = []
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            let id = UInt32.random(in: 0...50, using: &rng)
            let oid = Self.oids.randomElement(using: &rng) ?? 0
            var message: [UInt8]
            switch Int.random(in: 0..<10, using: &rng) {
            case 0...2:
                let ppi = [[], RNDISRequest.ppi(type: 6, value: UInt32.random(in: 0...0xFFFF, using: &rng)),
                           bytes(Int.random(in: 0...24, using: &rng), &rng)].randomElement(using: &rng) ?? []
                message = RNDISRequest.packet(randomFrame(&rng), ppis: ppi, align: [1, 8].randomElement(using: &rng) ?? 1)
            case 3: message = RNDISRequest.initialize(id)
            case 4: message = RNDISRequest.query(id, oid)
            case 5: message = RNDISRequest.set(id, oid, bytes(Int.random(in: 0...40, using: &rng), &rng))
            case 6: message = [RNDISRequest.halt(id), RNDISRequest.keepalive(id), RNDISRequest.reset()].randomElement(using: &rng) ?? []
            default: message = bytes(Int.random(in: 0...64, using: &rng), &rng)
            }
            if Int.random(in: 0..<4, using: &rng) == 0, !message.isEmpty {
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    message[Int.random(in: 0..<message.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            }
            blob += message
        }
        return blob
    }

    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func randomTrafficIsAnsweredExactlyOnce(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        var guest = GuestHarness(receivePageCount: 8)
        if seed % 2 == 0 { guest.linuxProbe() }
        var asked: Set<UInt64> = []
        var unasked: Set<UInt64> = []
        func track(_ packet: VMBusPacket) {
            if packet.completionRequested { asked.insert(packet.transactionID) } else { unasked.insert(packet.transactionID) }
        }
        for _ in 0..<3000 {
            guest.nextID += 1
            let id = guest.nextID
            let flags: UInt16 = Int.random(in: 0..<8, using: &rng) == 0 ? 0 : 1
            switch Int.random(in: 0..<12, using: &rng) {
            case 0...2:
                let type = Self.nvspTypes.randomElement(using: &rng) ?? 0
                let packet = VMBusPacket(type: .dataInBand, flags: flags, transactionID: id,
                                         payload: Array((u32Bytes([type]) + bytes(44, &rng)).prefix(Int.random(in: 0...48, using: &rng))))
                track(packet)
                guest.send(packet)
            case 3, 4:
                let blob = randomRNDIS(&rng)
                let index = UInt32.random(in: 0...11, using: &rng)
                guest.memory.write(GuestHarness.sendBase + UInt64(index) * 6144, blob)
                let size = Bool.random(using: &rng) ? UInt32(blob.count) : UInt32.random(in: 0...7000, using: &rng)
                let packet = inband([107, UInt32.random(in: 0...1, using: &rng), index, size], id: id, flags: flags)
                track(packet)
                guest.send(packet)
            case 5:
                let blob = randomRNDIS(&rng)
                let offset = Int.random(in: 0..<4096, using: &rng)
                guest.memory.write(GuestHarness.scratch + UInt64(offset), blob)
                let pages = (offset + max(1, blob.count) + 4095) / 4096
                let range = GPADirectBuffer.Range(byteCount: max(1, blob.count), byteOffset: offset,
                                                  pfns: (0..<pages).map { (GuestHarness.scratch >> 12) + UInt64($0) })
                let header = Bool.random(using: &rng) ? try GPADirectBuffer(ranges: [range]).encodedHeader() : bytes(Int.random(in: 0...40, using: &rng), &rng)
                let section = Bool.random(using: &rng) ? UInt32.random(in: 0...11, using: &rng) : 0xFFFF_FFFF
                let packet = VMBusPacket(type: .dataUsingGPADirect, flags: flags, transactionID: id, header: header,
                                         payload: nvsp([107, 1, section, UInt32.random(in: 0...200, using: &rng)]))
                track(packet)
                guest.send(packet)
            case 6:
                let packet = VMBusPacket(rawType: UInt16.random(in: 0...14, using: &rng), flags: flags, transactionID: id,
                                         dataOffset: [16, 24, 200].randomElement(using: &rng) ?? 16,
                                         bytes: [UInt8](repeating: 0, count: 16) + bytes(Int.random(in: 0...48, using: &rng), &rng))
                if packet.rawType != VMBusPacketType.completion.rawValue { track(packet) }
                guest.send(packet)
            case 7, 8:
                let frames = (0..<Int.random(in: 1...6, using: &rng)).map { _ in randomFrame(&rng) }
                if let delivery = guest.adapter.deliverFrames(frames).delivery { guest.accept(delivery) }
            case 9:
                guest.autoComplete = Bool.random(using: &rng)
                if Bool.random(using: &rng) { guest.completePending() } else { guest.complete(UInt64.random(in: 0...20_000, using: &rng)) }
            case 10:
                guest.run(guest.adapter.setLink(up: Bool.random(using: &rng)))
            default:
                guest.linuxProbe()
            }
        }
        guest.autoComplete = true
        guest.completePending()
        #expect(guest.adapter.outstandingDeliveries == 0)

        var counts: [UInt64: Int] = [:]
        for completion in guest.completions {
            #expect(completion.rawType == VMBusPacketType.completion.rawValue && completion.payload.count == 40)
            counts[completion.transactionID, default: 0] += 1
        }
        let fuzzed = asked.union(unasked)
        #expect(asked.allSatisfy { counts[$0] == 1 })
        #expect(unasked.allSatisfy { counts[$0] == nil })
        #expect(counts.keys.filter { fuzzed.contains($0) }.count == asked.count)
        // The random traffic reaches the deep paths: frames out, messages in.
        #expect(!guest.frames.isEmpty && guest.received.count > 100)
        #expect(guest.frames.allSatisfy { $0.count >= 14 && $0.count <= 1518 })
    }
}
