import KeelSystem

/// Why a guest RNDIS PACKET message was dropped. Every field was written by the guest.
enum RNDISPacketError: Error, Equatable, CustomStringConvertible {
    case truncated(length: Int)
    case dataOutsideMessage(offset: UInt32, length: UInt32, messageLength: Int)
    case oobOutsideMessage(offset: UInt32, length: UInt32)
    case ppiOutsideMessage(offset: UInt32, length: UInt32)
    case malformedPPI(at: Int, size: UInt32, dataOffset: UInt32)
    case frameSize(Int, limit: Int)
    case offload(TransmitOffloadError)

    var description: String {
        switch self {
        case .truncated(let length): "RNDIS PACKET of \(length) bytes is shorter than its 44-byte header"
        case .dataOutsideMessage(let offset, let length, let messageLength):
            "RNDIS PACKET data offset \(offset) length \(length) outside its \(messageLength)-byte message"
        case .oobOutsideMessage(let offset, let length): "RNDIS PACKET OOB data offset \(offset) length \(length) outside the message"
        case .ppiOutsideMessage(let offset, let length): "RNDIS PACKET PPI offset \(offset) length \(length) outside the message"
        case .malformedPPI(let at, let size, let dataOffset): "malformed PPI at byte \(at): size \(size), offset \(dataOffset)"
        case .frameSize(let size, let limit): "Ethernet frame of \(size) bytes outside 14...\(limit)"
        case .offload(let error): error.description
        }
    }
}

/// A frame for the TAP with the virtio-net header that finishes its checksum or segmentation:
/// `frame` (its headers already fixed up), then `rest`, bytes still in guest memory that the
/// writer passes to the TAP without copying them (empty unless the frame was taken from a prefix).
public struct TransmitFrame: Sendable, Equatable {
    public let header: VirtioNetHeader
    public let frame: [UInt8]
    public var rest: [GuestSegment] = []
}

/// Decodes guest → host RNDIS PACKET messages into Ethernet frames. All offsets in the 36-byte
/// body are relative to the body (byte 8 of the message). PPIs are walked and validated; an
/// IEEE 802.1Q PPI (type 6) is applied by inserting the tag into the frame; checksum (type 0)
/// and LSOv2 (type 2) PPIs become the frame's virtio-net header; hash PPIs are ignored.
struct RNDISPacketDecoder {
    static let bodySize = 36
    static let ppiHeaderSize = 12
    static let checksumPPIType: UInt32 = 0
    static let largeSendPPIType: UInt32 = 2
    static let vlanPPIType: UInt32 = 6
    /// Largest frame with a large-send PPI: an IPv4 packet of 64 KiB behind a tagged header.
    static let maxLargeSendFrame = 0xFFFF + 18

    /// Largest untagged frame (MTU + 14); an inline 802.1Q tag may add 4.
    let maxFrameLength: Int

    /// The PPIs the decoder acts on.
    private struct PacketInfo {
        var vlan: UInt32?
        var checksum: UInt32?
        var largeSend: UInt32?
    }

    /// The frame of the PACKET message `bytes[start ..< start + length]` (inside `bytes`).
    func frame(in bytes: [UInt8], start: Int, length: Int) throws(RNDISPacketError) -> TransmitFrame {
        try head(in: bytes, start: start, length: length).frame
    }

    /// Like `frame(in:start:length:)`, but `bytes` may end inside the message (a prefix of the
    /// transfer): the header and PPIs must be in it, and the frame's bytes that are become
    /// `frame`; `rest` is where (as message offsets) the frame's bytes past the prefix are.
    func head(in bytes: [UInt8], start: Int, length: Int) throws(RNDISPacketError) -> (frame: TransmitFrame, rest: Range<Int>) {
        guard length >= 8 + Self.bodySize else { throw .truncated(length: length) }
        let body = start + 8
        let bodyLength = length - 8
        let dataOffset = bytes.u32(body), dataLength = bytes.u32(body + 4)
        let oobOffset = bytes.u32(body + 8), oobLength = bytes.u32(body + 12)
        let ppiOffset = bytes.u32(body + 20), ppiLength = bytes.u32(body + 24)

        func inside(_ offset: UInt32, _ count: UInt32) -> Bool {
            Int(offset) >= Self.bodySize && Int(offset) <= bodyLength && Int(count) <= bodyLength - Int(offset)
        }
        guard inside(dataOffset, dataLength) else {
            throw .dataOutsideMessage(offset: dataOffset, length: dataLength, messageLength: length)
        }
        guard oobLength == 0 || inside(oobOffset, oobLength) else {
            throw .oobOutsideMessage(offset: oobOffset, length: oobLength)
        }
        var info = PacketInfo()
        if ppiLength > 0 {
            guard inside(ppiOffset, ppiLength) else { throw .ppiOutsideMessage(offset: ppiOffset, length: ppiLength) }
            guard body + Int(ppiOffset) + Int(ppiLength) <= bytes.count else { throw .truncated(length: bytes.count - start) }
            info = try packetInfo(in: bytes, start: body + Int(ppiOffset), length: Int(ppiLength))
        }

        let frameStart = body + Int(dataOffset)
        let count = Int(dataLength)
        let inlineTagged = count >= 16 && bytes.littleEndian(UInt16.self, at: frameStart + 12) == 0x0081
        let limit = info.largeSend != nil ? Self.maxLargeSendFrame : maxFrameLength + (inlineTagged ? 4 : 0)
        let available = min(count, bytes.count - frameStart)
        guard count >= 14, count <= limit, available >= 14, var frame = bytes.run(frameStart, available) else {
            throw .frameSize(count, limit: limit)
        }
        var header: VirtioNetHeader
        do {
            header = try TransmitOffload.header(for: &frame, frameLength: count, checksumInfo: info.checksum,
                                                largeSendInfo: info.largeSend)
        } catch {
            throw .offload(error)
        }
        if let vlan = info.vlan {
            // PPI bits: 0-2 priority, 3 CFI, 4-15 VLAN id; the TCI is priority:3 CFI:1 id:12.
            let tci = UInt16(truncatingIfNeeded: (vlan & 0x7) << 13 | (vlan >> 3 & 1) << 12 | (vlan >> 4 & 0xFFF))
            frame.insert(contentsOf: [0x81, 0x00, UInt8(tci >> 8), UInt8(tci & 0xFF)], at: 12)
            header.shift(by: 4)
        }
        return (TransmitFrame(header: header, frame: frame), frameStart - start + available ..< frameStart - start + count)
    }

    /// Walks the PPI elements in `bytes[start ..< start + length]` (internal ones are skipped).
    private func packetInfo(in bytes: [UInt8], start: Int, length: Int) throws(RNDISPacketError) -> PacketInfo {
        var position = start
        let end = start + length
        var info = PacketInfo()
        while position < end {
            let size = bytes.u32(position), type = bytes.u32(position + 4), dataOffset = bytes.u32(position + 8)
            guard end - position >= Self.ppiHeaderSize, Int(size) >= Self.ppiHeaderSize, Int(size) <= end - position,
                  Int(dataOffset) >= Self.ppiHeaderSize, dataOffset <= size else {
                throw .malformedPPI(at: position - start, size: size, dataOffset: dataOffset)
            }
            if size - dataOffset >= 4 {
                let value = bytes.u32(position + Int(dataOffset))
                switch type {
                case Self.vlanPPIType: info.vlan = value
                case Self.checksumPPIType: info.checksum = value
                case Self.largeSendPPIType: info.largeSend = value
                default: break
                }
            }
            position += Int(size)
        }
        return info
    }
}
