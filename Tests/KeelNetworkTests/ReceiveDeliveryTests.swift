import KeelNetwork
import KeelVMBus
import Testing

@Suite struct ReceiveDeliveryTests {
    /// Probed and up, with a 4-page receive buffer: 9 sections of 1792 bytes, 1 kept for control.
    func smallGuest() -> GuestHarness {
        var guest = GuestHarness(receivePageCount: 4)
        guest.linuxProbe()
        guest.autoComplete = false
        return guest
    }

    @Test func deliveredFrameLayout() throws {
        var guest = GuestHarness()
        guest.linuxProbe()
        let frame = ethernetFrame(length: 61)
        let deliveryResult = guest.adapter.deliverFrame(frame)
        let delivery = try #require(deliveryResult)
        let region = try #require(delivery.regions.first)
        #expect(delivery.regions.count == 1)
        #expect(region.offset % 1792 == 0)
        #expect(region.bytes == u32Bytes([1, 112, 36, 61, 0, 0, 0, 0, 0, 0, 0]) + frame + [UInt8](repeating: 0, count: 7))
        let packet = delivery.packet
        #expect(packet.transactionID == delivery.transactionID && packet.completionRequested)
        #expect(packet.dataOffset == 32)
        #expect(packet.header == [0xFE, 0xCA, 0, 0, 1, 0, 0, 0] + u32Bytes([112, UInt32(region.offset)]))
        #expect(Array(fields(packet.payload).prefix(4)) == [107, 0, 0xFFFF_FFFF, 0])
        #expect(delivery.guestWrites().flatMap(\.bytes) == region.bytes)
        #expect(delivery.guestWrites().first?.address == GuestHarness.receiveBase + UInt64(region.offset))
        guest.accept(delivery)
        let messageResult = guest.received.last?.message
        let message = try #require(messageResult)
        #expect(Array(message[(8 + Int(le32(message, 8)))...].prefix(Int(le32(message, 12)))) == frame)
        #expect(guest.adapter.outstandingDeliveries == 0)
    }

    @Test func allocationFillsUpAndCompletionsFreeIt() throws {
        var guest = smallGuest()
        #expect(guest.adapter.receiveBufferLayout?.sectionCount == 9)
        #expect(guest.adapter.freeDataSections == 8)
        var ids: [UInt64] = []
        for seed in 0..<8 {
            let deliveryResult = guest.adapter.deliverFrame(ethernetFrame(seed: UInt8(seed)))
            let delivery = try #require(deliveryResult)
            ids.append(delivery.transactionID)
        }
        #expect(Set(ids).count == 8)
        #expect(guest.adapter.deliverFrame(ethernetFrame()) == nil)
        #expect(guest.adapter.acceptsFrames && guest.adapter.freeDataSections == 0)
        guest.complete(ids[3])
        #expect(guest.adapter.freeDataSections == 1)
        #expect(guest.adapter.deliverFrame(ethernetFrame()) != nil)
        guest.complete(ids[3])
        #expect(guest.diagnostics.map(\.kind) == [.unknownCompletion])
    }

