import KeelVMBus

/// `icmsgtype` values (vsp-protocols.md §1.2).
enum ICMessageType {
    static let negotiate: UInt16 = 0
    static let heartbeat: UInt16 = 1
    static let shutdown: UInt16 = 3
    static let timeSync: UInt16 = 4
}

/// `icflags` bits.
enum ICFlags {
    static let transaction: UInt8 = 0x01
    static let request: UInt8 = 0x02
    static let response: UInt8 = 0x04
}

/// The 28-byte IC header: 8-byte pipe header + 20-byte icmsg header.
struct ICHeader: Equatable {
    static let size = 28
    /// Pipe header "data" packet type.
    static let pipeData: UInt32 = 1

    var framework: ICVersion
    var messageType: UInt16
    var message: ICVersion
    var bodySize: UInt16
    var status: UInt32
    var flags: UInt8

    /// Parses the header of a guest payload; nil if it is shorter than 28 bytes.
    init?(_ r: ICReader) {
        guard r.count >= ICHeader.size,
              let framework = r.version(8), let type = r.u16(12), let message = r.version(14),
              let size = r.u16(18), let status = r.u32(20), let flags = r.u8(25) else { return nil }
        self.init(framework: framework, messageType: type, message: message, bodySize: size, status: status, flags: flags)
    }

    init(framework: ICVersion, messageType: UInt16, message: ICVersion, bodySize: UInt16, status: UInt32 = 0,
         flags: UInt8 = ICFlags.transaction | ICFlags.request) {
        self.framework = framework
        self.messageType = messageType
        self.message = message
        self.bodySize = bodySize
        self.status = status
        self.flags = flags
    }
}

/// Builds the in-band VMBus packet of a host request: pipe header, IC header, body.
func icRequestPacket(transactionID: UInt64, framework: ICVersion, messageType: UInt16, message: ICVersion,
                     body: [UInt8]) -> VMBusPacket {
    var w = ICWriter(capacity: ICHeader.size + body.count)
    w.u32(ICHeader.pipeData)
    w.u32(UInt32(truncatingIfNeeded: ICHeader.size - 8 + body.count))
    w.version(framework)
    w.u16(messageType)
    w.version(message)
    w.u16(UInt16(truncatingIfNeeded: body.count))
    w.u32(0)                                    // status
    w.u8(0)                                     // IC transaction id (OpenVMM uses 0)
    w.u8(ICFlags.transaction | ICFlags.request)
    w.u16(0)                                    // reserved
    var payload = w.bytes
    payload.append(contentsOf: body)
    return VMBusPacket(type: .dataInBand, flags: 0, transactionID: transactionID, payload: payload)
}

/// Negotiate request body: counts, reserved, framework versions, message versions.
func negotiateBody(frameworks: [ICVersion], messages: [ICVersion]) -> [UInt8] {
    var w = ICWriter(capacity: 8 + 4 * (frameworks.count + messages.count))
    w.u16(UInt16(truncatingIfNeeded: frameworks.count))
    w.u16(UInt16(truncatingIfNeeded: messages.count))
    w.u32(0)
    for v in frameworks + messages { w.version(v) }
    return w.bytes
}

/// What a guest's negotiate response says.
enum NegotiateReply: Equatable {
    case chosen(ICNegotiatedVersions)
    /// Both counts 0: no common version.
    case noCommonVersion
    case malformed(String)
}

/// Parses a negotiate response from the counts (not the length, which echoes the request's).
/// The chosen framework is the first framework entry, the message version the first message entry.
func parseNegotiateReply(_ r: ICReader) -> NegotiateReply {
    let base = ICHeader.size
    guard let fwCount = r.u16(base), let msgCount = r.u16(base + 2) else {
        return .malformed("negotiate reply too short for counts (\(r.count) bytes)")
    }
    if fwCount == 0 || msgCount == 0 { return .noCommonVersion }
    guard fwCount <= 100, msgCount <= 100 else {
        return .malformed("negotiate reply counts out of range (\(fwCount)/\(msgCount))")
    }
    let versionsStart = base + 8
    let end = versionsStart + 4 * (Int(fwCount) + Int(msgCount))
    guard r.count >= end,
          let framework = r.version(versionsStart),
          let message = r.version(versionsStart + 4 * Int(fwCount)) else {
        return .malformed("negotiate reply shorter than its counts (\(r.count) < \(end) bytes)")
    }
    return .chosen(ICNegotiatedVersions(framework: framework, message: message))
}
