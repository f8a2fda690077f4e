import Testing
import KeelIntegrationServices
import KeelVMBus

@Suite struct TimeSyncTests {
    @Test func syncThenSampleCadenceV4() {
        var (service, packets) = negotiatedService(.timeSync)
        let guest = LinuxGuest(.timeSync)
        #expect(packets.count == 1)
        var p = packets[0].payload
        let c0 = clock(ms: 0)
        #expect(messageType(packets[0]) == 4 && Array(p[14..<18]) == [4, 0, 0, 0])
        #expect(le16(p, 18) == 24)
        #expect(le64(p, 28) == c0.hostUTC100ns)
        #expect(le64(p, 36) == c0.referenceTime100ns)
        #expect(p[44] == 1)                                  // SYNC
        #expect(p[45...51].allSatisfy { $0 == 0 })

        // One outstanding: nothing until the guest answers.
        #expect(service.tick(clock: clock(ms: 6_000)).packets.isEmpty)
        #expect(service.receive(guest.answer(packets[0]), clock: clock(ms: 6_000)).events == [.timeSynchronized(sync: true)])

        // Overdue (5 s after the SYNC): the first SAMPLE goes out at once, the next 5 s later.
        var sent: [UInt64] = []
        for ms in stride(from: UInt64(6_000), through: 21_000, by: 500) {
            let out = service.tick(clock: clock(ms: ms))
            for packet in out.packets {
                sent.append(ms)
                p = packet.payload
                #expect(p[44] == 2)                          // SAMPLE
                #expect(le64(p, 28) == clock(ms: ms).hostUTC100ns)
                #expect(le64(p, 36) == clock(ms: ms).referenceTime100ns)
                #expect(service.receive(guest.answer(packet), clock: clock(ms: ms)).events == [.timeSynchronized(sync: false)])
            }
        }
        #expect(sent == [6_000, 11_000, 16_000, 21_000])
        #expect(service.nextDeadline() == 26_000_000_000)
    }

    @Test func v3BodyWhenTheGuestPicks30() {
        var guest = LinuxGuest(.timeSync)
        guest.messagePreferences = [ICVersion(3, 0), ICVersion(1, 0)]   // an older kernel
        let (service, packets) = negotiatedService(.timeSync, guest: guest)
        #expect(service.negotiated?.message == ICVersion(3, 0))
        let p = packets[0].payload
        #expect(Array(p[14..<18]) == [3, 0, 0, 0])
        #expect(le16(p, 18) == 28)
        #expect(le64(p, 28) == clock(ms: 0).hostUTC100ns)
        #expect(le64(p, 36) == 0 && le64(p, 44) == 0)        // child time, round trip
        #expect(p[52] == 1)
        #expect(p[53...55].allSatisfy { $0 == 0 })
    }

    @Test func refusedSampleIsDiagnosedAndCadenceContinues() {
        var (service, packets) = negotiatedService(.timeSync)
        let reply = service.receive(LinuxGuest(.timeSync).answer(packets[0], status: 0x8000_4005), clock: clock(ms: 1))
        if case .diagnostic = reply.events.first {} else { Issue.record("expected a diagnostic") }
        packets = service.tick(clock: clock(ms: 5_000)).packets
        #expect(packets.count == 1 && packets[0].payload[44] == 2)
    }
}
