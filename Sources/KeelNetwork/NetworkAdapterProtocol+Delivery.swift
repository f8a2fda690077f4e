import KeelSystem
import KeelVMBus

extension NetworkAdapterProtocol {
    /// True while data frames may be delivered: receive buffer attached, RNDIS initialized, a
    /// non-zero packet filter, link up. While false, frames from the backend are dropped.
    public var acceptsFrames: Bool {
        receiveBuffer != nil && rndisInitialized && packetFilter != 0 && linkUp
    }

    /// Receive sections free for data frames (the control reserve excluded). When a delivery
    /// returns nil while `acceptsFrames` and this is 0, the buffer is full: queue the frame and
    /// retry after the guest's next completion.
    public var freeDataSections: Int { receiveBuffer?.freeForData ?? 0 }

    /// Transfer-page packets the guest has not completed yet.
    public var outstandingDeliveries: Int { receiveBuffer?.outstandingPackets ?? 0 }

    /// One received frame for the guest, or nil if it is not wanted (see `acceptsFrames`; bad
    /// size; filtered out by destination MAC) or no receive section is free.
    public mutating func deliverFrame(_ frame: [UInt8]) -> Delivery? {
        deliverFrames([ReceivedFrame(frame)]).delivery
    }

    /// Frames with no offload information (see `deliverFrames(_: [ReceivedFrame])`).
    public mutating func deliverFrames(_ frames: [[UInt8]]) -> (delivery: Delivery?, consumed: Int) {
        deliverFrames(frames.map { ReceivedFrame($0) })
    }

    /// Several frames in one transfer-page packet: one section each, or a chain of sections for
    /// a large TCP packet while the guest has receive coalescing on (at most `maxRangesPerPacket`
    /// sections in all). `consumed` counts the leading frames taken (delivered or dropped); the
    /// rest did not fit.
    public mutating func deliverFrames(_ frames: [ReceivedFrame]) -> (delivery: Delivery?, consumed: Int) {
        guard acceptsFrames, let sectionSize = receiveBuffer?.sectionSize else { return (nil, frames.count) }
        var messages: [OutgoingMessage] = []
        var consumed = 0
        let room = min(Self.maxRangesPerPacket, freeDataSections)
        for frame in frames {
            let before = messages.count
            guard appendReceiveMessages(for: frame, sectionSize: sectionSize, to: &messages) else {
                consumed += 1
                continue
            }
            let pieces = messages.count - before
            // A chain longer than the buffer could ever hold for data would wait forever: drop it.
            guard pieces <= min(Self.maxRangesPerPacket, receiveBuffer?.dataCapacity ?? 0) else {
                messages.removeLast(pieces)
                consumed += 1
                continue
            }
            guard messages.count <= room else {
                messages.removeLast(pieces)
                break
            }
            consumed += 1
        }
        guard !messages.isEmpty else { return (nil, consumed) }
        return (makeDelivery(messages, channelType: 0, control: false), consumed)
    }

    /// The caller could not write `delivery` into guest memory and will not send its packet:
    /// free its sections (its messages are lost), then deliver queued control messages.
    public mutating func abandon(_ delivery: Delivery) -> [NetworkAction] {
        guard receiveBuffer?.release(delivery.transactionID) != nil else { return [] }
        return flushControlQueue()
    }

    /// The link changed: once RNDIS is initialized the guest gets MEDIA_CONNECT or
    /// MEDIA_DISCONNECT (before that the state is only remembered; Linux queries it at probe).
    public mutating func setLink(up: Bool) -> [NetworkAction] {
        guard up != linkUp else { return [] }
        linkUp = up
        guard rndisInitialized else { return [] }
        return enqueueControl(RNDISEncode.indicateStatus(up ? RNDISStatus.mediaConnect : RNDISStatus.mediaDisconnect))
    }

    /// Size (up to a coalesced packet's when `coalesced`), then the packet filter by destination
    /// MAC (multicast lists are not tracked: MULTICAST passes every multicast frame, like
    /// ALL_MULTICAST). `frame` may be only the first bytes of a frame of `length` bytes.
    func wants(_ frame: [UInt8], length: Int, coalesced: Bool) -> Bool {
        let tagged = frame.count >= 16 && frame[12] == 0x81 && frame[13] == 0x00
        let limit = coalesced ? ReceiveOffload.maxCoalescedFrame : configuration.maxFrameLength + (tagged ? 4 : 0)
        guard frame.count >= 14, length >= 14, length <= limit else { return false }
        let filter = packetFilter
        if filter & NDISPacketFilter.promiscuous != 0 { return true }
        // The destination MAC as two loads (this runs for every frame).
        let (low, high) = (frame.littleEndian(UInt32.self, at: 0), frame.littleEndian(UInt16.self, at: 4))
        if low == .max, high == .max { return filter & NDISPacketFilter.broadcast != 0 }
        if low & 1 != 0 {
            return filter & (NDISPacketFilter.multicast | NDISPacketFilter.allMulticast) != 0
        }
        let mac = configuration.macAddress
        return filter & NDISPacketFilter.directed != 0 && mac.count == 6
            && low == mac.littleEndian(UInt32.self, at: 0) && high == mac.littleEndian(UInt16.self, at: 4)
    }

