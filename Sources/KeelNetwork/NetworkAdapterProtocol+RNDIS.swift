import KeelVMBus

extension NetworkAdapterProtocol {
    /// The bytes of a `.readRNDIS` transfer (nil if the caller could not read guest memory).
    /// Walks the RNDIS messages in them by `msg_len` (a send-buffer section may batch several
    /// PACKETs), transmits the frames, answers control messages through the receive buffer, and
    /// completes the SEND_RNDIS_PKT: success, or a failure status if anything was malformed.
    public mutating func rndisMessage(_ bytes: [UInt8]?, for transfer: RNDISTransfer) -> [NetworkAction] {
        guard let bytes, bytes.count == transfer.length else {
            return completeTransfer(transfer, status: NVSPStatus.failure)
                + [.diagnostic(NetworkDiagnostic(.rndisReadFailed,
                                                 "could not read \(transfer.length) RNDIS bytes from guest memory"))]
        }
        var actions: [NetworkAction] = []
        var responses: [[UInt8]] = []
        var status = NVSPStatus.success
        var offset = 0
        func fail(_ kind: NetworkDiagnostic.Kind, _ message: String) {
            status = NVSPStatus.invalidRNDISPacket
            actions.append(.diagnostic(NetworkDiagnostic(kind, message)))
        }
        while bytes.count - offset >= 8 {
            let type = bytes.u32(offset), length = Int(bytes.u32(offset + 4))
            guard length >= 8, length <= bytes.count - offset else {
                fail(.malformedRNDIS, "RNDIS message type \(type) claims \(length) bytes, \(bytes.count - offset) left")
                break
            }
            if type == RNDISMessageType.packet {
                let decoder = RNDISPacketDecoder(maxFrameLength: configuration.maxFrameLength)
                do {
                    let frame = try decoder.frame(in: bytes, start: offset, length: length)
                    if !rndisInitialized {
                        fail(.droppedFrame, "RNDIS PACKET before RNDIS INITIALIZE")
                    } else if linkUp {
                        actions.append(.transmit(frame))
                    }
                } catch {
                    fail(error.isSize ? .droppedFrame : .malformedRNDIS, error.description)
                }
            } else {
                switch control(type: type, message: Array(bytes[offset..<offset + length])) {
                case .respond(let response): responses.append(response)
                case .silent: break
                case .invalid(let message): fail(.malformedRNDIS, message)
                }
            }
            offset += length
        }
        if offset == 0 { fail(.malformedRNDIS, "no RNDIS message in \(bytes.count) bytes") }
        actions += completeTransfer(transfer, status: status)
        for response in responses { actions += enqueueControl(response) }
        return actions
    }

    /// Bytes of a transfer to read for `rndisPacket(prefix:for:)`: the RNDIS header and PPIs
    /// and the first 512 bytes of the frame, which hold any headers an offload needs.
    public static let transmitPrefixLength = 1024

    /// The fast path for a large transfer that is one RNDIS PACKET (what netvsc sends through
    /// GPA-direct pages): `prefix` is the transfer's first `transmitPrefixLength` bytes. The
    /// frame's remaining bytes stay in guest memory (`TransmitFrame.rest`), so the writer hands
    /// them to the TAP without a copy. Nil when the transfer is anything else, or anything in it
    /// is malformed: then read all of it and call `rndisMessage(_:for:)`, which reports why.
    public mutating func rndisPacket(prefix: [UInt8], for transfer: RNDISTransfer) -> [NetworkAction]? {
        let messageLength = Int(prefix.u32(4))
        guard rndisInitialized, linkUp, prefix.count >= 8 + RNDISPacketDecoder.bodySize,
              prefix.u32(0) == RNDISMessageType.packet, messageLength <= transfer.length,
              transfer.length - messageLength < 8 else { return nil }
        let decoder = RNDISPacketDecoder(maxFrameLength: configuration.maxFrameLength)
        guard let (head, restRange) = try? decoder.head(in: prefix, start: 0, length: messageLength),
              let rest = transfer.segments.subrange(offset: restRange.lowerBound, length: restRange.count) else { return nil }
        var frame = head
        frame.rest = rest
        guard let completion = transferCompletion(transfer, status: NVSPStatus.success) else { return [.transmit(frame)] }
        return [.transmit(frame), .send(completion)]
    }

