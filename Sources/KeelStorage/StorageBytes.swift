/// Byte helpers for vstor fields (little-endian) and SCSI CDBs and data (big-endian). Reads past
/// the end yield zero and writes past the end are dropped, so a missed length check on guest
/// input can never trap.
extension Array where Element == UInt8 {
    func byte(_ offset: Int) -> UInt8 { offset >= 0 && offset < count ? self[offset] : 0 }

    func le<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value |= T(byte(offset + i)) << (8 * i) }
        return value
    }

    func be<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
        var value: T = 0
        for i in 0..<MemoryLayout<T>.size { value = value << 8 | T(byte(offset + i)) }
        return value
    }

    mutating func setByte(_ value: UInt8, at offset: Int) {
        if offset >= 0 && offset < count { self[offset] = value }
    }

    mutating func setLE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { setByte(UInt8(truncatingIfNeeded: value >> (8 * i)), at: offset + i) }
    }

    mutating func setBE<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        let size = MemoryLayout<T>.size
        for i in 0..<size { setByte(UInt8(truncatingIfNeeded: value >> (8 * (size - 1 - i))), at: offset + i) }
    }

    mutating func setBytes(_ data: [UInt8], at offset: Int) {
        for (i, b) in data.enumerated() { setByte(b, at: offset + i) }
    }

    /// `n` bytes from `offset`, zero-filled past the end.
    func bytes(_ offset: Int, _ n: Int) -> [UInt8] { (0..<Swift.max(0, n)).map { byte(offset + $0) } }

    /// The array cut or zero-padded to exactly `n` bytes.
    func sized(_ n: Int) -> [UInt8] { bytes(0, n) }
}

/// `text` as exactly `width` printable ASCII bytes: other characters become '?', short strings
/// are padded with spaces (SCSI identification fields).
func fixedASCII(_ text: String, width: Int) -> [UInt8] {
    let ascii = text.utf8.prefix(width).map { (0x20...0x7E).contains($0) ? $0 : UInt8(ascii: "?") }
    return ascii + [UInt8](repeating: 0x20, count: width - ascii.count)
}
