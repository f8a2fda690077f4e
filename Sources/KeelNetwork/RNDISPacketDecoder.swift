/// Why a guest RNDIS PACKET message was dropped. Every field was written by the guest.
enum RNDISPacketError: Error, Equatable, CustomStringConvertible {
    case truncated(length: Int)
    case dataOutsideMessage(offset: UInt32, length: UInt32, messageLength: Int)
    case oobOutsideMessage(offset: UInt32, length: UInt32)
    case ppiOutsideMessage(offset: UInt32, length: UInt32)
    case malformedPPI(at: Int, size: UInt32, dataOffset: UInt32)
    case frameSize(Int, limit: Int)

    var description: String {
        switch self {
        case .truncated(let length): "RNDIS PACKET of \(length) bytes is shorter than its 44-byte header"
        case .dataOutsideMessage(let offset, let length, let messageLength):
            "RNDIS PACKET data offset \(offset) length \(length) outside its \(messageLength)-byte message"
        case .oobOutsideMessage(let offset, let length): "RNDIS PACKET OOB data offset \(offset) length \(length) outside the message"
        case .ppiOutsideMessage(let offset, let length): "RNDIS PACKET PPI offset \(offset) length \(length) outside the message"
        case .malformedPPI(let at, let size, let dataOffset): "malformed PPI at byte \(at): size \(size), offset \(dataOffset)"
        case .frameSize(let size, let limit): "Ethernet frame of \(size) bytes outside 14...\(limit)"
        }
    }
}

/// Decodes guest → host RNDIS PACKET messages into Ethernet frames. All offsets in the 36-byte
/// body are relative to the body (byte 8 of the message). PPIs are walked and validated; an
/// IEEE 802.1Q PPI (type 6) is applied by inserting the tag into the frame. Checksum, LSO and
/// hash PPIs are ignored: no offload is advertised, so the guest completes its own checksums.
struct RNDISPacketDecoder {
    static let bodySize = 36
    static let ppiHeaderSize = 12
    static let vlanPPIType: UInt32 = 6

    /// Largest untagged frame (MTU + 14); an inline 802.1Q tag may add 4.
    let maxFrameLength: Int

    /// The frame of the PACKET message `bytes[start ..< start + length]` (inside `bytes`).
    func frame(in bytes: [UInt8], start: Int, length: Int) throws(RNDISPacketError) -> [UInt8] {
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
        var vlan: UInt32?
        if ppiLength > 0 {
            guard inside(ppiOffset, ppiLength) else { throw .ppiOutsideMessage(offset: ppiOffset, length: ppiLength) }
            vlan = try vlanInfo(in: bytes, start: body + Int(ppiOffset), length: Int(ppiLength))
        }

        let frameStart = body + Int(dataOffset)
        let count = Int(dataLength)
        let inlineTagged = count >= 16 && bytes.readLE(UInt16.self, at: frameStart + 12) == 0x0081
        let limit = maxFrameLength + (inlineTagged ? 4 : 0)
        guard count >= 14, count <= limit, var frame = bytes.run(frameStart, count) else {
            throw .frameSize(count, limit: limit)
        }
        if let vlan {
            // PPI bits: 0-2 priority, 3 CFI, 4-15 VLAN id; the TCI is priority:3 CFI:1 id:12.
            let tci = UInt16(truncatingIfNeeded: (vlan & 0x7) << 13 | (vlan >> 3 & 1) << 12 | (vlan >> 4 & 0xFFF))
            frame.insert(contentsOf: [0x81, 0x00, UInt8(tci >> 8), UInt8(tci & 0xFF)], at: 12)
        }
        return frame
    }

    /// Walks the PPI elements in `bytes[start ..< start + length]`; returns the 802.1Q info if present.
    private func vlanInfo(in bytes: [UInt8], start: Int, length: Int) throws(RNDISPacketError) -> UInt32? {
        var position = start
        let end = start + length
        var vlan: UInt32?
        while position < end {
            let size = bytes.u32(position), type = bytes.u32(position + 4), dataOffset = bytes.u32(position + 8)
            guard end - position >= Self.ppiHeaderSize, Int(size) >= Self.ppiHeaderSize, Int(size) <= end - position,
                  Int(dataOffset) >= Self.ppiHeaderSize, dataOffset <= size else {
                throw .malformedPPI(at: position - start, size: size, dataOffset: dataOffset)
            }
            if type == Self.vlanPPIType, size - dataOffset >= 4 {
                vlan = bytes.u32(position + Int(dataOffset))
            }
            position += Int(size)
        }
        return vlan
    }
}
