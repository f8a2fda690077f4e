import KeelSystem
@testable import KeelVMBus
import Testing

@Suite struct GPADirectBufferTests {
    /// A type-9 packet with a raw header (reserved, count, then the given words).
    func packet(_ header: [UInt8], type: VMBusPacketType = .dataUsingGPADirect) -> VMBusPacket {
        VMBusPacket(type: type, flags: 1, transactionID: 1, header: header, payload: [1, 2, 3, 4])
    }

    func range(count: UInt32, offset: UInt32, pfns: [UInt64]) -> [UInt8] {
        var w = ByteWriter()
        w.u32(count)
        w.u32(offset)
        for pfn in pfns { w.u64(pfn) }
        return w.bytes
    }

    func header(_ ranges: [[UInt8]], count: UInt32? = nil) -> [UInt8] {
        var w = ByteWriter()
        w.u32(0)
        w.u32(count ?? UInt32(ranges.count))
        for r in ranges { w.append(r) }
        return w.bytes
    }

    @Test func storvscMultiPageBuffer() throws {
        // 10000 bytes starting 0x200 into page 0x100, then pages 0x101 and 0x300.
        let buffer = try GPADirectBuffer(packet: packet(header([range(count: 10_000, offset: 0x200, pfns: [0x100, 0x101, 0x300])])))
        #expect(buffer.ranges == [.init(byteCount: 10_000, byteOffset: 0x200, pfns: [0x100, 0x101, 0x300])])
        #expect(buffer.totalBytes == 10_000)
        let segments = buffer.guestSegments()
        #expect(segments.map(\.address) == [0x10_0200, 0x30_0000])
        #expect(segments.map(\.length) == [4096 - 0x200 + 4096, 10_000 - (8192 - 0x200)])
        let sub = buffer.segments(from: 7000, length: 2000)
        #expect(sub?.map(\.address) == [0x10_0200 + 7000, 0x30_0000])
        #expect(sub?.map(\.length) == [8192 - 0x200 - 7000, 2000 - (8192 - 0x200 - 7000)])
        #expect(buffer.segments(from: 0, length: 0)?.isEmpty == true)
        #expect(buffer.segments(from: 10_000, length: 0)?.isEmpty == true)
        #expect(buffer.segments(from: 9000, length: 1001) == nil)
        #expect(buffer.segments(from: -1, length: 1) == nil)
        #expect(buffer.segments(from: 1, length: -1) == nil)
        #expect(buffer.segments(from: Int.max, length: Int.max) == nil)
        // The payload is untouched by the header.
        #expect(buffer.packet(transactionID: 1, payload: [1, 2, 3, 4]).payload.prefix(4) == [1, 2, 3, 4])
    }

    @Test func netvscPageBuffers() throws {
        let ranges = [range(count: 100, offset: 4000, pfns: [7, 8]), range(count: 4096, offset: 0, pfns: [9]),
                      range(count: 50, offset: 0, pfns: [2])]
        let buffer = try GPADirectBuffer(packet: packet(header(ranges)))
        #expect(buffer.totalBytes == 4246)
        // 7:4000 + 96 and 8:0 + 4 are adjacent (one segment); page 9 and page 2 stand alone.
        let expected: [UInt64] = [32_672, 36_864, 8192]
        #expect(buffer.guestSegments().map(\.address) == expected)
        #expect(buffer.guestSegments().map(\.length) == [100, 4096, 50])
        #expect(buffer.segments(from: 4196, length: 50)?.map(\.address) == [8192])
    }

    @Test func roundTripThroughEncodedHeader() throws {
        let buffer = try GPADirectBuffer(ranges: [.init(byteCount: 4098, byteOffset: 4095, pfns: [1, 5, 9])])
        #expect(try GPADirectBuffer(packet: buffer.packet(transactionID: 3, payload: [])) == buffer)
        // Trailing bytes after the ranges (padding) are ignored.
        #expect(try GPADirectBuffer(packet: packet(buffer.encodedHeader() + [0xEE, 0xEE, 0xEE, 0xEE])) == buffer)
    }

