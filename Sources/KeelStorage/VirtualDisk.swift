/// What the guest is told about one virtual disk: size, block sizes, write protection, identity
/// and whether it supports UNMAP (thin provisioning). Values are normalised on construction so
/// the emulation never has to re-check them.
public struct VirtualDiskGeometry: Sendable, Equatable {
    public let sizeBytes: UInt64
    /// 512 or 4096.
    public let logicalBlockSize: Int
    /// A power-of-two multiple of the logical block size (the guest aligns I/O to it).
    public let physicalBlockSize: Int
    public let readOnly: Bool
    /// Printable ASCII, at most 64 characters (VPD 0x80; also seeds the VPD 0x83 identifiers).
    public let serial: String
    public let supportsUnmap: Bool
    /// INQUIRY vendor (8), product (16) and revision (4) fields, space padded.
    public let vendor: String
    public let product: String
    public let revision: String

    public init(sizeBytes: UInt64, logicalBlockSize: Int = 512, physicalBlockSize: Int = 4096, readOnly: Bool = false,
                serial: String = "", supportsUnmap: Bool = false, vendor: String = "Msft    ",
                product: String = "Virtual Disk    ", revision: String = "1.0 ") {
        self.sizeBytes = sizeBytes
        let logical = logicalBlockSize == 4096 ? 4096 : 512
        self.logicalBlockSize = logical
        let ratio = physicalBlockSize / logical
        let validPhysical = physicalBlockSize % logical == 0 && ratio > 0 && ratio.nonzeroBitCount == 1 && ratio <= 1 << 15
        self.physicalBlockSize = validPhysical ? physicalBlockSize : logical
        self.readOnly = readOnly
        let cleaned = serial.utf8.prefix(64).map { (0x21...0x7E).contains($0) ? $0 : UInt8(ascii: "_") }
        self.serial = String(decoding: cleaned, as: UTF8.self)
        self.supportsUnmap = supportsUnmap
        self.vendor = String(decoding: fixedASCII(vendor, width: 8), as: UTF8.self)
        self.product = String(decoding: fixedASCII(product, width: 16), as: UTF8.self)
        self.revision = String(decoding: fixedASCII(revision, width: 4), as: UTF8.self)
    }

    /// log2 of the logical block size.
    var blockShift: Int { logicalBlockSize.trailingZeroBitCount }

    /// Number of logical blocks (the size rounded down).
    public var blockCount: UInt64 { sizeBytes >> UInt64(blockShift) }

    /// The last LBA, as READ CAPACITY reports it (0 for a disk smaller than one block).
    public var lastLBA: UInt64 { blockCount == 0 ? 0 : blockCount - 1 }

    /// log2(physical / logical): READ CAPACITY(16) byte 13.
    var physicalBlockExponent: UInt8 { UInt8((physicalBlockSize / logicalBlockSize).trailingZeroBitCount) }

    /// Logical blocks per physical block (optimal granularity).
    var blocksPerPhysicalBlock: Int { physicalBlockSize / logicalBlockSize }

    /// A stable 64-bit identifier derived from the serial (FNV-1a), for NAA designators.
    var identifierHash: UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in serial.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
