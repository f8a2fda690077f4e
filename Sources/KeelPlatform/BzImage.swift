/// Why a kernel image was rejected.
public enum BzImageError: Error, CustomStringConvertible, Equatable {
    case truncated(size: Int, needed: Int)
    case missingBootFlag(found: UInt16)
    case missingHeaderSignature
    case protocolTooOld(major: UInt8, minor: UInt8)
    case no64BitEntry
    case headerTooShort(end: Int)

    public var description: String {
        switch self {
        case let .truncated(size, needed):
            "kernel image truncated: \(size) bytes, header requires at least \(needed)"
        case let .missingBootFlag(found):
            "not a bzImage: boot flag at 0x1FE is \(hex(found)), expected 0xAA55"
        case .missingHeaderSignature:
            "not a bzImage: missing HdrS signature at 0x202"
        case let .protocolTooOld(major, minor):
            "boot protocol \(major).\(minor < 10 ? "0" : "")\(minor) too old: Keel needs 2.12 or newer"
        case .no64BitEntry:
            "kernel does not support the 64-bit boot entry (XLF_KERNEL_64 clear in xloadflags)"
        case let .headerTooShort(end):
            "setup header ends at \(hex(end)), too short for boot protocol 2.12 fields"
        }
    }
}

/// A parsed Linux x86 bzImage (boot protocol ≥ 2.12 with a 64-bit entry point). Keeps the whole
/// file; `kernelRange` is the protected-mode kernel to copy to `BootLayout.kernelLoadAddress`.
/// Field offsets follow Documentation/arch/x86/boot.rst.
public struct BzImage: Sendable {
    /// Offsets of setup header fields in the image (and in the zero page, which shares them).
    enum Offset {
        static let setupSects = 0x1F1
        static let syssize = 0x1F4
        static let bootFlag = 0x1FE
        static let jump = 0x200
        static let header = 0x202
        static let version = 0x206
        static let typeOfLoader = 0x210
        static let loadflags = 0x211
        static let ramdiskImage = 0x218
        static let ramdiskSize = 0x21C
        static let heapEndPtr = 0x224
        static let cmdLinePtr = 0x228
        static let initrdAddrMax = 0x22C
        static let kernelAlignment = 0x230
        static let relocatableKernel = 0x234
        static let xloadflags = 0x236
        static let cmdlineSize = 0x238
        static let prefAddress = 0x258
        static let initSize = 0x260
        /// First byte after the init_size field: a 2.12 header must reach at least here.
        static let minimumHeaderEnd = 0x264
        /// `edd_mbr_sig_buffer` follows the setup header in `boot_params`; never copy past it.
        static let zeroPageHeaderLimit = 0x290
    }

    /// loadflags bits.
    public enum LoadFlags {
        public static let loadedHigh: UInt8 = 0x01
        public static let keepSegments: UInt8 = 0x40
        public static let canUseHeap: UInt8 = 0x80
    }

    /// xloadflags bits.
    public enum XLoadFlags {
        public static let kernel64: UInt16 = 0x01
        public static let canBeLoadedAbove4G: UInt16 = 0x02
    }

    public static let headerSignature: UInt32 = 0x5372_6448  // "HdrS"
    public static let bootFlagValue: UInt16 = 0xAA55
    public static let minimumProtocol: UInt16 = 0x020C

    /// The whole image file.
    public let bytes: [UInt8]
    /// Number of 512-byte setup sectors after the boot sector (a stored 0 means 4).
    public let setupSects: Int
    /// Boot protocol version, e.g. 0x020F for 2.15.
    public let protocolVersion: UInt16
    public let loadflags: UInt8
    public let xloadflags: UInt16
    public let kernelAlignment: UInt32
    public let relocatable: Bool
    public let prefAddress: UInt64
    /// Linear memory the kernel needs from its load address before it can relocate itself.
    public let initSize: UInt32
    /// Maximum command line length, excluding the terminating NUL.
    public let cmdlineSize: UInt32
    /// Highest address the initrd's last byte may occupy.
    public let initrdAddrMax: UInt32
    /// Where the setup header ends (0x202 + the byte at 0x201), capped at the zero page's limit.
    public let setupHeaderEnd: Int

    public init(_ bytes: [UInt8]) throws(BzImageError) {
        guard bytes.count >= Offset.zeroPageHeaderLimit else {
            throw .truncated(size: bytes.count, needed: Offset.zeroPageHeaderLimit)
        }
        let flag = bytes.u16(at: Offset.bootFlag)
        guard flag == Self.bootFlagValue else { throw .missingBootFlag(found: flag) }
        guard bytes.u32(at: Offset.header) == Self.headerSignature else { throw .missingHeaderSignature }
        let version = bytes.u16(at: Offset.version)
        guard version >= Self.minimumProtocol else {
            throw .protocolTooOld(major: UInt8(version >> 8), minor: UInt8(version & 0xFF))
        }
        let headerEnd = min(0x202 + Int(bytes[Offset.jump + 1]), Offset.zeroPageHeaderLimit)
        guard headerEnd >= Offset.minimumHeaderEnd else { throw .headerTooShort(end: headerEnd) }
        let xflags = bytes.u16(at: Offset.xloadflags)
        guard xflags & XLoadFlags.kernel64 != 0 else { throw .no64BitEntry }

        let sects = bytes[Offset.setupSects] == 0 ? 4 : Int(bytes[Offset.setupSects])
        let kernelOffset = (sects + 1) * 512
        // syssize counts 16-byte paragraphs of protected-mode code; a file shorter than that is cut.
        let kernelSize = Int(bytes.u32(at: Offset.syssize)) * 16
        let needed = kernelOffset + max(kernelSize, 1)
        guard bytes.count >= needed else { throw .truncated(size: bytes.count, needed: needed) }

        self.bytes = bytes
        setupSects = sects
        protocolVersion = version
        loadflags = bytes[Offset.loadflags]
        xloadflags = xflags
        kernelAlignment = bytes.u32(at: Offset.kernelAlignment)
        relocatable = bytes[Offset.relocatableKernel] != 0
        prefAddress = bytes.u64(at: Offset.prefAddress)
        initSize = bytes.u32(at: Offset.initSize)
        cmdlineSize = bytes.u32(at: Offset.cmdlineSize)
        initrdAddrMax = bytes.u32(at: Offset.initrdAddrMax)
        setupHeaderEnd = headerEnd
    }

    /// File offset of the protected-mode kernel: (setup_sects + 1) * 512.
    public var kernelOffset: Int { (setupSects + 1) * 512 }

    /// File range of the protected-mode kernel (to the end of the file).
    public var kernelRange: Range<Int> { kernelOffset..<bytes.count }

    /// The protected-mode kernel bytes, to copy to the load address.
    public var kernel: ArraySlice<UInt8> { bytes[kernelRange] }

    /// The setup header as it must be copied into the zero page at 0x1F1.
    public var setupHeader: ArraySlice<UInt8> { bytes[Offset.setupSects..<setupHeaderEnd] }

    /// One past the highest address the kernel may use while decompressing, when loaded at
    /// `loadAddress`. The decompressor works in `init_size` bytes starting at the (aligned, if
    /// relocatable) load address or at `pref_address` (LOAD_PHYSICAL_ADDR), whichever is higher.
    public func kernelEnd(loadAddress: UInt64) -> UInt64 {
        let start = relocatable ? alignUp(loadAddress, UInt64(kernelAlignment)) : loadAddress
        return max(start, prefAddress) + UInt64(initSize)
    }
}
