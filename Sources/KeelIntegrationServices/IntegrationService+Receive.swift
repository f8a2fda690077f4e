import KeelVMBus

extension IntegrationService {
    /// A packet from the guest→host ring. Matches the reply to a pending request by VMBus
    /// transaction id and IC message type; anything malformed or unexpected becomes `.diagnostic`.
    public mutating func receive(_ packet: VMBusPacket, clock: ICClock) -> (packets: [VMBusPacket], events: [ICEvent]) {
        let prefix = "\(kind.name): "
        guard packet.type == .dataInBand else {
            return ([], [.diagnostic(prefix + "ignored packet of type \(packet.rawType)")])
        }
        let r = ICReader(packet.payload)
        guard let header = ICHeader(r) else {
            return ([], [.diagnostic(prefix + "truncated IC packet (\(r.count) bytes)")])
        }
        guard header.flags & ICFlags.response != 0 else {
            return ([], [.diagnostic(prefix + "unsolicited guest message type \(header.messageType) flags \(header.flags)")])
        }
        guard let index = pending.firstIndex(where: { $0.transactionID == packet.transactionID }) else {
            return ([], [.diagnostic(prefix + "reply with unknown transaction id \(packet.transactionID)")])
        }
        let request = pending[index]
        guard request.messageType == header.messageType else {
            return ([], [.diagnostic(prefix + "reply type \(header.messageType) to a type \(request.messageType) request")])
        }
        pending.remove(at: index)

        switch request.purpose {
        case .negotiate:
            return negotiationReply(r, clock: clock, prefix: prefix)
        case .heartbeat(let sent):
            guard header.status == 0 else {
                return ([], [.diagnostic(prefix + "heartbeat failed, status \(hex(header.status))")])
            }
            guard let returned = r.u64(ICHeader.size) else {
                return ([], [.diagnostic(prefix + "heartbeat reply without a sequence number")])
            }
            heartbeatMissReported = false
            var events: [ICEvent] = [.heartbeat(sequence: returned)]
            if returned != sent &+ 1 {
                events.append(.diagnostic(prefix + "heartbeat returned \(returned), expected \(sent &+ 1)"))
            }
            return ([], events)
        case .timeSync(let sync):
            guard header.status == 0 else {
                return ([], [.diagnostic(prefix + "time sample refused, status \(hex(header.status))")])
            }
            return ([], [.timeSynchronized(sync: sync)])
        case .shutdown(let shutdownKind):
            return ([], [header.status == 0 ? .shutdownAccepted(shutdownKind) : .shutdownRefused(status: header.status)])
        }
    }

    private mutating func negotiationReply(_ r: ICReader, clock: ICClock, prefix: String)
        -> (packets: [VMBusPacket], events: [ICEvent]) {
        switch parseNegotiateReply(r) {
        case .noCommonVersion:
            return ([], [.negotiationFailed])
        case .malformed(let reason):
            return ([], [.diagnostic(prefix + reason)])
        case .chosen(let versions):
            guard IntegrationServiceKind.frameworkVersions.contains(versions.framework),
                  messageVersions.contains(versions.message) else {
                return ([], [.diagnostic(prefix + "guest chose versions not offered: framework \(versions.framework), message \(versions.message)")])
            }
            negotiated = versions
            nextHeartbeatAt = clock.monotonicNanoseconds
            nextTimeSyncAt = clock.monotonicNanoseconds
            let event = ICEvent.negotiated(framework: versions.framework, message: versions.message)
            return (periodicRequests(clock: clock), [event])
        }
    }

    private func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
}

extension IntegrationService {
    /// Heartbeat body: sequence number + 32 reserved bytes (Linux declares 8 × u32).
    func heartbeatBody(sequence: UInt64) -> [UInt8] {
        var w = ICWriter(capacity: 40)
        w.u64(sequence)
        w.zeros(32)
        return w.bytes
    }

    /// Shutdown body, always the full 2060 bytes (Linux drops shorter requests): planned reason,
    /// timeout 0, flags bit0 force / bit1 restart, empty 2048-byte message.
    func shutdownBody(_ shutdownKind: ShutdownKind, force: Bool) -> [UInt8] {
        var w = ICWriter(capacity: 2060)
        w.u32(0x8000_0000)
        w.u32(0)
        w.u32((force ? 1 : 0) | (shutdownKind == .reboot ? 2 : 0))
        w.zeros(2048)
        return w.bytes
    }

    /// Time sync body. v4: parent time, reference time, flags, leap, stratum, padding to 24 bytes.
    /// v1/v3: parent time, child time 0, round trip 0, flags, 3 reserved (28 bytes).
    func timeSyncBody(clock: ICClock, sync: Bool) -> [UInt8] {
        let flags: UInt8 = sync ? 1 : 2
        var w = ICWriter(capacity: 28)
        w.u64(clock.hostUTC100ns)
        if let message = negotiated?.message, message >= ICVersion(4, 0) {
            w.u64(clock.referenceTime100ns)
            w.u8(flags)
            w.u8(0)     // leap indicator
            w.u8(0)     // stratum
            w.zeros(5)
        } else {
            w.u64(0)    // child time
            w.u64(0)    // round trip
            w.u8(flags)
            w.zeros(3)
        }
        return w.bytes
    }
}