    @Test func hostileHeaders() {
        func error(_ header: [UInt8], maxPages: Int = 1024, maxPFN: UInt64 = GPADirectBuffer.defaultMaxPFN) -> GPADirectError? {
            do {
                _ = try GPADirectBuffer(packet: packet(header), maxRanges: 4, maxPages: maxPages, maxPFN: maxPFN)
                return nil
            } catch {
                return error
            }
        }
        #expect(error([]) == .truncatedHeader(needed: 8, available: 0))
        #expect(error(header([])) == .noRanges)
        #expect(error(header([], count: .max)) == .tooManyRanges(count: Int(UInt32.max), limit: 4))
        #expect(error(header([], count: 1)) == .truncatedHeader(needed: 16, available: 8))
        #expect(error(header([range(count: 8192, offset: 0, pfns: [1])])) == .truncatedHeader(needed: 32, available: 24))
        #expect(error(header([range(count: .max, offset: 4095, pfns: [])])) == .tooManyPages(limit: 1024))
        #expect(error(header([range(count: 4096, offset: 0, pfns: [1]), range(count: 4096, offset: 0, pfns: [2])]),
                      maxPages: 1) == .tooManyPages(limit: 1))
        #expect(error(header([range(count: 10, offset: 4096, pfns: [1, 2])])) == .offsetOutsideFirstPage(range: 0, offset: 4096))
        #expect(error(header([range(count: 0, offset: 0, pfns: [1])])) == .invalidByteCount(range: 0, count: 0))
        #expect(error(header([range(count: 10, offset: 0, pfns: [1 << 40])])) ==
                .pfnOutOfRange(range: 0, pfn: 1 << 40, limit: GPADirectBuffer.defaultMaxPFN))
        #expect(error(header([range(count: 10, offset: 0, pfns: [0x200])]), maxPFN: 0x1FF) ==
                .pfnOutOfRange(range: 0, pfn: 0x200, limit: 0x1FF))
        #expect(throws: GPADirectError.wrongPacketType(6)) {
            try GPADirectBuffer(packet: packet(header([range(count: 1, offset: 0, pfns: [1])]), type: .dataInBand))
        }
        let broken = VMBusPacket(rawType: 9, flags: 0, transactionID: 0, dataOffset: 64, bytes: [UInt8](repeating: 0, count: 32))
        #expect(throws: GPADirectError.malformedPacket) { try GPADirectBuffer(packet: broken) }
    }

    @Test func hostileRanges() {
        #expect(throws: GPADirectError.pageCountMismatch(range: 0, expected: 2, actual: 1)) {
            try GPADirectBuffer(ranges: [.init(byteCount: 4097, byteOffset: 0, pfns: [1])])
        }
        #expect(throws: GPADirectError.offsetOutsideFirstPage(range: 0, offset: -1)) {
            try GPADirectBuffer(ranges: [.init(byteCount: 1, byteOffset: -1, pfns: [1])])
        }
        #expect(throws: GPADirectError.invalidByteCount(range: 0, count: Int.max)) {
            try GPADirectBuffer(ranges: [.init(byteCount: Int.max, byteOffset: 0, pfns: [])])
        }
        #expect(throws: GPADirectError.noRanges) { try GPADirectBuffer(ranges: []) }
        // A caller-chosen PFN limit above the address space is clamped, so addresses never wrap.
        #expect(throws: GPADirectError.pfnOutOfRange(range: 0, pfn: .max, limit: .max >> 12)) {
            try GPADirectBuffer(ranges: [.init(byteCount: 1, byteOffset: 0, pfns: [.max])], maxPFN: .max)
        }
    }

    @Test func randomHeadersNeverTrap() {
        var state: UInt64 = 0x1234_5678
        func next(_ bound: UInt64) -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return (state >> 11) % bound
        }
        var parsed = 0
        for _ in 0..<3000 {
            // A well-formed header of 1-3 small ranges, then a few random byte flips or a cut.
            var ranges: [[UInt8]] = []
            for _ in 0...next(3) {
                let offset = UInt32(next(4096)), count = UInt32(1 + next(9000))
                let pages = (Int(offset) + Int(count) + 4095) / 4096
                ranges.append(range(count: count, offset: offset, pfns: (0..<pages).map { _ in next(1 << 20) }))
            }
            var bytes = header(ranges)
            for _ in 0..<next(3) { bytes[Int(next(UInt64(bytes.count)))] = UInt8(next(256)) }
            if next(4) == 0 { bytes = Array(bytes.prefix(Int(next(UInt64(bytes.count))))) }
            guard let buffer = try? GPADirectBuffer(packet: packet(bytes)) else { continue }
            parsed += 1
            let total = buffer.totalBytes
            #expect(buffer.guestSegments().reduce(0) { $0 + $1.length } == total)
            #expect(buffer.segments(from: total / 3, length: total / 3)?.reduce(0) { $0 + $1.length } == total / 3)
            #expect((try? GPADirectBuffer(ranges: buffer.ranges)) == buffer)
        }
        #expect(parsed > 500)
    }
}
