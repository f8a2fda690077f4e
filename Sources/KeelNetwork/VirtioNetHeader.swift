import KeelSystem

extension VirtioNetHeader {
    /// Shifts the offsets after an 802.1Q tag of `count` bytes was inserted before them.
    mutating func shift(by count: Int) {
        if flags & Self.needsChecksum != 0 { checksumStart &+= UInt16(count) }
        if headerLength != 0 { headerLength &+= UInt16(count) }
    }
}

/// Why a guest's transmit offload request could not be honoured (the frame is dropped).
enum TransmitOffloadError: Error, Equatable, CustomStringConvertible {
    case checksumOutsideFrame(start: Int, frameLength: Int)
    case largeSendNotTCP(detail: String)

    var description: String {
        switch self {
        case .checksumOutsideFrame(let start, let length):
            "checksum offload at byte \(start) outside a \(length)-byte frame"
        case .largeSendNotTCP(let detail): "large send offload on a frame that is not plain TCP: \(detail)"
        }
    }
}

/// Turns a guest frame and its RNDIS checksum / LSO PPIs into what the TAP needs: the virtio-net
/// header and, for a large send, the header fields Linux leaves for the host (IP length and
/// header checksum, the TCP pseudo-header sum for the full length).
enum TransmitOffload {
    /// Checksum PPI (transmit) bits.
    static let checksumIPv6: UInt32 = 1 << 1
    static let checksumTCP: UInt32 = 1 << 2
    static let checksumUDP: UInt32 = 1 << 3
    static let checksumIPHeader: UInt32 = 1 << 4

    /// `frame` holds the frame's first bytes (all of it, or a prefix with its headers);
    /// `frameLength` is the whole frame's.
    static func header(for frame: inout [UInt8], frameLength: Int, checksumInfo: UInt32?, largeSendInfo: UInt32?)
        throws(TransmitOffloadError) -> VirtioNetHeader {
        if let largeSendInfo { return try largeSend(&frame, frameLength: frameLength, info: largeSendInfo) }
        guard let info = checksumInfo else { return VirtioNetHeader() }
        let start = Int(info >> 16 & 0x3FF)
        let ipv6 = info & checksumIPv6 != 0
        if !ipv6, info & checksumIPHeader != 0, let ip = ipv4Header(frame) {
            InternetChecksum.fillIPv4Header(&frame, ipStart: ip.start, headerLength: ip.length)
        }
        let field: Int
        if info & checksumTCP != 0 { field = 16 } else if info & checksumUDP != 0 { field = 6 } else {
            return VirtioNetHeader()
        }
        guard start >= 14, start + field + 2 <= frameLength else {
            throw .checksumOutsideFrame(start: start, frameLength: frameLength)
        }
        return VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, checksumStart: UInt16(start),
                               checksumOffset: UInt16(field))
    }

    /// LSOv2 PPI: bits 0-19 MSS, 20-29 TCP header offset, 31 IPv6.
    private static func largeSend(_ frame: inout [UInt8], frameLength: Int, info: UInt32) throws(TransmitOffloadError) -> VirtioNetHeader {
        let mss = Int(info & 0xFFFFF), tcpStart = Int(info >> 20 & 0x3FF), ipv6 = info >> 31 == 1
        let ipStart = frame.networkHeaderStart
        let etherType = frame.littleEndian(UInt16.self, at: ipStart - 2).byteSwapped
        guard etherType == (ipv6 ? 0x86DD : 0x0800) else {
            throw .largeSendNotTCP(detail: "EtherType 0x\(String(etherType, radix: 16)) for IPv\(ipv6 ? 6 : 4)")
        }
        guard mss > 0, mss <= 0xFFFF, tcpStart + 20 <= frame.count else {
            throw .largeSendNotTCP(detail: "MSS \(mss), TCP header at \(tcpStart) of \(frame.count) bytes")
        }
        let tcpHeaderLength = Int(frame[tcpStart + 12] >> 4) * 4
        guard tcpHeaderLength >= 20, tcpStart + tcpHeaderLength <= frame.count else {
            throw .largeSendNotTCP(detail: "TCP header of \(tcpHeaderLength) bytes at \(tcpStart)")
        }
        if ipv6 {
            guard tcpStart >= ipStart + 40 else { throw .largeSendNotTCP(detail: "TCP header inside the IPv6 header") }
            InternetChecksum.store(UInt16(clamping: frameLength - ipStart - 40), in: &frame, at: ipStart + 4)
        } else {
            guard let ip = ipv4Header(frame), ip.start + ip.length == tcpStart, frame[ipStart + 9] == 6,
                  frameLength - ipStart <= 0xFFFF else {
                throw .largeSendNotTCP(detail: "IPv4 header does not end at the TCP header (byte \(tcpStart))")
            }
            InternetChecksum.store(UInt16(frameLength - ipStart), in: &frame, at: ipStart + 2)
            InternetChecksum.fillIPv4Header(&frame, ipStart: ip.start, headerLength: ip.length)
        }
        let pseudo = InternetChecksum.pseudoHeader(frame, ipStart: ipStart, ipv6: ipv6, protocolNumber: 6,
                                                   length: frameLength - tcpStart)
        InternetChecksum.store(InternetChecksum.fold(pseudo), in: &frame, at: tcpStart + 16)
        let payload = frameLength - tcpStart - tcpHeaderLength
        return VirtioNetHeader(flags: VirtioNetHeader.needsChecksum,
                               gsoType: payload > mss ? (ipv6 ? VirtioNetHeader.gsoTCPv6 : VirtioNetHeader.gsoTCPv4) : 0,
                               headerLength: payload > mss ? UInt16(tcpStart + tcpHeaderLength) : 0,
                               segmentSize: payload > mss ? UInt16(mss) : 0,
                               checksumStart: UInt16(tcpStart), checksumOffset: 16)
    }

    /// The IPv4 header's start and length, if the frame (optionally 802.1Q-tagged) carries one.
    static func ipv4Header(_ frame: [UInt8]) -> (start: Int, length: Int)? {
        let start = frame.networkHeaderStart
        guard frame.count >= start + 20, frame[start - 2] == 0x08, frame[start - 1] == 0x00,
              frame[start] >> 4 == 4 else { return nil }
        let length = Int(frame[start] & 0xF) * 4
        guard length >= 20, start + length <= frame.count else { return nil }
        return (start, length)
    }
}
