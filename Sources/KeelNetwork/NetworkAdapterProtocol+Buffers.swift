import KeelSystem
import KeelVMBus

extension NetworkAdapterProtocol {
    /// The receive buffer's layout once attached: what SEND_RECV_BUF_COMPLETE announced.
    public var receiveBufferLayout: (sectionSize: Int, sectionCount: Int)? {
        receiveBuffer.map { ($0.sectionSize, $0.sectionCount) }
    }

    /// Send-buffer sections once attached.
    public var sendBufferSectionCount: Int? { sendBuffer?.sectionCount }

    /// Answers the pending SEND_RECV_BUF. `pages`: the page-aligned guest-physical addresses of
    /// the GPADL it named (`GPADL.wholePageAddresses`), or nil if there is no such usable GPADL.
    /// Success announces one section {offset 0, S, N, S×N} with S = `receiveSectionSize(bufferBytes:)`.
    public mutating func attachReceiveBuffer(pages: [UInt64]?) -> [NetworkAction] {
        guard let request = pendingReceiveBuffer else {
            return [.diagnostic(NetworkDiagnostic(.bufferRefused, "receive buffer attached with no request pending"))]
        }
        pendingReceiveBuffer = nil
        let type = NVSPMessageType.sendReceiveBufferComplete
        guard let list = PageList(pages, maxPages: Self.maxBufferPages),
              let buffer = ReceiveBuffer(gpadlHandle: request.gpadlHandle, id: request.id, pages: list,
                                         sectionSize: configuration.receiveSectionSize(bufferBytes: list.byteCount)) else {
            return complete(transactionID: request.transactionID, requested: request.completionRequested,
                            [type, NVSPStatus.failure, 0])
                + [.diagnostic(NetworkDiagnostic(.bufferRefused, "receive buffer GPADL \(request.gpadlHandle) unusable"))]
        }
        receiveBuffer = buffer
        let size = UInt32(buffer.sectionSize), count = UInt32(buffer.sectionCount)
        return complete(transactionID: request.transactionID, requested: request.completionRequested,
                        [type, NVSPStatus.success, 1, 0, size, count, size * count]) + flushControlQueue()
    }

    /// Answers the pending SEND_SEND_BUF (see `attachReceiveBuffer`); success announces 6144-byte sections.
    public mutating func attachSendBuffer(pages: [UInt64]?) -> [NetworkAction] {
        guard let request = pendingSendBuffer else {
            return [.diagnostic(NetworkDiagnostic(.bufferRefused, "send buffer attached with no request pending"))]
        }
        pendingSendBuffer = nil
        let type = NVSPMessageType.sendSendBufferComplete
        guard let list = PageList(pages, maxPages: Self.maxBufferPages),
              let buffer = SendBuffer(gpadlHandle: request.gpadlHandle, id: request.id, pages: list,
                                      sectionSize: Self.sendSectionSize) else {
            return complete(transactionID: request.transactionID, requested: request.completionRequested,
                            [type, NVSPStatus.failure, 0])
                + [.diagnostic(NetworkDiagnostic(.bufferRefused, "send buffer GPADL \(request.gpadlHandle) unusable"))]
        }
        sendBuffer = buffer
        return complete(transactionID: request.transactionID, requested: request.completionRequested,
                        [type, NVSPStatus.success, UInt32(Self.sendSectionSize)])
    }

    /// SEND_RECV_BUF / SEND_SEND_BUF: ask the caller to resolve the GPADL (one buffer of each kind).
    mutating func requestBuffer(_ packet: VMBusPacket, type: UInt32, payload: PacketPayload) -> [NetworkAction] {
        let request = BufferRequest(transactionID: packet.transactionID, completionRequested: packet.completionRequested,
                                    gpadlHandle: payload.u32(4), id: payload.u16(8))
        if type == NVSPMessageType.sendReceiveBuffer {
            guard receiveBuffer == nil, pendingReceiveBuffer == nil else {
                return reject(packet, type: type, .bufferRefused, "second receive buffer offered")
            }
            pendingReceiveBuffer = request
            return [.mapReceiveBuffer(gpadlHandle: request.gpadlHandle)]
        }
        guard sendBuffer == nil, pendingSendBuffer == nil else {
            return reject(packet, type: type, .bufferRefused, "second send buffer offered")
        }
        pendingSendBuffer = request
        return [.mapSendBuffer(gpadlHandle: request.gpadlHandle)]
    }

