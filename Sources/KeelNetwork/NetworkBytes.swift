import KeelSystem
import KeelVMBus

/// Byte-array helpers for NVSP and RNDIS messages. Reads go through `littleEndian(_:at:)`
/// (KeelSystem): bytes past either end read as zero, so a missed length check on guest input
/// can never trap.
extension Array where Element == UInt8 {
    func u32(_ offset: Int) -> UInt32 { littleEndian(UInt32.self, at: offset) }

    /// Stores a little-endian u32 at `offset` (inside the array) of a message being built.
    mutating func storeLE32(_ value: UInt32, at offset: Int) { storeLittleEndian(value, at: offset) }

    /// Where an Ethernet frame's network header starts: 14, or 18 behind an 802.1Q tag.
    var networkHeaderStart: Int { count >= 18 && self[12] == 0x81 && self[13] == 0x00 ? 18 : 14 }

    /// `length` bytes from `offset`, or nil unless the whole run lies inside the array.
    func run(_ offset: Int, _ length: Int) -> [UInt8]? {
        guard offset >= 0, length >= 0, offset <= count, length <= count - offset else { return nil }
        return Array(self[offset..<offset + length])
    }
}

/// A received packet's payload (from its data offset), read in place: every guest packet passes
/// through here, and copying its bytes out would cost an allocation each.
struct PacketPayload {
    private let bytes: [UInt8]
    private let start: Int

    /// Empty unless the packet's data offset lies inside it.
    init(_ packet: VMBusPacket) {
        bytes = packet.hasValidDataOffset ? packet.bytes : []
        start = packet.hasValidDataOffset ? packet.dataOffset : 0
    }

    var count: Int { bytes.count - start }
    /// Fields past the end read as zero, as `[UInt8].littleEndian` does.
    func u32(_ offset: Int) -> UInt32 { bytes.littleEndian(UInt32.self, at: start + offset) }
    func u16(_ offset: Int) -> UInt16 { bytes.littleEndian(UInt16.self, at: start + offset) }
}

/// Little-endian appends, used by the NVSP and RNDIS encoders.
struct LEWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { integer(value) }
    mutating func u32(_ value: UInt32) { integer(value) }
    mutating func append(_ data: [UInt8]) { bytes.append(contentsOf: data) }
    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: Swift.max(0, count))) }
    /// Zero-pads to a multiple of `alignment` bytes.
    mutating func align(_ alignment: Int) { zeros((alignment - bytes.count % alignment) % alignment) }

    private mutating func integer<T: FixedWidthInteger>(_ value: T) {
        for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }
}

/// The guest pages of a netvsc receive or send buffer: page-aligned guest-physical addresses of
/// 4 KiB pages, seen as one run of bytes (what a GPADL of whole pages at offset 0 describes).
struct PageList: Sendable, Equatable {
    static let pageSize = 4096
    let pages: [UInt64]

    /// Nil unless there is at least one page, at most `maxPages`, all page-aligned.
    init?(_ pages: [UInt64]?, maxPages: Int) {
        guard let pages, !pages.isEmpty, pages.count <= maxPages else { return nil }
        guard pages.allSatisfy({ $0 & 0xFFF == 0 && $0 <= UInt64.max - 0xFFF }) else { return nil }
        self.pages = pages
    }

    var byteCount: Int { pages.count * PageList.pageSize }

    /// The guest-physical address of bytes `offset ..< offset + length` when they lie in one
    /// page of the buffer; nil otherwise (then use `appendSegments`).
    func address(ofOffset offset: Int, length: Int) -> UInt64? {
        guard offset >= 0, length >= 0, offset < byteCount else { return nil }
        let inPage = offset % PageList.pageSize
        guard length <= PageList.pageSize - inPage else { return nil }
        return pages[offset / PageList.pageSize] + UInt64(inPage)
    }

    /// Guest-physical runs holding bytes `offset ..< offset + length`, adjacent pages merged;
    /// nil if that is not inside the buffer.
    func segments(offset: Int, length: Int) -> [GuestSegment]? {
        var result: [GuestSegment] = []
        return appendSegments(offset: offset, length: length, to: &result) ? result : nil
    }

    /// `segments(offset:length:)` appended to `result` (no array of its own); false, with
    /// nothing appended, if the bytes are not inside the buffer.
    func appendSegments(offset: Int, length: Int, to result: inout [GuestSegment]) -> Bool {
        guard offset >= 0, length >= 0, offset <= byteCount, length <= byteCount - offset else { return false }
        guard length > 0 else { return true }
        // The current run is kept in locals and appended when the next page does not follow it:
        // buffers are mostly contiguous, so a 16 KiB section is usually one run.
        var runStart: UInt64 = 0, runLength = 0
        var position = offset
        let end = offset + length
        while position < end {
            let inPage = position % PageList.pageSize
            let take = Swift.min(PageList.pageSize - inPage, end - position)
            let address = pages[position / PageList.pageSize] + UInt64(inPage)
            if runLength > 0, runStart &+ UInt64(runLength) == address {
                runLength += take
            } else {
                if runLength > 0 { result.append(GuestSegment(address: runStart, length: runLength)) }
                (runStart, runLength) = (address, take)
            }
            position += take
        }
        result.append(GuestSegment(address: runStart, length: runLength))
        return true
    }
}
