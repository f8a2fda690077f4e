/// Resource descriptors for `_CRS` buffers (ACPI 6.5 section 6.4), built by `AML.resourceTemplate`.
extension AML {
    /// Memory cacheability in address space descriptors (_MEM).
    public enum MemoryCaching: UInt8, Sendable {
        case nonCacheable = 0, cacheable = 1, writeCombining = 2, prefetchable = 3
    }

    /// ResourceTemplate(){ descriptors }: a Buffer holding the descriptors and an end tag whose
    /// checksum byte is 0 ("treat as correct").
    public static func resourceTemplate(_ descriptors: [[UInt8]]) throws(AMLError) -> [UInt8] {
        try buffer(descriptors.flatMap { $0 } + [0x79, 0x00])
    }

    /// IO(Decode16 or Decode10, minimum, maximum, alignment, length): small descriptor 0x47.
    public static func ioPort(minimum: UInt16, maximum: UInt16, alignment: UInt8, length: UInt8,
                              decode16: Bool = true) -> [UInt8] {
        var w = ByteWriter(capacity: 8)
        w.u8(0x47)
        w.u8(decode16 ? 1 : 0)
        w.u16(minimum)
        w.u16(maximum)
        w.u8(alignment)
        w.u8(length)
        return w.bytes
    }

    /// IRQNoFlags(){ irqs }: small descriptor 0x22 with a 16-bit IRQ mask (edge, active high).
    public static func irqNoFlags(_ irqs: [UInt8]) throws(AMLError) -> [UInt8] {
        var mask: UInt16 = 0
        for irq in irqs {
            guard irq < 16 else { throw .invalidIRQ(irq) }
            mask |= 1 << UInt16(irq)
        }
        var w = ByteWriter(capacity: 3)
        w.u8(0x22)
        w.u16(mask)
        return w.bytes
    }

    /// DWordMemory(consumer/producer, PosDecode, MinFixed, MaxFixed, caching, ReadWrite/ReadOnly,
    /// granularity 0, base, base + length − 1, translation 0, length): large descriptor 0x87.
    public static func dwordMemory(base: UInt32, length: UInt32, caching: MemoryCaching = .nonCacheable,
                                   writable: Bool = true, producer: Bool = false) throws(AMLError) -> [UInt8] {
        let maximum = UInt64(base) + UInt64(length) &- 1
        guard length > 0, maximum <= UInt64(UInt32.max) else {
            throw .invalidRange(minimum: UInt64(base), maximum: maximum)
        }
        var w = ByteWriter(capacity: 26)
        w.u8(0x87)
        w.u16(23)
        addressSpaceFlags(&w, caching: caching, writable: writable, producer: producer)
        w.u32(0)  // granularity
        w.u32(base)
        w.u32(UInt32(maximum))
        w.u32(0)  // translation offset
        w.u32(length)
        return w.bytes
    }

    /// QWordMemory(...): the 64-bit form of `dwordMemory`, large descriptor 0x8A.
    public static func qwordMemory(base: UInt64, length: UInt64, caching: MemoryCaching = .nonCacheable,
                                   writable: Bool = true, producer: Bool = false) throws(AMLError) -> [UInt8] {
        let (last, overflow) = base.addingReportingOverflow(length &- 1)
        guard length > 0, !overflow else { throw .invalidRange(minimum: base, maximum: last) }
        var w = ByteWriter(capacity: 46)
        w.u8(0x8A)
        w.u16(43)
        addressSpaceFlags(&w, caching: caching, writable: writable, producer: producer)
        w.u64(0)  // granularity
        w.u64(base)
        w.u64(last)
        w.u64(0)  // translation offset
        w.u64(length)
        return w.bytes
    }

    /// Resource type (memory), general flags (MaxFixed | MinFixed | PosDecode | consumer bit)
    /// and memory type-specific flags (_MEM caching, _RW).
    private static func addressSpaceFlags(_ w: inout ByteWriter, caching: MemoryCaching, writable: Bool,
                                          producer: Bool) {
        w.u8(0)  // memory range
        w.u8(0x0C | (producer ? 0 : 1))
        w.u8(caching.rawValue << 1 | (writable ? 1 : 0))
    }
}

extension AML {
    /// WordBusNumber(producer, MinFixed, MaxFixed, PosDecode, granularity 0, minimum, maximum,
    /// translation 0, maximum − minimum + 1): large descriptor 0x88, resource type 2.
    public static func wordBusNumber(minimum: UInt16, maximum: UInt16) throws(AMLError) -> [UInt8] {
        try wordAddress(resourceType: 2, typeFlags: 0, minimum: minimum, maximum: maximum)
    }

    /// WordIO(producer, MinFixed, MaxFixed, PosDecode, EntireRange, ...): large descriptor 0x88,
    /// resource type 1; a bridge's I/O port window.
    public static func wordIO(minimum: UInt16, maximum: UInt16) throws(AMLError) -> [UInt8] {
        try wordAddress(resourceType: 1, typeFlags: 0x03, minimum: minimum, maximum: maximum)
    }

    private static func wordAddress(resourceType: UInt8, typeFlags: UInt8, minimum: UInt16,
                                    maximum: UInt16) throws(AMLError) -> [UInt8] {
        guard minimum <= maximum else { throw .invalidRange(minimum: UInt64(minimum), maximum: UInt64(maximum)) }
        var w = ByteWriter(capacity: 16)
        w.u8(0x88)
        w.u16(13)
        w.u8(resourceType)
        w.u8(0x0C)  // MaxFixed | MinFixed | PosDecode, producer
        w.u8(typeFlags)
        w.u16(0)  // granularity
        w.u16(minimum)
        w.u16(maximum)
        w.u16(0)  // translation offset
        w.u16(maximum &- minimum &+ 1)  // 0x10000 wraps to 0 only for the full 0…0xFFFF range
        return w.bytes
    }
}
