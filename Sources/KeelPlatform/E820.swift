/// The kind of an e820 range as Linux reads it from the zero page.
public enum E820Type: UInt32, Sendable, Equatable {
    case ram = 1
    case reserved = 2
    /// ACPI reclaimable: the OS may reuse the range after reading the tables.
    case acpi = 3
}

/// One entry of the BIOS-style physical memory map handed to the kernel in `boot_params`.
public struct E820Entry: Sendable, Equatable, CustomStringConvertible {
    public var base: UInt64
    public var size: UInt64
    public var type: E820Type

    /// Size of one entry in the zero page's `e820_table`.
    public static let encodedSize = 20
    /// Capacity of the zero page's `e820_table`.
    public static let maxZeroPageEntries = 128

    public init(base: UInt64, size: UInt64, type: E820Type) {
        self.base = base
        self.size = size
        self.type = type
    }

    /// One past the last byte.
    public var end: UInt64 { base + size }

    /// The 20-byte `struct boot_e820_entry` encoding (addr, size, type; packed, little-endian).
    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: Self.encodedSize)
        w.u64(base)
        w.u64(size)
        w.u32(type.rawValue)
        return w.bytes
    }

    public var description: String { "[\(hex(base)), \(hex(end))) \(type)" }
}
