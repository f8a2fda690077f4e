/// One PCI function's configuration space, as seen through a host bridge. Attach
/// implementations to `PCIHostBridge` at a (device, function) slot.
///
/// `offset` is 0..<256 and aligned to `size` (1, 2 or 4); the bridge guarantees both. Called
/// from vCPU threads: implementations synchronise themselves. A multi-function device must set
/// bit 7 of the header type in function 0, or guests will not look at functions 1-7.
public protocol PCIFunction: AnyObject, Sendable {
    func configRead(offset: Int, size: Int) -> UInt32
    func configWrite(offset: Int, size: Int, value: UInt32)
}

/// A 256-byte configuration space image with per-bit write masks: a building block for
/// `PCIFunction` implementations. Bits outside `writable` are read-only; bits in
/// `writeOneToClear` are cleared by writing 1 (status registers).
public struct PCIConfigSpace: Sendable {
    public private(set) var bytes: [UInt8]
    public var writable: [UInt8]
    public var writeOneToClear: [UInt8]

    /// A type-0 header with the given identity; nothing is writable until masks are set.
    public init(vendorID: UInt16, deviceID: UInt16, classCode: UInt32, revision: UInt8 = 0,
                headerType: UInt8 = 0) {
        bytes = [UInt8](repeating: 0, count: 256)
        writable = [UInt8](repeating: 0, count: 256)
        writeOneToClear = [UInt8](repeating: 0, count: 256)
        set(offset: 0x00, size: 2, value: UInt32(vendorID))
        set(offset: 0x02, size: 2, value: UInt32(deviceID))
        set(offset: 0x08, size: 1, value: UInt32(revision))
        set(offset: 0x09, size: 3, value: classCode)
        set(offset: 0x0E, size: 1, value: UInt32(headerType))
    }

    /// Sets bytes directly, ignoring the masks (device-side updates).
    public mutating func set(offset: Int, size: Int, value: UInt32) {
        for i in 0..<size where offset + i < bytes.count && offset + i >= 0 {
            bytes[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
        }
    }

    /// Makes bits writable by the guest (`mask` covers `size` bytes at `offset`).
    public mutating func setWritable(offset: Int, size: Int, mask: UInt32) {
        for i in 0..<size where offset + i < writable.count && offset + i >= 0 {
            writable[offset + i] = UInt8(truncatingIfNeeded: mask >> (8 * UInt32(i)))
        }
    }

    /// Little-endian read; bytes beyond the space read as 0xFF.
    public func read(offset: Int, size: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<PortAccess.clampedSize(size) {
            let index = offset + i
            let byte = index >= 0 && index < bytes.count ? bytes[index] : 0xFF
            value |= UInt32(byte) << (8 * UInt32(i))
        }
        return value
    }

    /// Guest write honouring the writable and write-one-to-clear masks.
    public mutating func write(offset: Int, size: Int, value: UInt32) {
        for i in 0..<PortAccess.clampedSize(size) {
            let index = offset + i
            guard index >= 0 && index < bytes.count else { continue }
            let byte = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
            let keep = bytes[index] & ~writable[index]
            var updated = keep | (byte & writable[index])
            updated &= ~(byte & writeOneToClear[index])
            bytes[index] = updated
        }
    }
}