    /// Queues an RNDIS control message (response or indication) and delivers what fits.
    mutating func enqueueControl(_ message: [UInt8]) -> [NetworkAction] {
        guard controlQueue.count < Self.maxQueuedControlMessages else {
            return [.diagnostic(NetworkDiagnostic(.controlQueueFull, "RNDIS control message dropped: queue full"))]
        }
        controlQueue.append(message)
        return flushControlQueue()
    }

    /// Delivers queued control messages into free sections (the reserve included).
    mutating func flushControlQueue() -> [NetworkAction] {
        let count = min(controlQueue.count, receiveBuffer?.freeCount ?? 0, Self.maxRangesPerPacket)
        let messages = controlQueue.prefix(count).map { OutgoingMessage(header: $0, payload: [], length: $0.count) }
        guard count > 0, let delivery = makeDelivery(messages, channelType: 1, control: true)
        else { return [] }
        controlQueue.removeFirst(count)
        return [.deliver(delivery)]
    }

    /// The guest completed one of our transfer-page packets: free its sections, then deliver
    /// queued control messages.
    mutating func receiveCompletion(transactionID: UInt64, payload: PacketPayload) -> [NetworkAction] {
        guard receiveBuffer?.release(transactionID) != nil else {
            return [.diagnostic(NetworkDiagnostic(.unknownCompletion, "completion for unknown transaction \(transactionID)"))]
        }
        var actions: [NetworkAction] = []
        if payload.u32(4) != NVSPStatus.success {
            actions.append(.diagnostic(NetworkDiagnostic(.receiveFailed,
                                                         "guest reported status \(payload.u32(4)) for receive \(transactionID)")))
        }
        return actions + flushControlQueue()
    }

    /// Allocates one section per message and builds the transfer-page packet naming them.
    private mutating func makeDelivery(_ messages: [OutgoingMessage], channelType: UInt32, control: Bool) -> Delivery? {
        guard let (transactionID, sections) = receiveBuffer?.allocate(messages.count, control: control),
              let buffer = receiveBuffer else { return nil }
        // Control messages are at most 576 bytes and data messages are built to fit a section.
        let regions = zip(sections, messages).map { section, message in
            Delivery.Region(offset: buffer.byteOffset(ofSection: section), header: message.header[...],
                            payload: message.payload, length: min(message.length, buffer.sectionSize))
        }
        return transferPages(transactionID: transactionID, regions: regions, channelType: channelType)
    }

    /// The VM_PKT_DATA_USING_XFER_PAGES packet naming `regions` of the receive buffer.
    func transferPages(transactionID: UInt64, regions: [Delivery.Region], channelType: UInt32,
                       extraWrites: [GuestWrite] = []) -> Delivery? {
        guard let buffer = receiveBuffer else { return nil }
        // Header: xfer_pageset_id, sender owns, reserved, range count, then {length, offset} per range.
        let packet = VMBusPacket(type: .dataUsingTransferPages, flags: 1, transactionID: transactionID,
                                 headerLength: 8 + 8 * regions.count, payloadLength: NVSPMessage.size) { bytes, dataOffset in
            bytes.withFieldStores { field in
                var at = VMBusPacket.descriptorSize
                field.store(buffer.id, at: at)
                field.store(UInt32(regions.count), at: at + 4)
                for region in regions {
                    at += 8
                    field.store(UInt32(region.length), at: at)
                    field.store(UInt32(region.offset), at: at + 4)
                }
                field.store(NVSPMessageType.sendRNDISPacket, at: dataOffset)
                field.store(channelType, at: dataOffset + 4)
                field.store(NVSPMessage.noSection, at: dataOffset + 8)
            }
        }
        return Delivery(transactionID: transactionID, regions: regions, packet: packet, pages: buffer.pages,
                        extraWrites: extraWrites)
    }
}
