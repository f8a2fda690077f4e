import KeelSystem

/// Little-endian appends for building IC messages.
struct ICWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { integer(value) }
    mutating func u32(_ value: UInt32) { integer(value) }
    mutating func u64(_ value: UInt64) { integer(value) }
    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: max(0, count))) }
    mutating func version(_ v: ICVersion) { u16(v.major); u16(v.minor) }

    private mutating func integer<T: FixedWidthInteger>(_ value: T) {
        for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }
}

/// Bounds-checked little-endian reads of guest bytes: nil when the field does not fit.
struct ICReader {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var count: Int { bytes.count }

    func u8(_ offset: Int) -> UInt8? { integer(UInt8.self, offset) }
    func u16(_ offset: Int) -> UInt16? { integer(UInt16.self, offset) }
    func u32(_ offset: Int) -> UInt32? { integer(UInt32.self, offset) }
    func u64(_ offset: Int) -> UInt64? { integer(UInt64.self, offset) }

    func version(_ offset: Int) -> ICVersion? {
        guard let major = u16(offset), let minor = u16(offset + 2) else { return nil }
        return ICVersion(major, minor)
    }

    private func integer<T: FixedWidthInteger>(_ type: T.Type, _ offset: Int) -> T? {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - size else { return nil }
        return bytes.littleEndian(type, at: offset)
    }
}

/// Saturating addition for monotonic deadlines (caller-supplied values never trap).
func addingSaturated(_ a: UInt64, _ b: UInt64) -> UInt64 {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? .max : sum
}

/// `a - b`, or 0 if `b` is later (a clock that went backwards must not trap).
func elapsed(since start: UInt64, now: UInt64) -> UInt64 { now >= start ? now - start : 0 }
