import KeelIntegrationServices
import KeelVMBus

/// A simulated hv_utils guest: answers each host request in place, the way Linux does.
struct LinuxGuest {
    var frameworkPreferences = [ICVersion(3, 0), ICVersion(1, 0)]
    var messagePreferences: [ICVersion]

    init(_ kind: IntegrationServiceKind) {
        switch kind {
        case .heartbeat: messagePreferences = [ICVersion(3, 0), ICVersion(1, 0)]
        case .shutdown: messagePreferences = [ICVersion(3, 2), ICVersion(3, 1), ICVersion(3, 0), ICVersion(1, 0)]
        case .timeSync: messagePreferences = [ICVersion(4, 0), ICVersion(3, 0), ICVersion(1, 0)]
        }
    }

    /// The reply Linux sends: same length and transaction id, flags TRANSACTION|RESPONSE.
    func answer(_ packet: VMBusPacket, status: UInt32 = 0) -> VMBusPacket {
        var p = packet.payload
        switch le16(p, 12) {
        case 0:
            let fwCount = Int(le16(p, 28)), msgCount = Int(le16(p, 30))
            let offered = (0..<(fwCount + msgCount)).map { ICVersion(le16(p, 36 + 4 * $0), le16(p, 38 + 4 * $0)) }
            let fw = frameworkPreferences.first { offered.prefix(fwCount).contains($0) }
            let msg = messagePreferences.first { offered.dropFirst(fwCount).contains($0) }
            if let fw, let msg {
                put(&p, 28, 1, size: 2); put(&p, 30, 1, size: 2)
                put(&p, 36, UInt64(fw.major), size: 2); put(&p, 38, UInt64(fw.minor), size: 2)
                put(&p, 40, UInt64(msg.major), size: 2); put(&p, 42, UInt64(msg.minor), size: 2)
            } else {
                put(&p, 28, 0, size: 2); put(&p, 30, 0, size: 2)
            }
            put(&p, 18, 16, size: 2)
        case 1:
            put(&p, 28, le64(p, 28) &+ 1, size: 8)
        default:
            break
        }
        put(&p, 20, UInt64(status), size: 4)
        p[25] = 0x05
        return VMBusPacket(type: .dataInBand, transactionID: packet.transactionID, payload: p)
    }
}

/// A clock at `ms` milliseconds of monotonic time, with distinct wall and reference times.
func clock(ms: UInt64) -> ICClock {
    ICClock(monotonicNanoseconds: ms * 1_000_000, hostUTC100ns: 133_000_000_000_000_000 + ms * 10_000,
            referenceTime100ns: 5_000_000 + ms * 10_000)
}

/// A service whose channel is open and negotiated with a Linux guest at time 0.
/// Returns the packets the negotiation reply produced.
func negotiatedService(_ kind: IntegrationServiceKind, guest: LinuxGuest? = nil) -> (IntegrationService, [VMBusPacket]) {
    var service = IntegrationService(kind: kind)
    let guest = guest ?? LinuxGuest(kind)
    let request = service.channelOpened(clock: clock(ms: 0))
    let result = service.receive(guest.answer(request[0]), clock: clock(ms: 0))
    return (service, result.packets)
}

func le16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
func le32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
func le64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }

func put(_ b: inout [UInt8], _ o: Int, _ value: UInt64, size: Int) {
    for i in 0..<size { b[o + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
}

/// The IC message type of a host packet.
func messageType(_ packet: VMBusPacket) -> UInt16 { le16(packet.payload, 12) }