    private func completeTransfer(_ transfer: RNDISTransfer, status: UInt32) -> [NetworkAction] {
        transferCompletion(transfer, status: status).map { [.send($0)] } ?? []
    }

    private func transferCompletion(_ transfer: RNDISTransfer, status: UInt32) -> VMBusPacket? {
        guard transfer.completionRequested else { return nil }
        return NVSPMessage.completion(transactionID: transfer.transactionID, type: NVSPMessageType.sendRNDISPacketComplete,
                                      status: status)
    }

    private enum ControlOutcome {
        case respond([UInt8])
        case silent
        case invalid(String)
    }

    /// One RNDIS control message (`message` is exactly `msg_len` bytes). A message too short to
    /// carry its request id cannot be answered; any other malformed request gets an error status.
    private mutating func control(type: UInt32, message: [UInt8]) -> ControlOutcome {
        let requestID = message.u32(8)
        let hasRequestID = message.count >= 12
        switch type {
        case RNDISMessageType.initialize:
            guard hasRequestID else { return .invalid("RNDIS INITIALIZE of \(message.count) bytes") }
            let valid = message.count >= 24 && message.u32(12) == 1
            if valid {
                rndisInitialized = true
                packetFilter = 0
            }
            return .respond(RNDISEncode.initializeComplete(
                requestID: requestID, status: valid ? RNDISStatus.success : RNDISStatus.notSupported,
                maxPackets: Self.maxPacketsPerMessage, maxTransferSize: UInt32(Self.maxRNDISTransferBytes),
                alignmentShift: Self.packetAlignmentShift))
        case RNDISMessageType.halt:
            rndisInitialized = false
            packetFilter = 0
            return .silent
        case RNDISMessageType.query, RNDISMessageType.set:
            guard hasRequestID else { return .invalid("RNDIS request type \(type) of \(message.count) bytes") }
            let isQuery = type == RNDISMessageType.query
            let oid = message.u32(12)
            let info = infoBuffer(message)
            var status = RNDISStatus.invalidData
            var data: [UInt8] = []
            if let info {
                if isQuery { (status, data) = queryAnswer(oid: oid) } else { status = applySet(oid: oid, data: info) }
            }
            return .respond(isQuery ? RNDISEncode.queryComplete(requestID: requestID, status: status, data: data)
                : RNDISEncode.setComplete(requestID: requestID, status: status))
        case RNDISMessageType.keepalive:
            guard hasRequestID else { return .invalid("RNDIS KEEPALIVE of \(message.count) bytes") }
            return .respond(RNDISEncode.keepaliveComplete(requestID: requestID, status: RNDISStatus.success))
        case RNDISMessageType.reset:
            return .respond(RNDISEncode.resetComplete(status: RNDISStatus.success))
        default:
            return .invalid("unexpected RNDIS message type \(type) from the guest")
        }
    }

    /// The information buffer of a QUERY or SET (`info_buflen` at 16, `info_buf_offset` at 20,
    /// counted from the request id at byte 8); nil if the header is short or the buffer lies
    /// outside the message or inside its 28-byte header.
    private func infoBuffer(_ message: [UInt8]) -> [UInt8]? {
        guard message.count >= 28 else { return nil }
        let length = Int(message.u32(16))
        guard length > 0 else { return [] }
        let start = 8 + Int(message.u32(20))
        guard start >= 28 else { return nil }
        return message.run(start, length)
    }
}

extension RNDISPacketError {
    var isSize: Bool {
        if case .frameSize = self { return true }
        return false
    }
}
