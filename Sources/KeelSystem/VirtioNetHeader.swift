/// The 10-byte `struct virtio_net_hdr` a TAP opened with IFF_VNET_HDR puts before every frame
/// (little-endian on x86). It is how the host kernel finishes a checksum or segments a large
/// packet for us on transmit, and tells us the same about what it hands over on receive.
public struct VirtioNetHeader: Sendable, Equatable {
    public static let size = 10
    /// flags
    public static let needsChecksum: UInt8 = 1
    public static let dataValid: UInt8 = 2
    /// gso_type
    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoTCPv6: UInt8 = 4

    public var flags: UInt8 = 0
    public var gsoType: UInt8 = 0
    /// Bytes of headers up to the end of the TCP header (GSO only).
    public var headerLength: UInt16 = 0
    /// MSS of each segment (GSO only).
    public var segmentSize: UInt16 = 0
    /// Where the one's-complement sum starts and where (relative to that) it is stored.
    public var checksumStart: UInt16 = 0
    public var checksumOffset: UInt16 = 0

    public init(flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, segmentSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags
        self.gsoType = gsoType
        self.headerLength = headerLength
        self.segmentSize = segmentSize
        self.checksumStart = checksumStart
        self.checksumOffset = checksumOffset
    }

    /// The header as it goes on the wire.
    public var bytes: [UInt8] {
        var bytes = [UInt8](zeros: Self.size)
        bytes.withUnsafeMutableBytes { if let base = $0.baseAddress { store(at: base) } }
        return bytes
    }

    /// Reads the header at `p` (10 bytes, any alignment).
    init(at p: UnsafeRawPointer) {
        func u16(_ at: Int) -> UInt16 { UInt16(littleEndian: p.loadUnaligned(fromByteOffset: at, as: UInt16.self)) }
        self.init(flags: p.load(as: UInt8.self), gsoType: p.load(fromByteOffset: 1, as: UInt8.self), headerLength: u16(2),
                  segmentSize: u16(4), checksumStart: u16(6), checksumOffset: u16(8))
    }

    /// Writes the header at `p` (10 bytes, any alignment).
    func store(at p: UnsafeMutableRawPointer) {
        p.storeBytes(of: flags, as: UInt8.self)
        p.storeBytes(of: gsoType, toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: headerLength.littleEndian, toByteOffset: 2, as: UInt16.self)
        p.storeBytes(of: segmentSize.littleEndian, toByteOffset: 4, as: UInt16.self)
        p.storeBytes(of: checksumStart.littleEndian, toByteOffset: 6, as: UInt16.self)
        p.storeBytes(of: checksumOffset.littleEndian, toByteOffset: 8, as: UInt16.self)
    }
}