    @Test func controlResponsesUseTheReserveAndThenWait() throws {
        var guest = smallGuest()
        while guest.adapter.deliverFrame(ethernetFrame()) != nil {}
        // The reserved section carries this response...
        let completion = guest.sendGPA(RNDISRequest.query(40, RNDISOID.linkSpeed), channelType: 1)
        #expect(completion.map { le32($0.payload, 4) } == NVSPStatus.success)
        #expect(guest.received.last.map { le32($0.message, 8) } == 40)
        // ...the next one waits for a free section, and goes out on the next guest completion.
        let count = guest.received.count
        guest.sendGPA(RNDISRequest.keepalive(41), channelType: 1)
        #expect(guest.received.count == count)
        guest.complete(try #require(guest.pendingDeliveries.first))
        #expect(guest.received.count == count + 1)
        #expect(guest.received.last.map { le32($0.message, 8) } == 41)
    }

    @Test func batchedDeliveryUsesOneRangePerFrame() throws {
        var guest = GuestHarness()
        guest.linuxProbe()
        let frames = (0..<5).map { ethernetFrame(to: $0 == 2 ? [2, 2, 2, 2, 2, 2] : testMAC, length: 60 + $0, seed: UInt8($0)) }
        let (delivery, consumed) = guest.adapter.deliverFrames(frames)
        let batch = try #require(delivery)
        #expect(consumed == 5)
        #expect(batch.regions.count == 4)
        #expect(Set(batch.regions.map(\.offset)).count == 4)
        #expect(le32(batch.packet.header, 4) == 4)
        let before = guest.received.count
        guest.accept(batch)
        #expect(guest.received.count == before + 4)
        #expect(guest.adapter.outstandingDeliveries == 0)
    }

    @Test func batchStopsWhenTheBufferIsFull() {
        var guest = smallGuest()
        let frames = (0..<20).map { ethernetFrame(seed: UInt8($0)) }
        let first = guest.adapter.deliverFrames(frames)
        #expect(first.consumed == 8 && first.delivery?.regions.count == 8)
        let second = guest.adapter.deliverFrames(Array(frames[8...]))
        #expect(second.consumed == 0 && second.delivery == nil)
    }

    @Test func packetFilterDecidesWhatIsDelivered() {
        var guest = GuestHarness()
        guest.linuxProbe()
        let own = ethernetFrame(), other = ethernetFrame(to: [2, 0, 0, 0, 0, 1])
        let broadcast = ethernetFrame(to: broadcastMAC), multicast = ethernetFrame(to: [0x01, 0x00, 0x5E, 0, 0, 1])
        func delivered(_ frame: [UInt8]) -> Bool {
            guard let delivery = guest.adapter.deliverFrame(frame) else { return false }
            guest.accept(delivery)
            return true
        }
        #expect([own, other, broadcast, multicast].map(delivered) == [true, false, true, true])
        guest.control(RNDISRequest.set(30, RNDISOID.currentPacketFilter, u32Bytes([NDISPacketFilter.directed])))
        #expect([own, other, broadcast, multicast].map(delivered) == [true, false, false, false])
        guest.control(RNDISRequest.set(31, RNDISOID.currentPacketFilter, u32Bytes([NDISPacketFilter.promiscuous])))
        #expect([own, other, broadcast, multicast].map(delivered) == [true, true, true, true])
        guest.control(RNDISRequest.set(32, RNDISOID.currentPacketFilter, u32Bytes([0])))
        #expect([own, other, broadcast, multicast].map(delivered) == [false, false, false, false])
    }

    @Test func badSizesAreNotDelivered() {
        var guest = GuestHarness()
        guest.linuxProbe()
        #expect(guest.adapter.deliverFrame(Array(ethernetFrame().prefix(13))) == nil)
        #expect(guest.adapter.deliverFrame(ethernetFrame(length: 1515)) == nil)
        var tagged = ethernetFrame(length: 1518)
        tagged[12] = 0x81
        tagged[13] = 0x00
        #expect(guest.adapter.deliverFrame(tagged) != nil)
    }

    @Test func nothingIsDeliveredBeforeTheGuestIsReady() {
        var guest = GuestHarness()
        #expect(guest.adapter.deliverFrame(ethernetFrame()) == nil)
        guest.nvspInit()
        guest.control(RNDISRequest.initialize(1))
        #expect(!guest.adapter.acceptsFrames)
        #expect(guest.adapter.deliverFrames([ethernetFrame()]).consumed == 1)
    }

    @Test func abandonedDeliveryFreesItsSections() throws {
        var guest = smallGuest()
        let deliveryResult = guest.adapter.deliverFrame(ethernetFrame())
        let delivery = try #require(deliveryResult)
        #expect(guest.adapter.freeDataSections == 7)
        #expect(guest.adapter.abandon(delivery).isEmpty)
        #expect(guest.adapter.freeDataSections == 8)
        #expect(guest.adapter.abandon(delivery).isEmpty)
    }

    @Test func guestFailureStatusIsLoggedAndFreesTheSections() throws {
        var guest = smallGuest()
        let deliveryResult = guest.adapter.deliverFrame(ethernetFrame())
        let delivery = try #require(deliveryResult)
        guest.complete(delivery.transactionID, status: NVSPStatus.failure)
        #expect(guest.diagnostics.map(\.kind) == [.receiveFailed])
        #expect(guest.adapter.freeDataSections == 8)
    }
}
