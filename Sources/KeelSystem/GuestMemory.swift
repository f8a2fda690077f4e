import CKVM
import Synchronization

/// A run of guest-physical bytes: the unit of scatter-gather I/O (an iovec entry once mapped).
public struct GuestSegment: Sendable, Equatable {
    public let address: UInt64
    public let length: Int

    public init(address: UInt64, length: Int) {
        self.address = address
        self.length = length
    }
}

/// Bounds-checked access to guest-physical memory, for protocol code (SynIC pages, VMBus rings,
/// GPADL buffers) that must be testable without KVM. `GuestRAM` is the real implementation;
/// `BufferGuestMemory` is an array-backed one for tests.
public protocol GuestMemory: Sendable {
    func read(at address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8]
    func write(_ bytes: [UInt8], at address: UInt64) throws(GuestMemoryError)
    func contains(_ address: UInt64, count: Int) -> Bool
    /// Little-endian 32-bit access, the hot path of ring indices (no array, no generic code).
    func loadUInt32(at address: UInt64) throws(GuestMemoryError) -> UInt32
    func storeUInt32(_ value: UInt32, at address: UInt64) throws(GuestMemoryError)
    /// Writes part of an array without copying it first (ring writes that wrap or cross pages).
    func write(_ bytes: ArraySlice<UInt8>, at address: UInt64) throws(GuestMemoryError)
    /// ORs `bits` into the byte at `address` and returns the byte's old value: atomically on
    /// real guest RAM, where the guest clears flags of the same byte concurrently (SynIC event
    /// flags).
    func setBits(_ bits: UInt8, at address: UInt64) throws(GuestMemoryError) -> UInt8
}

extension GuestMemory {
    public func write(_ bytes: ArraySlice<UInt8>, at address: UInt64) throws(GuestMemoryError) {
        try write(Array(bytes), at: address)
    }

    /// Not atomic: good enough for test doubles that no guest shares.
    public func setBits(_ bits: UInt8, at address: UInt64) throws(GuestMemoryError) -> UInt8 {
        let old = try loadInteger(UInt8.self, at: address)
        try storeInteger(old | bits, at: address)
        return old
    }

    public func loadUInt32(at address: UInt64) throws(GuestMemoryError) -> UInt32 {
        try loadInteger(UInt32.self, at: address)
    }

    public func storeUInt32(_ value: UInt32, at address: UInt64) throws(GuestMemoryError) {
        try storeInteger(value, at: address)
    }

    /// Reads a little-endian integer.
    public func loadInteger<T: FixedWidthInteger>(_ type: T.Type, at address: UInt64) throws(GuestMemoryError) -> T {
        let bytes = try read(at: address, count: MemoryLayout<T>.size)
        var value: T = 0
        for (i, b) in bytes.enumerated() { value |= T(b) << (8 * i) }
        return value
    }

    /// Writes a little-endian integer.
    public func storeInteger<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws(GuestMemoryError) {
        try write((0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) }, at: address)
    }
}

extension GuestRAM: GuestMemory {
    public func write(_ bytes: [UInt8], at address: UInt64) throws(GuestMemoryError) {
        try write(bytes[...], at: address)
    }

    public func write(_ bytes: ArraySlice<UInt8>, at address: UInt64) throws(GuestMemoryError) {
        try copy(bytes, to: address)
    }

    public func setBits(_ bits: UInt8, at address: UInt64) throws(GuestMemoryError) -> UInt8 {
        guard let p = host(address, 1) else { throw GuestMemoryError(address: address, count: 1) }
        return ckvm_atomic_or8(p, bits)
    }

    public func loadUInt32(at address: UInt64) throws(GuestMemoryError) -> UInt32 {
        try load(UInt32.self, at: address)
    }

    public func storeUInt32(_ value: UInt32, at address: UInt64) throws(GuestMemoryError) {
        try store(value, at: address)
    }
}

/// Guest memory backed by a byte array starting at `base`: the test double for `GuestMemory`.
public final class BufferGuestMemory: GuestMemory {
    private let bytes: Mutex<[UInt8]>
    public let base: UInt64
    public let size: Int

    public init(base: UInt64 = 0, size: Int) {
        self.base = base
        self.size = size
        bytes = Mutex([UInt8](repeating: 0, count: size))
    }

    public func contains(_ address: UInt64, count: Int) -> Bool {
        guard count >= 0, address >= base else { return false }
        let offset = address - base
        return offset <= UInt64(size) && UInt64(count) <= UInt64(size) - offset
    }

    public func read(at address: UInt64, count: Int) throws(GuestMemoryError) -> [UInt8] {
        guard contains(address, count: count) else { throw GuestMemoryError(address: address, count: count) }
        let start = Int(address - base)
        return bytes.withLock { Array($0[start..<start + count]) }
    }

    public func write(_ data: [UInt8], at address: UInt64) throws(GuestMemoryError) {
        guard contains(address, count: data.count) else { throw GuestMemoryError(address: address, count: data.count) }
        let start = Int(address - base)
        bytes.withLock { $0.replaceSubrange(start..<start + data.count, with: data) }
    }
}
