/// The task offloads this host advertises in OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES, and what the
/// guest turned on with OID_TCP_OFFLOAD_PARAMETERS. Keel completes everything it advertises:
/// transmit checksums and large sends (LSOv2) are handed to the TAP as a virtio-net header, so the
/// host kernel finishes them; receive coalescing (RSC) delivers the TAP's large TCP packets as one
/// chain of receive sections, with the checksum reported as verified.
public enum NDISOffload {
    static let objectType: UInt8 = 0xA7
    static let encapsulation8023: UInt32 = 0x2
    /// Transmit checksum capability bits: TCP with options, TCP, UDP (IPv4); IPv6 adds extension headers.
    static let transmitChecksumIPv4: UInt32 = 0x004 | 0x010 | 0x040
    static let transmitChecksumIPv6: UInt32 = 0x001 | 0x004 | 0x010 | 0x040
    /// Receive checksum bits: IPv4 header, TCP, UDP (IPv6: TCP, UDP) are reported when known good.
    static let receiveChecksumIPv4: UInt32 = 0x004 | 0x010 | 0x040 | 0x100
    static let receiveChecksumIPv6: UInt32 = 0x001 | 0x004 | 0x010 | 0x040
    /// LSOv2 IPv6 options: extension headers and TCP options.
    static let largeSendIPv6Options: UInt32 = 0x001 | 0x004
    /// Largest large-send packet (Ethernet header included) the guest may hand over.
    public static let maxLargeSendSize = 64000
    static let minSegments: UInt32 = 2

    /// NDIS_OFFLOAD sizes: revision 1 (NDIS 6.0), 2 (6.1, IPsec v2), 3 (6.30, RSC).
    static let sizeRevision1 = 112
    static let sizeRevision2 = 144
    static let sizeRevision3 = 156

    /// The NDIS_OFFLOAD object for a guest that negotiated `nvspVersion`: revision 3 on NVSP 5+,
    /// which is the only one that can carry receive coalescing.
    static func capabilities(nvspVersion: UInt32) -> [UInt8] {
        let (revision, size): (UInt8, Int) = nvspVersion >= NVSPVersion.v5 ? (3, sizeRevision3)
            : nvspVersion >= NVSPVersion.v4 ? (2, sizeRevision2) : (1, sizeRevision1)
        var w = LEWriter(capacity: size)
        w.u8(objectType)
        w.u8(revision)
        w.u16(UInt16(size))
        // Checksum: IPv4 tx/rx encapsulation + capabilities, then IPv6.
        for value in [encapsulation8023, transmitChecksumIPv4, encapsulation8023, receiveChecksumIPv4,
                      encapsulation8023, transmitChecksumIPv6, encapsulation8023, receiveChecksumIPv6] { w.u32(value) }
        w.zeros(16)   // LSOv1: none
        w.zeros(28)   // IPsec v1: none
        // LSOv2: IPv4 encapsulation, max size, min segments; IPv6 the same plus options.
        for value in [encapsulation8023, UInt32(maxLargeSendSize), minSegments,
                      encapsulation8023, UInt32(maxLargeSendSize), minSegments, largeSendIPv6Options] { w.u32(value) }
        w.u32(0)      // flags
        if revision >= 2 { w.zeros(sizeRevision2 - sizeRevision1) }   // IPsec v2: none
        if revision >= 3 {
            w.u8(1)   // RSC IPv4
            w.u8(1)   // RSC IPv6
            w.zeros(sizeRevision3 - sizeRevision2 - 2)   // padding, GRE encapsulation: none
        }
        return w.bytes
    }
}

/// The offloads the guest enabled (OID_TCP_OFFLOAD_PARAMETERS). Transmit offloads need no state:
/// each packet says what it wants in its PPIs. Everything starts off until the guest sets it.
public struct OffloadSettings: Sendable, Equatable {
    /// Received IPv4/IPv6 frames may carry "checksum verified" PPIs.
    public var receiveChecksumIPv4 = false
    public var receiveChecksumIPv6 = false
    /// Large received TCP packets may be delivered coalesced (RSC).
    public var coalesceIPv4 = false
    public var coalesceIPv6 = false

