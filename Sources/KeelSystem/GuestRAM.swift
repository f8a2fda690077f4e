#if canImport(Glibc)
import Glibc
#endif

/// A guest access that does not lie entirely inside guest RAM.
public struct GuestMemoryError: Error, CustomStringConvertible, Equatable {
    public let address: UInt64
    public let count: Int

    public init(address: UInt64, count: Int) {
        self.address = address
        self.count = count
    }
    public var description: String {
        "guest memory access 0x\(String(address, radix: 16)) (+\(count)) is outside guest RAM"
    }
}

/// The guest's RAM: anonymous mappings, one per contiguous guest-physical range. Every access
/// goes through a bounds check and copies; no Swift reference into guest memory escapes,
/// because the guest may change it at any moment (it is hostile input).
public final class GuestRAM: @unchecked Sendable {
    // @unchecked: the mappings are created once and never change; the bytes behind them are
    // shared with the guest by design and only ever copied in or out.

    /// One contiguous range of guest-physical addresses backed by host memory.
    public struct Region: Sendable {
        public let guestAddress: UInt64
        public let size: UInt64
        /// Host virtual address of the mapping, for KVM memory slots.
        public let hostAddress: UInt64
    }

    public let regions: [Region]

    /// Maps `ranges` (guest-physical base, size; page multiples, non-overlapping).
    public init(ranges: [(guestAddress: UInt64, size: UInt64)]) throws(SystemError) {
        var mapped: [Region] = []
        for range in ranges.sorted(by: { $0.guestAddress < $1.guestAddress }) {
            guard let p = Self.mapHugePageAligned(Int(range.size)) else {
                for r in mapped { munmap(UnsafeMutableRawPointer(bitPattern: UInt(r.hostAddress)), Int(r.size)) }
                throw SystemError("mmap of \(range.size >> 20) MiB guest RAM")
            }
            mapped.append(Region(guestAddress: range.guestAddress, size: range.size,
                                 hostAddress: UInt64(UInt(bitPattern: p))))
        }
        regions = mapped
    }

    /// Transparent huge pages are 2 MiB on x86-64.
    static let hugePageSize = 2 << 20

    /// Anonymous memory at a 2 MiB-aligned address, marked for transparent huge pages (as QEMU
    /// and Cloud Hypervisor do): guest-physical and host addresses then agree modulo 2 MiB, so
    /// KVM can map the guest with 2 MiB pages and every guest TLB miss walks a level less. Where
    /// THP is off the advice is ignored and memory comes in 4 KiB pages as before.
    private static func mapHugePageAligned(_ size: Int) -> UnsafeMutableRawPointer? {
        let padded = size + hugePageSize
        guard let raw = mmap(nil, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0),
              raw != MAP_FAILED else { return nil }
        let start = (UInt(bitPattern: raw) + UInt(hugePageSize - 1)) & ~UInt(hugePageSize - 1)
        let head = Int(start - UInt(bitPattern: raw))
        if head > 0 { munmap(raw, head) }
        let tail = padded - head - size
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: start + UInt(size)), tail) }
        let aligned = UnsafeMutableRawPointer(bitPattern: start)
        _ = madvise(aligned, size, MADV_HUGEPAGE)
        return aligned
    }

    deinit {
        for r in regions { munmap(UnsafeMutableRawPointer(bitPattern: UInt(r.hostAddress)), Int(r.size)) }
    }

    /// The host pointer for `count` bytes at `address`, when they lie inside one region.
    @usableFromInline
    func host(_ address: UInt64, _ count: Int) -> UnsafeMutableRawPointer? {
        guard count >= 0 else { return nil }
        for r in regions where address >= r.guestAddress {
            let offset = address - r.guestAddress
            guard offset < r.size, UInt64(count) <= r.size - offset else { continue }
            return UnsafeMutableRawPointer(bitPattern: UInt(r.hostAddress + offset))
        }
        return nil
    }

    /// Whether `count` bytes at `address` are all guest RAM.
    public func contains(_ address: UInt64, count: Int) -> Bool { host(address, count) != nil }

    public func read(at address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        guard let p = host(address, count) else { throw GuestMemoryError(address: address, count: count) }
        return [UInt8](copying: p, count: count)
    }

    /// The bytes of guest-physical runs in order, at most `limit` of them (scatter-gather
    /// lists such as a SCSI request's pages or an RNDIS transfer); nil if a part is not RAM.
    public func gather(_ segments: [GuestSegment], limit: Int = .max) -> [UInt8]? {
        // Checked first, copied second: no list of pointers to build.
        var total = 0
        for segment in segments where total < limit {
            let count = min(segment.length, limit - total)
            guard host(segment.address, count) != nil else { return nil }
            total += count
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(total)
        for segment in segments where bytes.count < total {
            let count = min(segment.length, total - bytes.count)
            guard let p = host(segment.address, count) else { break }
            bytes.append(contentsOf: UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: count))
        }
        return bytes
    }

    /// Writes `bytes` across guest-physical runs in order; false if a part is not RAM or the
    /// runs hold more than `bytes`.
    public func scatter(_ bytes: [UInt8], to segments: [GuestSegment]) -> Bool {
        var offset = 0
        for segment in segments {
            guard segment.length <= bytes.count - offset,
                  (try? write(bytes[offset..<offset + segment.length], at: segment.address)) != nil else { return false }
            offset += segment.length
        }
        return true
    }

    public func write(_ bytes: some Collection<UInt8>, at address: UInt64) throws(GuestMemoryError) {
        try copy(bytes, to: address)
    }

    func copy(_ bytes: some Collection<UInt8>, to address: UInt64) throws(GuestMemoryError) {
        guard let p = host(address, bytes.count) else { throw GuestMemoryError(address: address, count: bytes.count) }
        let handled = bytes.withContiguousStorageIfAvailable { src -> Bool in
            if let base = src.baseAddress { p.copyMemory(from: base, byteCount: src.count) }
            return true
        }
        if handled == nil {
            for (i, b) in bytes.enumerated() { p.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
        }
    }

    /// Reads a little-endian integer.
    @inlinable
    public func load<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) throws(GuestMemoryError) -> T {
        guard let p = host(address, MemoryLayout<T>.size) else {
            throw GuestMemoryError(address: address, count: MemoryLayout<T>.size)
        }
        return T(littleEndian: p.loadUnaligned(as: T.self))
    }

    /// Writes a little-endian integer.
    @inlinable
    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(GuestMemoryError) {
        guard let p = host(address, MemoryLayout<T>.size) else {
            throw GuestMemoryError(address: address, count: MemoryLayout<T>.size)
        }
        p.storeBytes(of: value.littleEndian, as: T.self)
    }
}
