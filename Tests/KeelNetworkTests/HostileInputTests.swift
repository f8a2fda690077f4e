import KeelNetwork
@testable import KeelVMBus
import Testing

/// Malformed NVSP and RNDIS from a hostile guest: failure statuses and diagnostics, never a trap.
@Suite struct HostileInputTests {
    @Test func truncatedNVSPMessagesFail() throws {
        var guest = GuestHarness()
        for size in [0, 3] {
            let replyResult = guest.send(inband([1, 0x60001, 0x60001], size: size))
            let reply = try #require(replyResult)
            #expect(reply.payload.count == 40)
        }
        let initReplyResult = guest.send(inband([1, 0x60001, 0x60001], size: 8))
        let initReply = try #require(initReplyResult)
        #expect(Array(fields(initReply.payload).prefix(4)) == [2, 0, 34, NVSPStatus.failure])
        guest.nvspInit()
        let rndisResult = guest.send(inband([107, 0, 0, 60], size: 4))
        let rndis = try #require(rndisResult)
        #expect(Array(fields(rndis.payload).prefix(2)) == [108, NVSPStatus.failure])
        #expect(guest.diagnostics.map(\.kind) == [.malformedNVSP, .malformedNVSP, .malformedNVSP, .malformedNVSP])
        #expect(guest.adapter.negotiatedVersion == NVSPVersion.v61)
    }

    @Test func unknownNVSPAndPacketTypesFail() throws {
        var guest = GuestHarness()
        guest.nvspInit()
        for type: UInt32 in [0, 109, 131, 0xFFFF_FFFF] {
            #expect(status(guest.send(inband([type, 1, 2]))) == NVSPStatus.failure)
            #expect(guest.send(inband([type, 1, 2], flags: 0)) == nil)
        }
        for raw: UInt16 in [7, 12, 99] {
            let packet = VMBusPacket(rawType: raw, flags: 1, transactionID: 5, dataOffset: 16,
                                     bytes: [UInt8](repeating: 0, count: 16) + nvsp([107, 0, 0, 1]))
            #expect(status(guest.send(packet)) == NVSPStatus.failure)
        }
        let lying = VMBusPacket(rawType: 6, flags: 1, transactionID: 6, dataOffset: 400, bytes: [UInt8](repeating: 0, count: 56))
        #expect(guest.send(lying) != nil)
        let gpa = try GPADirectBuffer(ranges: [.init(byteCount: 64, byteOffset: 0, pfns: [0x900])])
        #expect(status(guest.send(gpa.packet(transactionID: 8, payload: nvsp([101, 1, 0xCAFE])))) == NVSPStatus.failure)
        let badCompletion = VMBusPacket(rawType: 11, flags: 1, transactionID: 9, dataOffset: 400,
                                        bytes: [UInt8](repeating: 0, count: 24))
        #expect(guest.send(badCompletion) == nil)
        #expect(guest.diagnostics.count == 4 * 2 + 3 + 1 + 1 + 1)
    }

    @Test func badSendSectionsFail() {
        var guest = readyGuest()
        #expect(status(guest.nvspRequest([107, 0, 10, 100])) == NVSPStatus.failure)
        #expect(status(guest.nvspRequest([107, 0, 0xFFFF_FFFE, 100])) == NVSPStatus.failure)
        #expect(status(guest.nvspRequest([107, 0, 9, 6145])) == NVSPStatus.failure)
        #expect(status(guest.nvspRequest([107, 0, 0xFFFF_FFFF, 100])) == NVSPStatus.failure)
        #expect(status(guest.nvspRequest([107, 0, 0, 0])) == NVSPStatus.failure)
        guest.nvspRequest([106, 0], flags: 0)
        #expect(status(guest.nvspRequest([107, 0, 0, 100])) == NVSPStatus.failure)
        #expect(guest.diagnostics.map(\.kind) == Array(repeating: .badSendRequest, count: 6))
        #expect(guest.frames.isEmpty)
    }

    @Test func badGPADirectRangesFail() throws {
        var guest = readyGuest()
        let broken = VMBusPacket(type: .dataUsingGPADirect, flags: 1, transactionID: 3,
                                 header: u32Bytes([0, 5, 100, 0]), payload: nvsp([107, 0, 0xFFFF_FFFF, 0]))
        #expect(status(guest.send(broken)) == NVSPStatus.failure)
        let huge = try GPADirectBuffer(ranges: [.init(byteCount: 20 * 4096, byteOffset: 0, pfns: (0..<20).map { 0x900 + $0 })])
        #expect(status(guest.send(huge.packet(transactionID: 4, payload: nvsp([107, 0, 0xFFFF_FFFF, 0])))) == NVSPStatus.failure)
        #expect(guest.diagnostics.map(\.kind) == [.badSendRequest, .badSendRequest])
    }

