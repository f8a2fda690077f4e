/// Little-endian integers read out of byte arrays that hold guest data (packet headers, PFN
/// lists, RNDIS fields). Protocol modules may not touch raw pointers, so the one unaligned load
/// lives here; per-byte reads cost four bounds checks each and showed up in the data path.
extension Array where Element == UInt8 {
    /// The little-endian `T` at `offset`. Bytes outside the array read as zero, so a length check
    /// missed on guest input can never trap; a field wholly inside is one unaligned load.
    @inlinable
    public func littleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        let size = MemoryLayout<T>.size
        if offset >= 0, offset <= count &- size {
            return withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
        var value: T = 0
        for i in 0..<size {
            let index = offset &+ i
            if index >= 0, index < count { value |= T(self[index]) << (8 * i) }
        }
        return value
    }
}
