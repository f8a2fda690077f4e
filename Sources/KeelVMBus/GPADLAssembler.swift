import KeelSystem

/// Limits that bound what one guest can make the host hold for GPADLs.
public struct GPADLLimits: Sendable, Equatable {
    /// Pages in one GPADL (the 16-bit range-buffer length already caps this at 8190).
    public var maxPagesPerGPADL: Int
    /// Completed plus pending GPADLs.
    public var maxGPADLs: Int
    /// GPADLs whose header arrived but whose bodies are still missing.
    public var maxPendingGPADLs: Int
    /// Pages over all GPADLs.
    public var maxTotalPages: Int

    public init(maxPagesPerGPADL: Int = 8190, maxGPADLs: Int = 1024, maxPendingGPADLs: Int = 16,
                maxTotalPages: Int = 1 << 20) {
        self.maxPagesPerGPADL = maxPagesPerGPADL
        self.maxGPADLs = maxGPADLs
        self.maxPendingGPADLs = maxPendingGPADLs
        self.maxTotalPages = maxTotalPages
    }
}

/// Why a GPADL was refused (answered with a failing GPADL_CREATED).
public enum GPADLError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownChannel(relid: UInt32)
    case duplicateHandle(UInt32)
    case tooManyGPADLs(limit: Int)
    case tooManyPending(limit: Int)
    case tooManyPages(count: Int, limit: Int)
    case totalPagesExceeded(limit: Int)
    case malformed(String)
    case pfnOutsideGuestRAM(UInt64)

    public var description: String {
        switch self {
        case let .unknownChannel(relid): "GPADL for unknown channel relid \(relid)"
        case let .duplicateHandle(handle): "GPADL handle 0x\(String(handle, radix: 16)) already in use"
        case let .tooManyGPADLs(limit): "more than \(limit) GPADLs"
        case let .tooManyPending(limit): "more than \(limit) incomplete GPADLs"
        case let .tooManyPages(count, limit): "GPADL of \(count) pages exceeds the limit of \(limit)"
        case let .totalPagesExceeded(limit): "GPADLs would exceed \(limit) pages in total"
        case let .malformed(reason): "malformed GPADL: \(reason)"
        case let .pfnOutsideGuestRAM(pfn): "GPADL page 0x\(String(pfn, radix: 16)) is outside guest RAM"
        }
    }
}

/// A GPADL whose header arrived and whose range buffer is being filled by GPADL_BODY messages.
struct PendingGPADL: Sendable {
    let handle: UInt32
    let relid: UInt32
    let rangeCount: Int
    let expectedBytes: Int
    var bytes: [UInt8]

    /// Validates the header against the limits; `pagesInUse` counts pages of existing GPADLs.
    init(header: VMBusMessage.GPADLHeader, limits: GPADLLimits, pagesInUse: Int) throws(GPADLError) {
        let rangeCount = Int(header.rangeCount)
        let length = Int(header.rangeBufferLength)
        guard rangeCount >= 1 else { throw .malformed("no ranges") }
        guard length % 8 == 0, length >= 16 * rangeCount else {
            throw .malformed("range buffer of \(length) bytes cannot hold \(rangeCount) ranges")
        }
        let pages = (length - 8 * rangeCount) / 8
        guard pages <= limits.maxPagesPerGPADL else { throw .tooManyPages(count: pages, limit: limits.maxPagesPerGPADL) }
        guard pagesInUse + pages <= limits.maxTotalPages else { throw .totalPagesExceeded(limit: limits.maxTotalPages) }
        guard header.rangeBytes.count <= length else {
            throw .malformed("header carries \(header.rangeBytes.count) bytes of a \(length)-byte range buffer")
        }
        handle = header.handle
        relid = header.relid
        self.rangeCount = rangeCount
        expectedBytes = length
        bytes = header.rangeBytes
    }

    var isComplete: Bool { bytes.count == expectedBytes }

    /// Appends a body's PFNs.
    mutating func append(_ pfns: [UInt64]) throws(GPADLError) {
        guard bytes.count + 8 * pfns.count <= expectedBytes else {
            throw .malformed("bodies carry more than the \(expectedBytes)-byte range buffer")
        }
        var w = ByteWriter(capacity: 8 * pfns.count)
        for pfn in pfns { w.u64(pfn) }
        bytes += w.bytes
    }

    /// Parses the complete range buffer and checks every page against guest RAM.
    func finish(memory: any GuestMemory) throws(GPADLError) -> GPADL {
        let r = ByteReader(bytes)
        var offset = 0
        var ranges: [GPADL.Range] = []
        for index in 0..<rangeCount {
            guard offset + 8 <= bytes.count else { throw .malformed("range \(index) descriptor missing") }
            let byteCount = r.u32(offset)
            let byteOffset = r.u32(offset + 4)
            offset += 8
            guard byteCount > 0 else { throw .malformed("range \(index) is empty") }
            guard UInt64(byteOffset) < VMBusPage.size else {
                throw .malformed("range \(index) byte offset \(byteOffset) is not inside the first page")
            }
            let pageCount = Int((UInt64(byteOffset) + UInt64(byteCount) + VMBusPage.size - 1) / VMBusPage.size)
            guard pageCount <= (bytes.count - offset) / 8 else {
                throw .malformed("range \(index) needs \(pageCount) pages but the buffer is shorter")
            }
            var pfns: [UInt64] = []
            pfns.reserveCapacity(pageCount)
            for _ in 0..<pageCount {
                let pfn = r.u64(offset)
                offset += 8
                guard pfn <= VMBusPage.maxPFN, memory.contains(pfn << VMBusPage.shift, count: Int(VMBusPage.size)) else {
                    throw .pfnOutsideGuestRAM(pfn)
                }
                pfns.append(pfn)
            }
            ranges.append(GPADL.Range(byteCount: byteCount, byteOffset: byteOffset, pfns: pfns))
        }
        guard offset == bytes.count else {
            throw .malformed("\(bytes.count - offset) bytes left over after \(rangeCount) ranges")
        }
        return GPADL(handle: handle, relid: relid, ranges: ranges)
    }
}