    @Test func unreadableRNDISBytesFail() throws {
        var adapter = readyGuest().adapter
        let actions = adapter.receive(inband([107, 0, 0, 64]))
        let transfer = try #require(actions.transfers.first)
        for bytes: [UInt8]? in [nil, [UInt8](repeating: 0, count: 63)] {
            let result = adapter.rndisMessage(bytes, for: transfer)
            #expect(result.sent.map { Array(fields($0.payload).prefix(2)) } == [[108, NVSPStatus.failure]])
            #expect(result.diagnostics.map(\.kind) == [.rndisReadFailed])
        }
    }

    @Test func lyingMessageLengthsFailAfterTheGoodMessages() {
        var guest = readyGuest()
        let good = ethernetFrame()
        for lie: UInt32 in [0, 7, 4096, 0xFFFF_FFFF] {
            var bad = RNDISRequest.packet(ethernetFrame(seed: 9))
            bad.replaceSubrange(4..<8, with: u32Bytes([lie]))
            #expect(status(guest.sendSection(0, RNDISRequest.packet(good, align: 8) + bad)) == NVSPStatus.invalidRNDISPacket)
        }
        #expect(guest.frames == Array(repeating: good, count: 4))
        #expect(status(guest.sendSection(0, [1, 0, 0, 0, 8])) == NVSPStatus.invalidRNDISPacket)
        #expect(guest.diagnostics.map(\.kind) == Array(repeating: .malformedRNDIS, count: 5))
    }

    @Test func dataOutsideTheMessageFails() {
        var guest = readyGuest()
        let edits: [(Int, UInt32)] = [(8, 1000), (8, 0xFFFF_FFF0), (8, 20), (12, 0xFFFF_FFFF), (12, 61), (12, 13),
                                      (20, 0xFFFF_FFFF), (32, 8), (32, 0x7FFF_FFFF)]
        for (offset, value) in edits {
            var message = RNDISRequest.packet(ethernetFrame(length: 60))
            message.replaceSubrange(offset..<offset + 4, with: u32Bytes([value]))
            #expect(status(guest.sendSection(1, message)) == NVSPStatus.invalidRNDISPacket, "field \(offset) = \(value)")
        }
        #expect(guest.frames.isEmpty)
        #expect(guest.diagnostics.count == edits.count)
    }

    @Test func lyingPPIsFail() {
        var guest = readyGuest()
        let ppis: [[UInt8]] = [u32Bytes([0, 6, 12, 1]), u32Bytes([8, 6, 12]), u32Bytes([32, 6, 12, 1]),
                               u32Bytes([16, 6, 17, 1]), u32Bytes([16, 6, 4, 1]), u32Bytes([16, 6, 12, 1]) + [1, 2, 3, 4]]
        for ppi in ppis {
            #expect(status(guest.sendSection(2, RNDISRequest.packet(ethernetFrame(), ppis: ppi))) == NVSPStatus.invalidRNDISPacket)
        }
        var outside = RNDISRequest.packet(ethernetFrame(), ppis: RNDISRequest.ppi(type: 6, value: 1))
        outside.replaceSubrange(32..<36, with: u32Bytes([0x1000]))
        #expect(status(guest.sendSection(2, outside)) == NVSPStatus.invalidRNDISPacket)
        #expect(guest.frames.isEmpty)
        #expect(guest.diagnostics.allSatisfy { $0.kind == .malformedRNDIS })
    }

    @Test func malformedControlRequestsGetErrorStatuses() {
        var guest = readyGuest()
        let count = guest.received.count
        #expect(status(guest.sendGPA(u32Bytes([4, 8]), channelType: 1)) == NVSPStatus.invalidRNDISPacket)
        #expect(status(guest.sendGPA(u32Bytes([0x8000_0004, 12, 1]), channelType: 1)) == NVSPStatus.invalidRNDISPacket)
        #expect(status(guest.sendGPA(u32Bytes([7, 20, RNDISStatus.mediaConnect, 0, 0]), channelType: 1)) == NVSPStatus.invalidRNDISPacket)
        #expect(guest.received.count == count)
        let short = guest.control(u32Bytes([4, 20, 60, RNDISOID.permanentAddress, 0]))
        #expect(short == u32Bytes([0x8000_0004, 24, 60, RNDISStatus.invalidData, 0, 16]))
        let outside = guest.control(u32Bytes([5, 32, 61, RNDISOID.currentPacketFilter, 4, 0x1000, 0, 0x0D]))
        #expect(outside == u32Bytes([0x8000_0005, 16, 61, RNDISStatus.invalidData]))
        let inHeader = guest.control(u32Bytes([5, 32, 62, RNDISOID.currentPacketFilter, 4, 4, 0, 0x0D]))
        #expect(inHeader == u32Bytes([0x8000_0005, 16, 62, RNDISStatus.invalidData]))
        #expect(guest.adapter.packetFilter == 0x0D)
        let badInit = guest.control(u32Bytes([2, 24, 63, 2, 0, 0x4000]))
        #expect(badInit.map { le32($0, 12) } == RNDISStatus.notSupported)
    }
}
