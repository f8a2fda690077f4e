import KeelNetwork
import KeelVMBus
import Testing

@Suite struct LinkStateTests {
    @Test func linkStateBeforeRNDISInitializeIsOnlyRemembered() {
        var guest = GuestHarness()
        guest.nvspInit()
        #expect(guest.adapter.setLink(up: false).isEmpty)
        guest.control(RNDISRequest.initialize(1))
        let response = guest.control(RNDISRequest.query(2, RNDISOID.mediaConnectStatus))
        #expect(linuxQueryResult(response, maxSize: 4) == u32Bytes([1]))
    }

    @Test func linkChangesAreIndicated() {
        var guest = GuestHarness()
        guest.linuxProbe()
        guest.run(guest.adapter.setLink(up: false))
        #expect(guest.received.last?.message == u32Bytes([7, 20, RNDISStatus.mediaDisconnect, 0, 0]))
        #expect(guest.received.last?.channelType == 1)
        #expect(!guest.adapter.acceptsFrames)
        #expect(guest.adapter.deliverFrame(ethernetFrame()) == nil)
        #expect(guest.adapter.setLink(up: false).isEmpty)
        guest.run(guest.adapter.setLink(up: true))
        #expect(guest.received.last?.message == u32Bytes([7, 20, RNDISStatus.mediaConnect, 0, 0]))
        #expect(guest.adapter.acceptsFrames)
        #expect(guest.diagnostics.isEmpty)
    }

    @Test func configuredLinkDownStartsDisconnected() {
        var guest = GuestHarness(.init(macAddress: testMAC, linkUp: false))
        guest.linuxProbe()
        #expect(!guest.adapter.acceptsFrames)
        let response = guest.control(RNDISRequest.query(40, RNDISOID.mediaConnectStatus))
        #expect(linuxQueryResult(response, maxSize: 4) == u32Bytes([1]))
    }

    @Test func indicationWaitsForAFreeSection() throws {
        var guest = GuestHarness(receivePageCount: 1)
        guest.linuxProbe()
        guest.autoComplete = false
        guest.control(RNDISRequest.keepalive(50))
        guest.control(RNDISRequest.keepalive(51))
        let count = guest.received.count
        guest.run(guest.adapter.setLink(up: false))
        #expect(guest.received.count == count)
        guest.complete(try #require(guest.pendingDeliveries.first))
        #expect(guest.received.last?.message == u32Bytes([7, 20, RNDISStatus.mediaDisconnect, 0, 0]))
    }
}
