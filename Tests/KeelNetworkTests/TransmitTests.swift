import KeelNetwork
import KeelSystem
import KeelVMBus
import Testing

@Suite struct TransmitTests {
    @Test func batchedSectionWithTwoPacketsGivesTwoFrames() throws {
        var guest = readyGuest()
        let first = ethernetFrame(length: 60, seed: 1), second = ethernetFrame(to: broadcastMAC, length: 342, seed: 7)
        let section = RNDISRequest.packet(first, align: 8) + RNDISRequest.packet(second)
        let completionResult = guest.sendSection(3, section)
        let completion = try #require(completionResult)
        #expect(completion.rawType == VMBusPacketType.completion.rawValue)
        #expect(Array(fields(completion.payload).prefix(2)) == [108, NVSPStatus.success])
        #expect(guest.frames == [first, second])
        #expect(guest.diagnostics.isEmpty)
    }

    @Test func gpaDirectTransmitAcrossAPageBoundary() {
        var guest = readyGuest()
        let frame = ethernetFrame(length: 1514, seed: 3)
        let completion = guest.sendGPA(RNDISRequest.packet(frame), pageOffset: 4000)
        #expect(status(completion) == NVSPStatus.success)
        #expect(guest.frames == [frame])
    }

    @Test func partialCopyReadsSectionThenPages() throws {
        var guest = readyGuest()
        let earlier = ethernetFrame(length: 98, seed: 5), frame = ethernetFrame(length: 1200, seed: 9)
        let section = RNDISRequest.packet(earlier, align: 8) + Array(RNDISRequest.packet(frame).prefix(44))
        guest.memory.write(GuestHarness.sendBase + 2 * 6144, section)
        let completion = guest.sendGPA(frame, section: (2, UInt32(section.count)))
        #expect(status(completion) == NVSPStatus.success)
        #expect(guest.frames == [earlier, frame])
    }

    @Test func transferDescribesBothParts() throws {
        var adapter = GuestHarness().adapter
        _ = adapter.receive(inband([1, NVSPVersion.v61, NVSPVersion.v61]))
        _ = adapter.receive(bufferRequest(104, gpadl: 2, id: 0))
        _ = adapter.attachSendBuffer(pages: (0..<16).map { 0x40_0000 + UInt64($0) * 4096 })
        let gpa = try GPADirectBuffer(ranges: [.init(byteCount: 100, byteOffset: 8, pfns: [0x900])])
        let actions = adapter.receive(gpa.packet(transactionID: 42, payload: nvsp([107, 0, 1, 6144])))
        let transfer = try #require(actions.transfers.first)
        #expect(transfer.sectionIndex == 1)
        #expect(transfer.sendBufferRange == 6144..<12288)
        #expect(transfer.gpaBuffer == gpa)
        #expect(transfer.length == 6244)
        #expect(transfer.segments == [GuestSegment(address: 0x40_0000 + 6144, length: 6144),
                                      GuestSegment(address: 0x90_0008, length: 100)])
    }

    @Test func vlanPPIInsertsTheTag() {
        var guest = readyGuest()
        let frame = ethernetFrame(length: 100)
        let ppi = RNDISRequest.ppi(type: 6, value: 5 | 100 << 4)
        guest.sendSection(0, RNDISRequest.packet(frame, ppis: ppi))
        #expect(guest.frames == [Array(frame[0..<12]) + [0x81, 0x00, 0xA0, 0x64] + Array(frame[12...])])
    }

    @Test func hashPPIIsIgnored() {
        var guest = readyGuest()
        let frame = ethernetFrame(length: 300)
        let completion = guest.sendSection(1, RNDISRequest.packet(frame, ppis: RNDISRequest.ppi(type: 8, value: 0x1234_5678), align: 8))
        #expect(status(completion) == NVSPStatus.success)
        #expect(guest.frames == [frame])
        #expect(guest.transmitHeaders == [VirtioNetHeader()])
    }

    @Test func largestFrameIsAcceptedAndOneMoreIsNot() {
        var guest = readyGuest()
        let largest = ethernetFrame(length: 1514), oversized = ethernetFrame(length: 1515)
        #expect(status(guest.sendSection(0, RNDISRequest.packet(largest))) == NVSPStatus.success)
        #expect(status(guest.sendSection(1, RNDISRequest.packet(oversized))) == NVSPStatus.invalidRNDISPacket)
        #expect(guest.frames == [largest])
        #expect(guest.diagnostics.map(\.kind) == [.droppedFrame])
    }

    @Test func linkDownDropsFramesSilently() {
        var guest = readyGuest()
        guest.run(guest.adapter.setLink(up: false))
        let completion = guest.sendSection(0, RNDISRequest.packet(ethernetFrame()))
        #expect(status(completion) == NVSPStatus.success)
        #expect(guest.frames.isEmpty)
    }

    @Test func packetsBeforeRNDISInitializeFail() {
        var guest = GuestHarness()
        guest.nvspInit()
        let completion = guest.sendSection(0, RNDISRequest.packet(ethernetFrame()))
        #expect(status(completion) == NVSPStatus.invalidRNDISPacket)
        #expect(guest.frames.isEmpty)
        #expect(guest.diagnostics.map(\.kind) == [.droppedFrame])
    }
}
