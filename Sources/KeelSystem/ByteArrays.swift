/// Byte arrays on the data path: building them and reading little-endian fields out of them.
///
/// - Building: `[UInt8](repeating:count:)` and `init(unsafeUninitializedCapacity:)` go through
///   the standard library's unspecialized allocator, which on Linux looks up the array storage's
///   generic metadata on every call (about 370 instructions, several times per packet); growing
///   an empty array takes the specialized path.
/// - Reading: protocol modules may not touch raw pointers, so the one unaligned load lives here;
///   per-byte reads cost four bounds checks each and showed up in the data path.
extension Array where Element == UInt8 {
    /// `count` zero bytes (as `init(repeating: 0, count:)`, without the metadata lookup).
    @inlinable
    public init(zeros count: Int) {
        self.init()
        reserveCapacity(count)
        append(contentsOf: repeatElement(0, count: count))
    }

    /// A copy of `count` bytes at `source` (as `init(unsafeUninitializedCapacity:)` would make).
    @inlinable
    public init(copying source: UnsafeRawPointer, count: Int) {
        self.init()
        reserveCapacity(count)
        append(contentsOf: UnsafeBufferPointer(start: source.assumingMemoryBound(to: UInt8.self), count: count))
    }

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