    /// REVOKE_RECV_BUF / REVOKE_SEND_BUF (no completion unless asked): drop the buffer with that id.
    mutating func revokeBuffer(_ packet: VMBusPacket, type: UInt32, id: UInt16) -> [NetworkAction] {
        if type == NVSPMessageType.revokeReceiveBuffer, let buffer = receiveBuffer, buffer.id == id {
            receiveBuffer = nil
            return complete(packet, [type, NVSPStatus.success]) + [.releaseReceiveBuffer(gpadlHandle: buffer.gpadlHandle)]
        }
        if type == NVSPMessageType.revokeSendBuffer, let buffer = sendBuffer, buffer.id == id {
            sendBuffer = nil
            return complete(packet, [type, NVSPStatus.success]) + [.releaseSendBuffer(gpadlHandle: buffer.gpadlHandle)]
        }
        return reject(packet, type: type, .unexpectedNVSP, "revoke of unknown buffer id \(id)")
    }

    /// Release actions for the attached buffers (before a restart).
    func releaseBuffers() -> [NetworkAction] {
        (receiveBuffer.map { [.releaseReceiveBuffer(gpadlHandle: $0.gpadlHandle)] } ?? [])
            + (sendBuffer.map { [.releaseSendBuffer(gpadlHandle: $0.gpadlHandle)] } ?? [])
    }

    /// SEND_RNDIS_PKT: work out where the RNDIS bytes are (section, GPA ranges, or section then
    /// GPA ranges) and ask the caller to read them.
    mutating func planRNDIS(_ packet: VMBusPacket, payload: PacketPayload) -> [NetworkAction] {
        let type = NVSPMessageType.sendRNDISPacket
        let index = payload.u32(8), sectionBytes = Int(payload.u32(12))
        var segments: [GuestSegment] = []
        var sectionIndex: Int?
        var sendRange: Range<Int>?
        if index != NVSPMessage.noSection {
            guard let buffer = sendBuffer else {
                return reject(packet, type: type, .badSendRequest, "send-buffer section \(index) without a send buffer")
            }
            guard Int(index) < buffer.sectionCount, sectionBytes <= buffer.sectionSize else {
                return reject(packet, type: type, .badSendRequest,
                              "send-buffer section \(index) (\(sectionBytes) bytes) outside \(buffer.sectionCount) sections")
            }
            let offset = Int(index) * buffer.sectionSize
            guard let pieces = buffer.pages.segments(offset: offset, length: sectionBytes) else {
                return reject(packet, type: type, .badSendRequest, "send-buffer section \(index) outside the buffer")
            }
            segments = pieces
            sectionIndex = Int(index)
            sendRange = offset..<offset + sectionBytes
        }
        var gpa: GPADirectBuffer?
        if packet.rawType == VMBusPacketType.dataUsingGPADirect.rawValue {
            do {
                let buffer = try GPADirectBuffer(packet: packet, maxPages: 64)
                segments = segments.isEmpty ? buffer.guestSegments() : segments + buffer.guestSegments()
                gpa = buffer
            } catch {
                return reject(packet, type: type, .badSendRequest, "bad GPA-direct ranges: \(error)")
            }
        }
        let total = (sendRange?.count ?? 0) + (gpa?.totalBytes ?? 0)
        guard total > 0, total <= Self.maxRNDISTransferBytes else {
            return reject(packet, type: type, .badSendRequest, "RNDIS transfer of \(total) bytes")
        }
        return [.readRNDIS(RNDISTransfer(transactionID: packet.transactionID, completionRequested: packet.completionRequested,
                                         channelType: payload.u32(4), sectionIndex: sectionIndex,
                                         sendBufferRange: sendRange, gpaBuffer: gpa, segments: segments, length: total))]
    }
}
