import Testing
import KeelIntegrationServices
import KeelVMBus

@Suite struct HostileReplyTests {
    func isDiagnostic(_ events: [ICEvent]) -> Bool {
        guard events.count == 1, case .diagnostic = events[0] else { return false }
        return true
    }

    /// A service with its negotiate request outstanding, and that request.
    func opened(_ kind: IntegrationServiceKind = .heartbeat) -> (IntegrationService, VMBusPacket) {
        var service = IntegrationService(kind: kind)
        let request = service.channelOpened(clock: clock(ms: 0))
        return (service, request[0])
    }

    func reply(to request: VMBusPacket, _ edit: (inout [UInt8]) -> Void) -> VMBusPacket {
        var p = LinuxGuest(.heartbeat).answer(request).payload
        edit(&p)
        return VMBusPacket(type: .dataInBand, transactionID: request.transactionID, payload: p)
    }

    @Test func countsZeroFailsNegotiation() {
        var (service, request) = opened()
        var guest = LinuxGuest(.heartbeat)
        guest.messagePreferences = [ICVersion(9, 9)]
        #expect(service.receive(guest.answer(request), clock: clock(ms: 0)).events == [.negotiationFailed])
        #expect(service.negotiated == nil)
        #expect(service.tick(clock: clock(ms: 10_000)) .packets.isEmpty)
        #expect(service.nextDeadline() == nil)
    }

    @Test(arguments: [(UInt64(65535), UInt64(65535)), (101, 1), (1, 101), (1, 5)])
    func badCounts(fw: UInt64, msg: UInt64) {
        var (service, request) = opened()
        let packet = reply(to: request) { put(&$0, 28, fw, size: 2); put(&$0, 30, msg, size: 2) }
        #expect(isDiagnostic(service.receive(packet, clock: clock(ms: 0)).events))
        #expect(service.negotiated == nil)
    }

    @Test func versionsNotOffered() {
        var (service, request) = opened()
        let packet = reply(to: request) { put(&$0, 40, 7, size: 2) }
        #expect(isDiagnostic(service.receive(packet, clock: clock(ms: 0)).events))
        #expect(service.negotiated == nil)
    }

    @Test func truncatedPackets() {
        var (service, request) = opened()
        for length in [0, 8, 20, 27] {
            let packet = VMBusPacket(type: .dataInBand, transactionID: request.transactionID,
                                     payload: Array(request.payload.prefix(length)))
            #expect(isDiagnostic(service.receive(packet, clock: clock(ms: 0)).events))
        }
        // Counts 1/1 but the versions cut off: consumed as malformed.
        let cut = Array(LinuxGuest(.heartbeat).answer(request).payload.prefix(32))
        let short = VMBusPacket(type: .dataInBand, transactionID: request.transactionID, payload: cut)
        #expect(isDiagnostic(service.receive(short, clock: clock(ms: 0)).events))
    }

    @Test func wrongTypeUnknownIDAndNotAResponse() {
        var (service, request) = opened()
        let wrongType = reply(to: request) { put(&$0, 12, 4, size: 2) }
        #expect(isDiagnostic(service.receive(wrongType, clock: clock(ms: 0)).events))
        let unknown = VMBusPacket(type: .dataInBand, transactionID: 999, payload: LinuxGuest(.heartbeat).answer(request).payload)
        #expect(isDiagnostic(service.receive(unknown, clock: clock(ms: 0)).events))
        let notResponse = reply(to: request) { $0[25] = 0x03 }
        #expect(isDiagnostic(service.receive(notResponse, clock: clock(ms: 0)).events))
        // The request is still outstanding: the real answer completes it.
        #expect(service.receive(LinuxGuest(.heartbeat).answer(request), clock: clock(ms: 0)).events
                == [.negotiated(framework: ICVersion(3, 0), message: ICVersion(3, 0))])
    }

    @Test func nonInBandPacketType() {
        var (service, request) = opened()
        let completion = VMBusPacket(type: .completion, transactionID: request.transactionID,
                                     payload: LinuxGuest(.heartbeat).answer(request).payload)
        #expect(isDiagnostic(service.receive(completion, clock: clock(ms: 0)).events))
        #expect(service.negotiated == nil)
    }

    @Test func shortHeartbeatReply() {
        var (service, packets) = negotiatedService(.heartbeat)
        var header = Array(LinuxGuest(.heartbeat).answer(packets[0]).payload.prefix(28))
        header[25] = 0x05
        let short = VMBusPacket(type: .dataInBand, transactionID: packets[0].transactionID, payload: header + [1, 2, 3, 4])
        #expect(isDiagnostic(service.receive(short, clock: clock(ms: 1)).events))
    }

    /// Random guest bytes against every service in every state: events only, never a trap.
    @Test func randomRepliesNeverTrap() {
        var rng = SplitMix(seed: 0x4B45454C)
        for kind in IntegrationServiceKind.allCases {
            var (service, packets) = negotiatedService(kind)
            packets += service.channelOpened(clock: clock(ms: 1))
            for i in 0..<2_000 {
                let base = packets.isEmpty ? [] : packets[Int(rng.next() % UInt64(packets.count))].payload
                var payload = Array(base.prefix(Int(rng.next() % 80)))
                for _ in 0..<(rng.next() % 6) where !payload.isEmpty {
                    payload[Int(rng.next() % UInt64(payload.count))] = UInt8(truncatingIfNeeded: rng.next())
                }
                if payload.count > 25, rng.next() % 2 == 0 { payload[25] = 0x05 }
                let id = rng.next() % 4 == 0 ? rng.next() : UInt64(1 + rng.next() % 4)
                let type: VMBusPacketType = rng.next() % 8 == 0 ? .completion : .dataInBand
                let result = service.receive(VMBusPacket(type: type, transactionID: id, payload: payload),
                                             clock: clock(ms: UInt64(i)))
                packets += result.packets
                _ = service.tick(clock: clock(ms: UInt64(i) * 10))
                _ = service.requestShutdown(.reboot)
            }
        }
    }
}

/// Deterministic generator for the fuzz test.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
