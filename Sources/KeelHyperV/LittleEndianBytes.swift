// Little-endian field access on byte arrays copied out of (or into) guest memory.

extension [UInt8] {
    /// Stores the low `count` bytes of `value` little-endian at `offset` (caller keeps it in range).
    mutating func storeLE(_ value: UInt64, at offset: Int, count: Int) {
        for i in 0..<count { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
    }

    /// Loads `count` little-endian bytes at `offset` (caller keeps it in range).
    func loadLE(at offset: Int, count: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<count { value |= UInt64(self[offset + i]) << (8 * UInt64(i)) }
        return value
    }
}
