/// Byte arrays on the data path: building them and reading little-endian fields out of them.
///
/// - Building: `[UInt8](repeating:count:)` and `init(unsafeUninitializedCapacity:)` go through
///   the standard library's unspecialized allocator, which on Linux looks up the array storage's
///   generic metadata on every call (about 370 instructions, several times per packet); growing
///   an empty array takes the specialized path.
/// - Reading: protocol modules may not touch raw pointers, so the one unaligned load lives here;
///   per-byte reads cost four bounds checks each and showed up in the data path.
extension Array where Element == UInt8 {
    /// `count` zero bytes (as `init(repeating: 0, count:)`, without the metadata lookup), copied
    /// from a zero page rather than appended one by one.
    public init(zeros count: Int) {
        self.init()
        reserveCapacity(count)
        while self.count < count {
            append(contentsOf: UnsafeBufferPointer(start: zeroPage, count: Swift.min(count - self.count, zeroPageSize)))
        }
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
    @inlinable @inline(__always)
    public func littleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        if offset >= 0, offset <= count &- MemoryLayout<T>.size {
            return withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
        }
        return partialLittleEndian(T.self, at: offset)
    }

    /// `littleEndian(_:at:)` for a field that is not wholly inside (kept out of line).
    @usableFromInline
    func partialLittleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        let size = MemoryLayout<T>.size
        var value: T = 0
        for i in 0..<size {
            let index = offset &+ i
            if index >= 0, index < count { value |= T(self[index]) << (8 * i) }
        }
        return value
    }

    /// Stores `value` little-endian at `offset` of a message being built; the field must lie
    /// inside the array (the encoder sized it), as with subscript stores.
    @inlinable @inline(__always)
    public mutating func storeLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        precondition(offset >= 0 && offset <= count &- MemoryLayout<T>.size, "field outside the message")
        withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
    }
}

extension Array where Element == UInt8 {
    /// Runs `body` with stores into this array that check only their bounds: one uniqueness
    /// check for all of them, where each `storeLittleEndian` makes its own (a message header of a
    /// dozen fields built per packet paid for a dozen).
    @inlinable
    public mutating func withFieldStores<R>(_ body: (FieldStores) -> R) -> R {
        withUnsafeMutableBytes { body(FieldStores(buffer: $0)) }
    }
}

/// Stores of integer fields into an array's bytes, valid only inside the `withFieldStores`
/// call that made it. Each field must lie inside the array.
public struct FieldStores {
    @usableFromInline let buffer: UnsafeMutableRawBufferPointer

    @usableFromInline init(buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    /// Stores `value` little-endian (VMBus, NVSP and RNDIS fields).
    @inlinable @inline(__always)
    public func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        precondition(offset >= 0 && offset <= buffer.count &- MemoryLayout<T>.size, "field outside the message")
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }

    /// Stores `value` big-endian (IP and TCP header fields).
    @inlinable @inline(__always)
    public func storeBigEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        precondition(offset >= 0 && offset <= buffer.count &- MemoryLayout<T>.size, "field outside the message")
        buffer.storeBytes(of: value.bigEndian, toByteOffset: offset, as: T.self)
    }
}

/// The source of `[UInt8](zeros:)`: one page of zeros, allocated once and never written.
private let zeroPageSize = 4096
nonisolated(unsafe) private let zeroPage: UnsafePointer<UInt8> = {
    let page = UnsafeMutablePointer<UInt8>.allocate(capacity: zeroPageSize)
    page.initialize(repeating: 0, count: zeroPageSize)
    return UnsafePointer(page)
}()
