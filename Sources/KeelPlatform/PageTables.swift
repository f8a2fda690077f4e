/// The boot page tables: an identity map of the first 4 GiB with 2 MiB pages, enough for the
/// 64-bit boot protocol (kernel, zero page, command line and initrd all sit below 4 GiB).
/// Layout: PML4 at 0x9000 → PDPT at 0xA000 → four page directories at 0xB000–0xEFFF.
public enum PageTables {
    /// Page-table entry bits.
    public enum Bits {
        public static let present: UInt64 = 1 << 0
        public static let writable: UInt64 = 1 << 1
        /// In a page-directory entry: maps a 2 MiB page instead of pointing to a page table.
        public static let pageSize: UInt64 = 1 << 7
    }

    public static let mappedBytes: UInt64 = 4 << 30
    public static let largePageSize: UInt64 = 2 << 20
    static let entriesPerTable = 512

    /// The value for CR3: the PML4's address.
    public static let cr3: UInt64 = BootLayout.pml4Address

    /// One 4 KiB blob per table, PML4 first.
    public static func identityMap4G() -> [GuestBlob] {
        let tableLink = Bits.present | Bits.writable
        var pml4 = ByteWriter(zeroes: 4096)
        pml4.set64(BootLayout.pdptAddress | tableLink, at: 0)
        var pdpt = ByteWriter(zeroes: 4096)
        let directoryCount = Int(mappedBytes >> 30)
        for gib in 0..<directoryCount {
            pdpt.set64(directoryAddress(gib) | tableLink, at: gib * 8)
        }
        var blobs = [
            GuestBlob(guestPhysicalAddress: BootLayout.pml4Address, bytes: pml4.bytes),
            GuestBlob(guestPhysicalAddress: BootLayout.pdptAddress, bytes: pdpt.bytes),
        ]
        for gib in 0..<directoryCount {
            var pd = ByteWriter(zeroes: 4096)
            for i in 0..<entriesPerTable {
                let physical = UInt64(gib) << 30 + UInt64(i) * largePageSize
                pd.set64(physical | Bits.present | Bits.writable | Bits.pageSize, at: i * 8)
            }
            blobs.append(GuestBlob(guestPhysicalAddress: directoryAddress(gib), bytes: pd.bytes))
        }
        return blobs
    }

    static func directoryAddress(_ index: Int) -> UInt64 {
        BootLayout.pageDirectoryAddress + UInt64(index) * 0x1000
    }
}

/// Control register and EFER values for entering the kernel's 64-bit entry with the tables above.
public enum LongModeRegisters {
    /// CR0: PE | ET | PG. (ET is hardwired to 1 on modern CPUs; setting it avoids a spurious diff.)
    public static let cr0: UInt64 = 0x8000_0011
    /// CR4: PAE.
    public static let cr4: UInt64 = 0x20
    /// EFER: LME | LMA.
    public static let efer: UInt64 = 0x500
    /// RFLAGS: only the reserved bit 1.
    public static let rflags: UInt64 = 0x2
}
