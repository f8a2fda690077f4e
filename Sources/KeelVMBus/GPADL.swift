/// A guest physical address descriptor list: guest pages named by a guest-chosen handle, used
/// for ring buffers and device buffers. Every PFN was checked against guest RAM on creation.
public struct GPADL: Sendable, Equatable {
    /// One range: `byteCount` bytes starting `byteOffset` bytes into the first page.
    public struct Range: Sendable, Equatable {
        public let byteCount: UInt32
        public let byteOffset: UInt32
        public let pfns: [UInt64]

        public init(byteCount: UInt32, byteOffset: UInt32, pfns: [UInt64]) {
            self.byteCount = byteCount
            self.byteOffset = byteOffset
            self.pfns = pfns
        }
    }

    public let handle: UInt32
    /// The channel the guest created it for.
    public let relid: UInt32
    public let ranges: [Range]

    public init(handle: UInt32, relid: UInt32, ranges: [Range]) {
        self.handle = handle
        self.relid = relid
        self.ranges = ranges
    }

    /// Number of pages over all ranges.
    public var pageCount: Int { ranges.reduce(0) { $0 + $1.pfns.count } }

    /// The page-aligned guest-physical addresses of a single whole-page range at offset 0 (the
    /// shape of a ring-buffer GPADL); nil for any other shape.
    public var wholePageAddresses: [UInt64]? {
        guard ranges.count == 1, let range = ranges.first, range.byteOffset == 0,
              UInt64(range.byteCount) == UInt64(range.pfns.count) * VMBusPage.size
        else { return nil }
        return range.pfns.map { $0 << VMBusPage.shift }
    }
}

/// Page-size constants of the VMBus protocol (always 4 KiB, whatever the guest's page size).
public enum VMBusPage {
    public static let size: UInt64 = 4096
    public static let shift: UInt64 = 12
    /// The largest PFN whose page address fits in 64 bits.
    public static let maxPFN: UInt64 = UInt64.max >> shift
}
