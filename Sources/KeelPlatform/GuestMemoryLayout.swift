/// Why a guest RAM size was rejected.
public enum GuestMemoryLayoutError: Error, CustomStringConvertible, Equatable {
    case tooSmall(size: UInt64, minimum: UInt64)
    case tooLarge(size: UInt64, maximum: UInt64)
    case notPageAligned(size: UInt64)

    public var description: String {
        switch self {
        case let .tooSmall(size, minimum):
            "guest RAM \(size) bytes is below the minimum of \(minimum) bytes (\(minimum >> 20) MiB)"
        case let .tooLarge(size, maximum):
            "guest RAM \(size) bytes exceeds the maximum of \(maximum) bytes (\(maximum >> 30) GiB)"
        case let .notPageAligned(size):
            "guest RAM \(size) bytes is not a multiple of the 4 KiB page size"
        }
    }
}

/// A contiguous range of guest-physical addresses backed by guest RAM (one KVM memory slot).
public struct GuestRAMRegion: Sendable, Equatable {
    public var guestPhysicalAddress: UInt64
    public var size: UInt64
    public var end: UInt64 { guestPhysicalAddress + size }

    public init(guestPhysicalAddress: UInt64, size: UInt64) {
        self.guestPhysicalAddress = guestPhysicalAddress
        self.size = size
    }
}

/// Where a guest's RAM goes in its physical address space and the e820 map describing it.
/// RAM fills [0, min(size, 3 GiB)); the remainder starts at 4 GiB, leaving the 32-bit hole
/// [0xC000_0000, 4 GiB) for PCI MMIO, the IO-APIC and the LAPIC.
///
/// e820 choices: the ACPI area [0xE0000, 1 MiB) is `reserved`, not `acpi` (reclaimable),
/// because it also holds the FACS, which the OS must never reuse, and because Linux reserves
/// that legacy BIOS window anyway. [0xFEC0_0000, 4 GiB) is `reserved` so that the IO-APIC and
/// LAPIC pages are never treated as RAM; the rest of the hole is left out of the map, which is
/// where Linux looks for its PCI MMIO window (the largest gap below 4 GiB).
public struct GuestMemoryLayout: Sendable, Equatable {
    public static let minimumRAMSize: UInt64 = 64 << 20
    public static let maximumRAMSize: UInt64 = 1 << 40

    public let ramSize: UInt64
    /// RAM regions in ascending address order: one below the hole, and one above 4 GiB if any.
    public let ramRegions: [GuestRAMRegion]

    public init(ramSize: UInt64) throws(GuestMemoryLayoutError) {
        guard ramSize >= Self.minimumRAMSize else {
            throw .tooSmall(size: ramSize, minimum: Self.minimumRAMSize)
        }
        guard ramSize <= Self.maximumRAMSize else {
            throw .tooLarge(size: ramSize, maximum: Self.maximumRAMSize)
        }
        guard ramSize % BootLayout.pageSize == 0 else { throw .notPageAligned(size: ramSize) }
        self.ramSize = ramSize
        let low = min(ramSize, BootLayout.lowMemoryLimit)
        var regions = [GuestRAMRegion(guestPhysicalAddress: 0, size: low)]
        if ramSize > low {
            regions.append(GuestRAMRegion(guestPhysicalAddress: BootLayout.highMemoryBase, size: ramSize - low))
        }
        ramRegions = regions
    }

    /// One past the last byte of RAM below 4 GiB.
    public var lowMemoryTop: UInt64 { min(ramSize, BootLayout.lowMemoryLimit) }

    /// One past the last byte of RAM above 4 GiB, or nil when all RAM is below the hole.
    public var highMemoryTop: UInt64? {
        ramSize > lowMemoryTop ? BootLayout.highMemoryBase + (ramSize - lowMemoryTop) : nil
    }

    /// The e820 map, sorted and non-overlapping.
    public var e820: [E820Entry] {
        var map = [
            E820Entry(base: 0, size: BootLayout.ebdaAddress, type: .ram),
            E820Entry(base: BootLayout.ebdaAddress, size: BootLayout.vgaHoleAddress - BootLayout.ebdaAddress,
                      type: .reserved),
            E820Entry(base: BootLayout.acpiAreaBase, size: UInt64(BootLayout.acpiAreaSize), type: .reserved),
            E820Entry(base: BootLayout.kernelLoadAddress, size: lowMemoryTop - BootLayout.kernelLoadAddress,
                      type: .ram),
            E820Entry(base: BootLayout.platformMMIOReservedBase,
                      size: BootLayout.highMemoryBase - BootLayout.platformMMIOReservedBase, type: .reserved),
        ]
        if let top = highMemoryTop {
            map.append(E820Entry(base: BootLayout.highMemoryBase, size: top - BootLayout.highMemoryBase, type: .ram))
        }
        return map
    }
}
