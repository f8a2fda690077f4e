import Testing
import KeelIntegrationServices
import KeelVMBus

@Suite struct ShutdownTests {
    @Test func nilBeforeNegotiationOrOnOtherServices() {
        var service = IntegrationService(kind: .shutdown)
        #expect(service.requestShutdown(.powerOff) == nil)
        _ = service.channelOpened(clock: clock(ms: 0))
        #expect(service.requestShutdown(.powerOff) == nil)      // negotiate still outstanding
        var (heartbeat, _) = negotiatedService(.heartbeat)
        #expect(heartbeat.requestShutdown(.powerOff) == nil)
    }

    @Test func fullSizePowerOffRequest() throws {
        var (service, _) = negotiatedService(.shutdown)
        let packetRequest = service.requestShutdown(.powerOff)
        let packet = try #require(packetRequest)
        let p = packet.payload
        #expect(p.count == 28 + 2060)
        #expect(packet.bytes.count < 4096)
        #expect(le32(p, 0) == 1 && le32(p, 4) == 20 + 2060)
        #expect(messageType(packet) == 3)
        #expect(Array(p[8..<12]) == [3, 0, 0, 0] && Array(p[14..<18]) == [3, 0, 2, 0])
        #expect(le16(p, 18) == 2060 && p[25] == 0x03)
        #expect(le32(p, 28) == 0x8000_0000)     // planned
        #expect(le32(p, 32) == 0)               // timeout
        #expect(le32(p, 36) == 0)               // flags: power off
        #expect(p[40...].allSatisfy { $0 == 0 })
    }

    @Test(arguments: [(ShutdownKind.powerOff, false, UInt32(0)), (.powerOff, true, 1), (.reboot, false, 2), (.reboot, true, 3)])
    func flags(kind: ShutdownKind, force: Bool, expected: UInt32) throws {
        var (service, _) = negotiatedService(.shutdown)
        let packetRequest = service.requestShutdown(kind, force: force)
        let packet = try #require(packetRequest)
        #expect(le32(packet.payload, 36) == expected)
    }

    @Test func guestAnswers() throws {
        var (service, _) = negotiatedService(.shutdown)
        let guest = LinuxGuest(.shutdown)
        let rebootRequest = service.requestShutdown(.reboot)
        let reboot = try #require(rebootRequest)
        let powerOffRequest = service.requestShutdown(.powerOff)
        let powerOff = try #require(powerOffRequest)
        #expect(service.receive(guest.answer(powerOff, status: 0x8000_4005), clock: clock(ms: 1)).events
                == [.shutdownRefused(status: 0x8000_4005)])
        #expect(service.receive(guest.answer(reboot), clock: clock(ms: 2)).events == [.shutdownAccepted(.reboot)])
        #expect(service.tick(clock: clock(ms: 60_000)).packets.isEmpty)
        #expect(service.nextDeadline() == nil)
    }

    @Test func unansweredRequestsAreBounded() throws {
        var (service, _) = negotiatedService(.shutdown)
        let firstRequest = service.requestShutdown(.powerOff)
        let first = try #require(firstRequest)
        for _ in 0..<20 { #expect(service.requestShutdown(.powerOff) != nil) }
        // The oldest requests were forgotten; their answers are now unknown.
        let late = service.receive(LinuxGuest(.shutdown).answer(first), clock: clock(ms: 1))
        if case .diagnostic = late.events.first {} else { Issue.record("expected a diagnostic") }
    }
}
