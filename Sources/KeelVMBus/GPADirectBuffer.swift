import KeelSystem

/// Why the page ranges of a GPA-direct packet were refused. The guest wrote every field.
public enum GPADirectError: Error, Sendable, Equatable {
    /// The packet is not `VM_PKT_DATA_USING_GPA_DIRECT` (type 9).
    case wrongPacketType(UInt16)
    /// The descriptor's data offset lies outside the packet.
    case malformedPacket
    /// The header ends before the field (or PFN list) it announces.
    case truncatedHeader(needed: Int, available: Int)
    /// The range count is zero.
    case noRanges
    case tooManyRanges(count: Int, limit: Int)
    /// The ranges together name more pages than allowed.
    case tooManyPages(limit: Int)
    /// A range's byte offset is not inside its first page (offset >= 4096, or negative).
    case offsetOutsideFirstPage(range: Int, offset: Int)
    /// A range has a byte count of zero (or one outside 1...UInt32.max).
    case invalidByteCount(range: Int, count: Int)
    /// A range's PFN list length does not match ceil((offset + count) / 4096).
    case pageCountMismatch(range: Int, expected: Int, actual: Int)
    case pfnOutOfRange(range: Int, pfn: UInt64, limit: UInt64)
}

/// The data buffer of a `VM_PKT_DATA_USING_GPA_DIRECT` packet: guest-physical page ranges that
/// hold the request's data. storvsc sends one range with many pages, netvsc one range per page;
/// both parse the same way. Pages are always 4 KiB "HV pages"; only a range's first page may
/// start late and only its last may end early. Every field is validated on construction.
public struct GPADirectBuffer: Sendable, Equatable {
    /// One range: `byteCount` bytes starting `byteOffset` bytes into the first of `pfns`.
    public struct Range: Sendable, Equatable {
        public let byteCount: Int
        public let byteOffset: Int
        public let pfns: [UInt64]

        public init(byteCount: Int, byteOffset: Int, pfns: [UInt64]) {
            self.byteCount = byteCount
            self.byteOffset = byteOffset
            self.pfns = pfns
        }
    }

    public static let pageSize = 4096
    public static let defaultMaxRanges = 64
    public static let defaultMaxPages = 1024
    /// 52-bit guest-physical address space.
    public static let defaultMaxPFN: UInt64 = (1 << 40) - 1

    /// Where the validated range list lies (`range_count` ranges from offset 8) in the bytes it
    /// came from (the packet's, shared, not copied); kept only to list the ranges again, the I/O
    /// paths use `segments`.
    private let source: [UInt8]
    private let header: Swift.Range<Int>
    private let rangeCount: Int
    /// The buffer as guest-physical byte segments, physically adjacent pieces merged. Built in
    /// the same pass that validates the header: a large netvsc send has one range per page, and
    /// per-range arrays were most of the transmit path's parsing cost.
    private let segments: [GuestSegment]
    /// Bytes the buffer describes (the sum of the ranges' byte counts).
    public let totalBytes: Int

    /// The ranges as the guest described them.
    public var ranges: [Range] {
        var result: [Range] = []
        var offset = header.lowerBound + 8
        for _ in 0..<rangeCount {
            let byteCount = Int(Self.u32(source, offset))
            let byteOffset = Int(Self.u32(source, offset + 4))
            let pages = Self.pageCount(byteOffset: byteOffset, byteCount: byteCount)
            let pfns = (0..<pages).map { Self.u64(source, offset + 8 + 8 * $0) }
            result.append(Range(byteCount: byteCount, byteOffset: byteOffset, pfns: pfns))
            offset += 8 + 8 * pages
        }
        return result
    }

    /// Parses the ranges in the header of a type-9 packet (between descriptor and data offset):
    /// `reserved u32, range_count u32`, then per range `byte_count u32, byte_offset u32,
    /// pfn u64[ceil((byte_offset + byte_count) / 4096)]`. Bytes after the last range are ignored.
    public init(packet: VMBusPacket, maxRanges: Int = defaultMaxRanges, maxPages: Int = defaultMaxPages,
                maxPFN: UInt64 = defaultMaxPFN) throws(GPADirectError) {
        guard packet.rawType == VMBusPacketType.dataUsingGPADirect.rawValue else {
            throw .wrongPacketType(packet.rawType)
        }
        guard packet.hasValidDataOffset else { throw .malformedPacket }
        try self.init(parsing: packet.bytes, in: VMBusPacket.descriptorSize..<packet.dataOffset, maxRanges: maxRanges,
                      maxPages: maxPages, maxPFN: maxPFN)
    }

    /// Builds a buffer from ranges, with the same checks as parsing (for tests and guest models).
    public init(ranges: [Range], maxRanges: Int = defaultMaxRanges, maxPages: Int = defaultMaxPages,
                maxPFN: UInt64 = defaultMaxPFN) throws(GPADirectError) {
        guard !ranges.isEmpty else { throw .noRanges }
        guard ranges.count <= maxRanges else { throw .tooManyRanges(count: ranges.count, limit: maxRanges) }
        for (index, range) in ranges.enumerated() {
            try Self.checkShape(index: index, byteCount: range.byteCount, byteOffset: range.byteOffset)
            let expected = Self.pageCount(byteOffset: range.byteOffset, byteCount: range.byteCount)
            guard range.pfns.count == expected else {
                throw .pageCountMismatch(range: index, expected: expected, actual: range.pfns.count)
            }
        }
        let bytes = Self.encode(ranges)
        try self.init(parsing: bytes, in: 0..<bytes.count, maxRanges: maxRanges, maxPages: maxPages, maxPFN: maxPFN)
    }