    public init() {}

    /// Whether receive coalescing is on for either IP version (the TAP then hands over large packets).
    public var coalescing: Bool { coalesceIPv4 || coalesceIPv6 }

    /// Applies an NDIS_OFFLOAD_PARAMETERS object: 0 = no change; checksum fields 1 off, 2 transmit
    /// only, 3 receive only, 4 both; RSC fields 1 off, 2 on. False if it is too short to be one.
    mutating func apply(_ data: [UInt8]) -> Bool {
        guard data.count >= 8 else { return false }
        func checksum(_ value: UInt8, _ current: Bool) -> Bool {
            switch value {
            case 1, 2: false
            case 3, 4: true
            default: current
            }
        }
        func toggle(_ value: UInt8, _ current: Bool) -> Bool {
            switch value {
            case 1: false
            case 2: true
            default: current
            }
        }
        receiveChecksumIPv4 = checksum(data[5], receiveChecksumIPv4)
        receiveChecksumIPv6 = checksum(data[7], receiveChecksumIPv6)
        if data.count >= 24 {
            coalesceIPv4 = toggle(data[22], coalesceIPv4)
            coalesceIPv6 = toggle(data[23], coalesceIPv6)
        }
        return true
    }
}

/// RFC 1071 one's-complement sums over big-endian 16-bit words.
enum InternetChecksum {
    /// Adds `bytes[range]` to `initial` (an odd final byte is padded with zero).
    static func add(_ bytes: [UInt8], _ range: Range<Int>, to initial: UInt64 = 0) -> UInt64 {
        var sum = initial
        var i = range.lowerBound
        let end = range.upperBound
        // Eight bytes per load, summed as two big-endian 32-bit words: folding the sum later
        // gives the same 16-bit one's-complement sum, and 64 KiB cannot overflow 64 bits.
        while end - i >= 8 {
            let word = bytes.littleEndian(UInt64.self, at: i).byteSwapped
            sum &+= (word >> 32) &+ (word & 0xFFFF_FFFF)
            i += 8
        }
        while end - i >= 2 {
            sum &+= UInt64(bytes.littleEndian(UInt16.self, at: i).byteSwapped)
            i += 2
        }
        if i < end { sum &+= UInt64(bytes[i]) << 8 }
        return sum
    }

    /// Folds a sum to 16 bits (not complemented).
    static func fold(_ sum: UInt64) -> UInt16 {
        var s = sum
        while s >> 16 != 0 { s = (s & 0xFFFF) &+ (s >> 16) }
        return UInt16(s)
    }

    /// The pseudo-header sum for a TCP/UDP segment of `length` bytes: IPv4 (addresses at
    /// `ipStart + 12`) or IPv6 (addresses at `ipStart + 8`).
    static func pseudoHeader(_ frame: [UInt8], ipStart: Int, ipv6: Bool, protocolNumber: UInt8, length: Int) -> UInt64 {
        let addresses = ipv6 ? ipStart + 8 ..< ipStart + 40 : ipStart + 12 ..< ipStart + 20
        return add(frame, addresses, to: UInt64(protocolNumber) + UInt64(length))
    }

    static func store(_ value: UInt16, in frame: inout [UInt8], at offset: Int) {
        frame[offset] = UInt8(value >> 8)
        frame[offset + 1] = UInt8(value & 0xFF)
    }

    /// Recomputes an IPv4 header checksum in place.
    static func fillIPv4Header(_ frame: inout [UInt8], ipStart: Int, headerLength: Int) {
        store(0, in: &frame, at: ipStart + 10)
        store(~fold(add(frame, ipStart..<ipStart + headerLength)), in: &frame, at: ipStart + 10)
    }
}
