import KeelSystem
import KeelVMBus

extension [GuestSegment] {
    /// The runs holding bytes `offset ..< offset + length` of the concatenated segments; nil if
    /// that is not inside them.
    func subrange(offset: Int, length: Int) -> [GuestSegment]? {
        guard offset >= 0, length >= 0 else { return nil }
        var result: [GuestSegment] = []
        var position = 0, remaining = length
        for segment in self where remaining > 0 {
            defer { position += segment.length }
            guard offset < position + segment.length else { continue }
            let skip = Swift.max(0, offset - position)
            let take = Swift.min(segment.length - skip, remaining)
            result.append(GuestSegment(address: segment.address + UInt64(skip), length: take))
            remaining -= take
        }
        return remaining == 0 ? result : nil
    }
}

/// Bytes to copy into guest memory at a guest-physical address.
public struct GuestWrite: Sendable, Equatable {
    public let address: UInt64
    public let bytes: ArraySlice<UInt8>
}

/// Where the bytes of one guest SEND_RNDIS_PKT live. The logical RNDIS byte stream is the
/// send-buffer section bytes (if any) followed by the GPA-direct ranges (if any); `segments`
/// lists both in order. The caller reads them and hands the bytes to
/// `NetworkAdapterProtocol.rndisMessage(_:for:)`, which answers the request.
public struct RNDISTransfer: Sendable, Equatable {
    public let transactionID: UInt64
    public let completionRequested: Bool
    /// 0 = data, 1 = control (informational: messages are dispatched on their RNDIS type).
    public let channelType: UInt32
    /// The send-buffer section used, if any.
    public let sectionIndex: Int?
    /// Byte range of the send buffer holding the section part.
    public let sendBufferRange: Range<Int>?
    /// The GPA-direct part (netvsc "page buffers").
    public let gpaBuffer: GPADirectBuffer?
    /// Every guest-physical run to read, in order.
    public let segments: [GuestSegment]
    /// Total bytes to read.
    public let length: Int
}

/// Host → guest data through the receive buffer: copy every region into the receive buffer
/// (`guestWrites()` gives the guest-physical pieces), then send `packet`, a
/// `VM_PKT_DATA_USING_XFER_PAGES` packet naming those regions. The guest's completion with
/// `transactionID` frees the sub-allocations.
public struct Delivery: Sendable, Equatable {
    /// One RNDIS message at a byte offset of the receive buffer: its header (with PPIs), then a
    /// slice of a received frame (not copied until it is written to the guest), then zero padding.
    /// A frame the backend read straight into the section has no payload here and no padding
    /// written (`fillsPadding` false): only its header is written.
    public struct Region: Sendable, Equatable {
        public let offset: Int
        var header: ArraySlice<UInt8>
        let payload: ArraySlice<UInt8>
        /// The whole message, padding included (what the transfer-page range says).
        public let length: Int
        var fillsPadding = true

        /// The message as one array (tests and diagnostics).
        public var bytes: [UInt8] {
            Array(header) + payload + [UInt8](repeating: 0, count: max(0, length - header.count - payload.count))
        }
    }

    public let transactionID: UInt64
    public let regions: [Region]
    public let packet: VMBusPacket
    let pages: PageList
    /// Small writes into frames already in the receive buffer (completed checksums).
    var extraWrites: [GuestWrite] = []

    private static let padding = [UInt8](repeating: 0, count: 8)

    /// The regions as guest-physical writes, split at page boundaries (adjacent pages merged);
    /// each write is a slice of a header, a frame or the padding.
    public func guestWrites() -> [GuestWrite] {
        var writes: [GuestWrite] = []
        writes.reserveCapacity(regions.count + extraWrites.count)
        _ = forEachWrite { address, bytes in
            writes.append(GuestWrite(address: address, bytes: bytes))
            return true
        }
        return writes
    }

    /// Hands `write` the pieces `guestWrites()` lists, in order, without building the list;
    /// stops at the first piece it refuses (returns false) and then returns false.
    public func forEachWrite(_ write: (_ address: UInt64, _ bytes: ArraySlice<UInt8>) -> Bool) -> Bool {
        var segments: [GuestSegment] = []
        for index in regions.indices {
            // A header in one page with its frame already in place (a direct receive): one write.
            // Its fields are read in place: copying the region would retain both of its slices.
            if !regions[index].fillsPadding, regions[index].payload.isEmpty,
               let address = pages.address(ofOffset: regions[index].offset, length: regions[index].header.count) {
                guard write(address, regions[index].header) else { return false }
                continue
            }
            guard writeRegion(regions[index], segments: &segments, write) else { return false }
        }
        for extra in extraWrites {
            guard write(extra.address, extra.bytes) else { return false }
        }
        return true
    }

    /// One region's pieces (see `forEachWrite`); a region outside the buffer writes nothing.
    private func writeRegion(_ region: Region, segments: inout [GuestSegment],
                             _ write: (_ address: UInt64, _ bytes: ArraySlice<UInt8>) -> Bool) -> Bool {
        let padding = region.fillsPadding ? max(0, region.length - region.header.count - region.payload.count) : 0
        // The parts in order (header, payload, padding), taken from the front as they are written.
        var part = 0
        var current = region.header
        let written = region.header.count + region.payload.count + padding
        segments.removeAll(keepingCapacity: true)
        guard pages.appendSegments(offset: region.offset, length: written, to: &segments) else { return true }
        for segment in segments {
            var address = segment.address, remaining = segment.length
            while remaining > 0, part < 3 {
                guard !current.isEmpty else {
                    part += 1
                    current = part == 1 ? region.payload : Self.padding.prefix(part == 2 ? padding : 0)
                    continue
                }
                let take = min(remaining, current.count)
                guard write(address, current.prefix(take)) else { return false }
                current = current.dropFirst(take)
                address += UInt64(take)
                remaining -= take
            }
        }
        return true
    }
}

/// Guest misbehaviour worth a rate-limited log line. `kind` is a stable key for rate limiting.
public struct NetworkDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable, Hashable {
        case malformedNVSP
        case unexpectedNVSP
        case bufferRefused
        case badSendRequest
        case rndisReadFailed
        case malformedRNDIS
        case droppedFrame
        case unknownCompletion
        case receiveFailed
        case controlQueueFull
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// What the device adapter does after feeding the protocol an event, in order.
public enum NetworkAction: Sendable, Equatable {
    /// Write this packet (a completion) to the guest's ring.
    case send(VMBusPacket)
    /// Look up GPADL `gpadlHandle`, then call `attachReceiveBuffer(pages:)` with its whole-page addresses.
    case mapReceiveBuffer(gpadlHandle: UInt32)
    /// Look up GPADL `gpadlHandle`, then call `attachSendBuffer(pages:)`.
    case mapSendBuffer(gpadlHandle: UInt32)
    /// The guest revoked the buffer on this GPADL: stop using it (the GPADL teardown follows).
    case releaseReceiveBuffer(gpadlHandle: UInt32)
    case releaseSendBuffer(gpadlHandle: UInt32)
    /// Read the transfer's bytes from guest memory, then call `rndisMessage(_:for:)`.
    case readRNDIS(RNDISTransfer)
    /// Put this Ethernet frame, with its virtio-net header, on the backend (TAP).
    case transmit(TransmitFrame)
    /// Write the delivery's regions into the receive buffer, then send its packet.
    case deliver(Delivery)
    /// Log at a rate limit; nothing else to do.
    case diagnostic(NetworkDiagnostic)
}
