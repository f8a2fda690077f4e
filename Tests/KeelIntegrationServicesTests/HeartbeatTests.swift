import Testing
import KeelIntegrationServices
import KeelVMBus

@Suite struct HeartbeatTests {
    let guest = LinuxGuest(.heartbeat)

    @Test func sequenceRoundTripAndOneOutstanding() {
        var (service, packets) = negotiatedService(.heartbeat)
        #expect(packets.count == 1)
        var request = packets[0]
        #expect(messageType(request) == 1)
        #expect(le16(request.payload, 18) == 40)                  // u64 sequence + 32 reserved
        #expect(le32(request.payload, 4) == 20 + 40)               // pipe msgsize
        #expect(request.payload[25] == 0x03)
        #expect(le64(request.payload, 28) == 0)

        // Overdue but unanswered: nothing new is sent.
        #expect(service.tick(clock: clock(ms: 3_000)).packets.isEmpty)

        for expected in UInt64(0)..<4 {
            #expect(le64(request.payload, 28) == expected)
            let reply = service.receive(guest.answer(request), clock: clock(ms: 3_000 + expected * 2_000))
            #expect(reply.events == [.heartbeat(sequence: expected + 1)])
            #expect(reply.packets.isEmpty)
            let next = service.tick(clock: clock(ms: 5_000 + expected * 2_000))
            #expect(next.packets.count == 1 && next.events.isEmpty)
            #expect(next.packets[0].transactionID != request.transactionID)
            request = next.packets[0]
        }
    }

    @Test func waitsForTheInterval() {
        var (service, packets) = negotiatedService(.heartbeat)
        _ = service.receive(guest.answer(packets[0]), clock: clock(ms: 10))
        #expect(service.nextDeadline() == 2_000_000_000)
        #expect(service.tick(clock: clock(ms: 1_999)).packets.isEmpty)
        #expect(service.tick(clock: clock(ms: 2_000)).packets.count == 1)
        // Outstanding: the next deadline is the miss timeout.
        #expect(service.nextDeadline() == 8_000_000_000)
    }

    @Test func missedOncePerEpisode() {
        var (service, packets) = negotiatedService(.heartbeat)
        #expect(service.tick(clock: clock(ms: 5_999)).events.isEmpty)
        #expect(service.tick(clock: clock(ms: 6_000)).events == [.heartbeatMissed(outstandingFor: 6_000_000_000)])
        #expect(service.tick(clock: clock(ms: 9_000)) .events.isEmpty)
        #expect(service.nextDeadline() == nil)

        // A late answer ends the episode; the next heartbeat goes out and can miss again.
        #expect(service.receive(guest.answer(packets[0]), clock: clock(ms: 9_500)).events == [.heartbeat(sequence: 1)])
        let next = service.tick(clock: clock(ms: 10_000))
        #expect(next.packets.count == 1 && next.events.isEmpty)
        #expect(service.tick(clock: clock(ms: 16_000)).events == [.heartbeatMissed(outstandingFor: 6_000_000_000)])
        packets = next.packets
        #expect(service.receive(guest.answer(packets[0]), clock: clock(ms: 16_001)).events == [.heartbeat(sequence: 2)])
    }

    @Test func unexpectedSequenceIsReportedButCounts() {
        let (negotiated, packets) = negotiatedService(.heartbeat)
        var service = negotiated
        var reply = guest.answer(packets[0]).payload
        put(&reply, 28, 77, size: 8)
        let result = service.receive(VMBusPacket(type: .dataInBand, transactionID: packets[0].transactionID, payload: reply),
                                     clock: clock(ms: 1))
        #expect(result.events.first == .heartbeat(sequence: 77))
        #expect(result.events.count == 2)
    }

    @Test func clockGoingBackwardsDoesNotTrap() {
        let (negotiated, _) = negotiatedService(.heartbeat)
        var service = negotiated
        #expect(service.tick(clock: ICClock(monotonicNanoseconds: 0)).events.isEmpty)
        var far = IntegrationService(kind: .heartbeat, heartbeatIntervalNanoseconds: .max, heartbeatTimeoutNanoseconds: .max)
        let request = far.channelOpened(clock: ICClock(monotonicNanoseconds: .max))
        let result = far.receive(guest.answer(request[0]), clock: ICClock(monotonicNanoseconds: .max))
        #expect(result.packets.count == 1)
        #expect(far.tick(clock: ICClock(monotonicNanoseconds: .max)).packets.isEmpty)
    }
}
