import KeelSystem

/// Little-endian appends to a byte array, used by the message and packet encoders.
struct ByteWriter {
    private(set) var bytes: [UInt8]

    init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { integer(value) }
    mutating func u32(_ value: UInt32) { integer(value) }
    mutating func u64(_ value: UInt64) { integer(value) }
    mutating func append(_ data: [UInt8]) { bytes.append(contentsOf: data) }
    mutating func zeros(_ count: Int) { bytes.append(contentsOf: repeatElement(0, count: max(0, count))) }

    /// Pads with zeros (or truncates nothing) until the array has `count` bytes.
    mutating func pad(to count: Int) { zeros(count - bytes.count) }

    private mutating func integer<T: FixedWidthInteger>(_ value: T) {
        for i in 0..<MemoryLayout<T>.size { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * i))) }
    }
}

/// Little-endian reads at fixed offsets of a byte array. Callers check the length first; an
/// offset outside the array reads as zero, so a missed check can never trap.
struct ByteReader {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var count: Int { bytes.count }

    func u8(_ offset: Int) -> UInt8 { integer(UInt8.self, offset) }
    func u16(_ offset: Int) -> UInt16 { integer(UInt16.self, offset) }
    func u32(_ offset: Int) -> UInt32 { integer(UInt32.self, offset) }
    func u64(_ offset: Int) -> UInt64 { integer(UInt64.self, offset) }

    /// `count` bytes from `offset`; bytes past the end read as zero.
    func slice(_ offset: Int, _ count: Int) -> [UInt8] {
        (0..<max(0, count)).map { i in
            let index = offset + i
            return index >= 0 && index < bytes.count ? bytes[index] : 0
        }
    }

    private func integer<T: FixedWidthInteger>(_ type: T.Type, _ offset: Int) -> T {
        guard offset >= 0 else { return 0 }
        return bytes.littleEndian(type, at: offset)
    }
}
