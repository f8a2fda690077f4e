/// A growable little-endian byte buffer used by every builder in this module. Pure Swift arrays
/// only: no pointers, no Foundation.
struct ByteWriter: Sendable {
    private(set) var bytes: [UInt8]

    init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// A zero-filled buffer of `count` bytes, for fixed layouts filled in with `set…(at:)`.
    init(zeroes count: Int) {
        bytes = [UInt8](repeating: 0, count: count)
    }

    var count: Int { bytes.count }

    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u16(_ value: UInt16) { appendLE(UInt64(value), width: 2) }
    mutating func u32(_ value: UInt32) { appendLE(UInt64(value), width: 4) }
    mutating func u64(_ value: UInt64) { appendLE(value, width: 8) }
    mutating func append(_ other: [UInt8]) { bytes.append(contentsOf: other) }

    /// Appends `text`'s bytes, truncated or padded with `pad` to exactly `length` bytes.
    mutating func ascii(_ text: String, length: Int, pad: UInt8 = 0x20) {
        var field = Array(text.utf8.prefix(length))
        while field.count < length { field.append(pad) }
        bytes.append(contentsOf: field)
    }

    mutating func zeroes(_ n: Int) {
        bytes.append(contentsOf: repeatElement(0, count: n))
    }

    mutating func set8(_ value: UInt8, at offset: Int) { bytes[offset] = value }
    mutating func set16(_ value: UInt16, at offset: Int) { setLE(UInt64(value), width: 2, at: offset) }
    mutating func set32(_ value: UInt32, at offset: Int) { setLE(UInt64(value), width: 4, at: offset) }
    mutating func set64(_ value: UInt64, at offset: Int) { setLE(value, width: 8, at: offset) }
    mutating func set(_ other: [UInt8], at offset: Int) {
        bytes.replaceSubrange(offset..<(offset + other.count), with: other)
    }

    private mutating func appendLE(_ value: UInt64, width: Int) {
        for i in 0..<width { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    private mutating func setLE(_ value: UInt64, width: Int, at offset: Int) {
        for i in 0..<width { bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }
}

/// Little-endian reads from a byte array. Callers check bounds first (`has(_:at:)`).
extension Array where Element == UInt8 {
    func has(_ width: Int, at offset: Int) -> Bool {
        offset >= 0 && width >= 0 && offset <= count - width
    }

    func le(at offset: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<width { value |= UInt64(self[offset + i]) << (8 * UInt64(i)) }
        return value
    }

    func u16(at offset: Int) -> UInt16 { UInt16(truncatingIfNeeded: le(at: offset, width: 2)) }
    func u32(at offset: Int) -> UInt32 { UInt32(truncatingIfNeeded: le(at: offset, width: 4)) }
    func u64(at offset: Int) -> UInt64 { le(at: offset, width: 8) }
}

/// The byte that makes `bytes` sum to zero modulo 256 (ACPI and AML checksums).
func checksumByte<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
    var sum: UInt8 = 0
    for b in bytes { sum &+= b }
    return 0 &- sum
}

func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16, uppercase: true) }

func alignUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
    alignment <= 1 ? value : (value + alignment - 1) / alignment * alignment
}

func alignDown(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
    alignment <= 1 ? value : value / alignment * alignment
}
