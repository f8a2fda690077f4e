/// A flat segment descriptor, both as its 8-byte GDT encoding and as the decoded fields KVM's
/// `kvm_segment` wants, so the VM assembly never re-decodes the table.
public struct SegmentDescriptor: Sendable, Equatable {
    public var selector: UInt16
    public var base: UInt32
    /// The raw 20-bit limit field as stored in the descriptor.
    public var limit: UInt32
    /// Type nibble (e.g. 0xB = code, execute/read, accessed; 0x3 = data, read/write, accessed).
    public var type: UInt8
    /// S: 1 for code/data segments, 0 for system segments.
    public var s: UInt8
    public var dpl: UInt8
    public var present: UInt8
    public var avl: UInt8
    /// L: 64-bit code segment.
    public var l: UInt8
    /// D/B: default operand size 32 bit (must be 0 when L = 1).
    public var db: UInt8
    /// G: limit counted in 4 KiB units.
    public var g: UInt8

    /// The byte limit as the CPU applies it (what `kvm_segment.limit` expects).
    public var effectiveLimit: UInt32 { g != 0 ? (limit << 12) | 0xFFF : limit }

    /// The 8-byte GDT entry.
    public var encoded: UInt64 {
        let access = UInt64(type & 0xF) | UInt64(s & 1) << 4 | UInt64(dpl & 3) << 5 | UInt64(present & 1) << 7
        let flags = UInt64(avl & 1) | UInt64(l & 1) << 1 | UInt64(db & 1) << 2 | UInt64(g & 1) << 3
        return UInt64(limit & 0xFFFF)
            | UInt64(base & 0xFF_FFFF) << 16
            | access << 40
            | UInt64((limit >> 16) & 0xF) << 48
            | flags << 52
            | UInt64(base >> 24) << 56
    }
}

/// The boot GDT at `BootLayout.gdtAddress`: null, null (0x08), 64-bit code at 0x10 (__BOOT_CS)
/// and data at 0x18 (__BOOT_DS), as the Linux 64-bit boot protocol expects. TR and LDTR are not
/// described: KVM's reset values (busy TSS, unusable LDT) are valid in long mode and the kernel
/// loads its own GDT and TSS immediately.
public enum GDT {
    public static let code = SegmentDescriptor(
        selector: 0x10, base: 0, limit: 0xFFFFF, type: 0xB, s: 1, dpl: 0, present: 1,
        avl: 0, l: 1, db: 0, g: 1)
    public static let data = SegmentDescriptor(
        selector: 0x18, base: 0, limit: 0xFFFFF, type: 0x3, s: 1, dpl: 0, present: 1,
        avl: 0, l: 0, db: 1, g: 1)

    /// Four entries: [null, null, code, data].
    public static var entries: [UInt64] { [0, 0, code.encoded, data.encoded] }

    /// GDTR limit: table size in bytes minus one.
    public static var limit: UInt16 { UInt16(entries.count * 8 - 1) }

    /// The table to copy to `BootLayout.gdtAddress` (GDTR base).
    public static func blob() -> GuestBlob {
        var w = ByteWriter(capacity: 32)
        for e in entries { w.u64(e) }
        return GuestBlob(guestPhysicalAddress: BootLayout.gdtAddress, bytes: w.bytes)
    }
}
