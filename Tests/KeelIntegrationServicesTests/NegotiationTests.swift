import Testing
import KeelIntegrationServices
import KeelVMBus

@Suite struct NegotiationTests {
    /// hyperv-platform.md §6.6 shape, with the two-version lists the host really offers.
    @Test func firstHeartbeatNegotiatePacketIsByteExact() {
        var service = IntegrationService(kind: .heartbeat)
        let packets = service.channelOpened(clock: clock(ms: 0))
        #expect(packets.count == 1)
        let packet = packets[0]
        let expectedPayload: [UInt8] = [
            1, 0, 0, 0, 44, 0, 0, 0,        // pipe header: data, 44 bytes follow
            3, 0, 0, 0,                     // framework 3.0
            0, 0,                           // type 0 = negotiate
            3, 0, 0, 0,                     // message 3.0
            24, 0,                          // body size 8 + 4 × 4
            0, 0, 0, 0,                     // status
            0, 0x03, 0, 0,                  // IC txid 0, TRANSACTION|REQUEST, reserved
            2, 0, 2, 0, 0, 0, 0, 0,         // counts 2/2, reserved
            1, 0, 0, 0, 3, 0, 0, 0,         // framework 1.0, 3.0
            1, 0, 0, 0, 3, 0, 0, 0,         // message 1.0, 3.0
            0, 0, 0, 0,                     // padding to 8 bytes
        ]
        #expect(packet.payload == expectedPayload)
        #expect(packet.type == .dataInBand)
        #expect(packet.flags == 0)
        #expect(packet.dataOffset == 16)
        #expect(Array(packet.bytes.prefix(8)) == [6, 0, 2, 0, 9, 0, 0, 0])
        #expect(packet.bytes.count == 72)
    }

    @Test(arguments: [
        (IntegrationServiceKind.heartbeat, ICVersion(3, 0)),
        (.shutdown, ICVersion(3, 2)),
        (.timeSync, ICVersion(4, 0)),
    ])
    func linuxGuestNegotiates(kind: IntegrationServiceKind, message: ICVersion) {
        var service = IntegrationService(kind: kind)
        let request = service.channelOpened(clock: clock(ms: 0))
        let result = service.receive(LinuxGuest(kind).answer(request[0]), clock: clock(ms: 0))
        #expect(result.events == [.negotiated(framework: ICVersion(3, 0), message: message)])
        #expect(service.negotiated == ICNegotiatedVersions(framework: ICVersion(3, 0), message: message))
        // Heartbeat and time sync start right away; shutdown waits for a request.
        #expect(result.packets.count == (kind == .shutdown ? 0 : 1))
        for packet in result.packets {
            #expect(messageType(packet) == (kind == .heartbeat ? 1 : 4))
            #expect(le16(packet.payload, 8) == 3 && le16(packet.payload, 14) == message.major)
            #expect(le16(packet.payload, 16) == message.minor)
        }
    }

    @Test func olderGuestVersionsAreUsedInLaterHeaders() {
        var guest = LinuxGuest(.heartbeat)
        guest.frameworkPreferences = [ICVersion(1, 0)]
        guest.messagePreferences = [ICVersion(1, 0)]
        let (service, packets) = negotiatedService(.heartbeat, guest: guest)
        #expect(service.negotiated == ICNegotiatedVersions(framework: ICVersion(1, 0), message: ICVersion(1, 0)))
        #expect(Array(packets[0].payload[8..<12]) == [1, 0, 0, 0])
        #expect(Array(packets[0].payload[14..<18]) == [1, 0, 0, 0])
    }

    @Test func restrictedOfferNegotiatesTimeSync30() {
        var service = IntegrationService(kind: .timeSync, messageVersions: [ICVersion(3, 0)])
        let request = service.channelOpened(clock: clock(ms: 0))
        #expect(le16(request[0].payload, 30) == 1)
        let result = service.receive(LinuxGuest(.timeSync).answer(request[0]), clock: clock(ms: 0))
        #expect(result.events == [.negotiated(framework: ICVersion(3, 0), message: ICVersion(3, 0))])
    }

    @Test func reopenResetsAndRenegotiates() {
        let (negotiated, first) = negotiatedService(.heartbeat)
        var service = negotiated
        let again = service.channelOpened(clock: clock(ms: 100))
        #expect(service.negotiated == nil)
        #expect(again.count == 1 && messageType(again[0]) == 0)
        #expect(again[0].transactionID != first[0].transactionID)
        // The heartbeat sent before the reopen no longer matches anything.
        let stale = service.receive(LinuxGuest(.heartbeat).answer(first[0]), clock: clock(ms: 100))
        #expect(stale.events.count == 1)
        if case .diagnostic = stale.events.first {} else { Issue.record("expected a diagnostic") }
        #expect(service.tick(clock: clock(ms: 10_000)).packets.isEmpty)
    }

    @Test func offersAndNames() {
        #expect(IntegrationServiceKind.shutdown.offer.instanceID == VMBusGUID("b6650ff7-33bc-4840-8048-e0676786f393"))
        #expect(IntegrationServiceKind.timeSync.offer.instanceID == VMBusGUID("2dd1ce17-079e-403c-b352-a1921ee207ee"))
        #expect(IntegrationServiceKind.heartbeat.offer.classID == VMBusDeviceClass.heartbeat)
        #expect(IntegrationServiceKind.heartbeat.offer.flags == 0x0011)
        #expect(Set(IntegrationServiceKind.allCases.map(\.offer.instanceID)).count == 3)
        #expect(IntegrationServiceKind.allCases.map(\.name) == ["heartbeat", "shutdown", "timesync"])
        #expect(ICVersion(3, 2).description == "3.2" && ICVersion(3, 1) < ICVersion(4, 0))
    }
}