    /// Validates `bytes[span]` (a range list as in a type-9 packet) and merges its pages into
    /// segments, in one pass; every read is bounds-checked first.
    private init(parsing bytes: [UInt8], in span: Swift.Range<Int>, maxRanges: Int, maxPages: Int,
                 maxPFN: UInt64) throws(GPADirectError) {
        let start = span.lowerBound
        let available = span.count
        guard available >= 8 else { throw .truncatedHeader(needed: 8, available: available) }
        let count = Int(Self.u32(bytes, start + 4))
        guard count > 0 else { throw .noRanges }
        guard count <= maxRanges else { throw .tooManyRanges(count: count, limit: maxRanges) }
        let pfnLimit = min(maxPFN, UInt64.max >> 12)
        var segments: [GuestSegment] = []
        segments.reserveCapacity(count)
        // The segment being grown: pages join it while each starts where the last ended.
        var runAddress: UInt64 = 0
        var runLength = 0
        var offset = 8
        var pages = 0
        var total = 0
        for index in 0..<count {
            guard available - offset >= 8 else { throw .truncatedHeader(needed: offset + 8, available: available) }
            let byteCount = Int(Self.u32(bytes, start + offset))
            let byteOffset = Int(Self.u32(bytes, start + offset + 4))
            try Self.checkShape(index: index, byteCount: byteCount, byteOffset: byteOffset)
            let pageCount = Self.pageCount(byteOffset: byteOffset, byteCount: byteCount)
            guard pageCount <= maxPages - pages else { throw .tooManyPages(limit: maxPages) }
            let needed = offset + 8 + pageCount * 8
            guard available >= needed else { throw .truncatedHeader(needed: needed, available: available) }
            var remaining = byteCount
            var pageOffset = byteOffset
            for page in 0..<pageCount {
                let pfn = Self.u64(bytes, start + offset + 8 + 8 * page)
                guard pfn <= pfnLimit else { throw .pfnOutOfRange(range: index, pfn: pfn, limit: pfnLimit) }
                let length = min(Self.pageSize - pageOffset, remaining)
                let address = pfn << 12 | UInt64(pageOffset)
                if runLength > 0, runAddress &+ UInt64(runLength) == address {
                    runLength += length
                } else {
                    if runLength > 0 { segments.append(GuestSegment(address: runAddress, length: runLength)) }
                    (runAddress, runLength) = (address, length)
                }
                remaining -= length
                pageOffset = 0
            }
            pages += pageCount
            total += byteCount
            offset = needed
        }
        segments.append(GuestSegment(address: runAddress, length: runLength))
        (source, header, rangeCount) = (bytes, start..<start + offset, count)
        (self.segments, totalBytes) = (segments, total)
    }

    /// Equal when they describe the same ranges (whatever packet bytes they came from).
    public static func == (lhs: GPADirectBuffer, rhs: GPADirectBuffer) -> Bool {
        lhs.rangeCount == rhs.rangeCount
            && lhs.source[lhs.header.dropFirst(8)].elementsEqual(rhs.source[rhs.header.dropFirst(8)])
    }

    /// The guest-physical byte segments of the buffer in order, physically adjacent pieces merged:
    /// what an I/O path turns into an iovec.
    public func guestSegments() -> [GuestSegment] { segments }

    /// The segments holding bytes `offset ..< offset + length` of the buffer; nil if that is not
    /// inside the buffer. An empty sub-range gives no segments.
    public func segments(from offset: Int, length: Int) -> [GuestSegment]? {
        let total = totalBytes
        guard offset >= 0, length >= 0, offset <= total, length <= total - offset else { return nil }
        var result: [GuestSegment] = []
        var skip = offset
        var remaining = length
        for segment in segments where remaining > 0 {
            if skip >= segment.length {
                skip -= segment.length
                continue
            }
            let take = min(segment.length - skip, remaining)
            result.append(GuestSegment(address: segment.address + UInt64(skip), length: take))
            remaining -= take
            skip = 0
        }
        return result
    }

    /// The packet header for these ranges (what `init(packet:)` parses).
    public func encodedHeader() -> [UInt8] { [0, 0, 0, 0] + source[header.dropFirst(4)] }

    private static func encode(_ ranges: [Range]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(0)
        w.u32(UInt32(truncatingIfNeeded: ranges.count))
        for range in ranges {
            w.u32(UInt32(truncatingIfNeeded: range.byteCount))
            w.u32(UInt32(truncatingIfNeeded: range.byteOffset))
            for pfn in range.pfns { w.u64(pfn) }
        }
        return w.bytes
    }

    /// A type-9 packet carrying these ranges and `payload` (as a guest would send it).
    public func packet(flags: UInt16 = 1, transactionID: UInt64, payload: [UInt8]) -> VMBusPacket {
        VMBusPacket(type: .dataUsingGPADirect, flags: flags, transactionID: transactionID,
                    header: encodedHeader(), payload: payload)
    }

    private static func checkShape(index: Int, byteCount: Int, byteOffset: Int) throws(GPADirectError) {
        guard byteCount > 0, byteCount <= Int(UInt32.max) else { throw .invalidByteCount(range: index, count: byteCount) }
        guard byteOffset >= 0, byteOffset < pageSize else {
            throw .offsetOutsideFirstPage(range: index, offset: byteOffset)
        }
    }

    private static func pageCount(byteOffset: Int, byteCount: Int) -> Int {
        (byteOffset + byteCount + pageSize - 1) / pageSize
    }

    /// Little-endian fields of the packet (the caller checked the bounds).
    private static func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 { bytes.littleEndian(UInt32.self, at: at) }

    private static func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 { bytes.littleEndian(UInt64.self, at: at) }
}
