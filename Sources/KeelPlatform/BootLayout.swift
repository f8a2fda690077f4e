/// The fixed guest-physical addresses Keel uses to enter a Linux kernel in 64-bit mode, in one
/// place so that overlaps are easy to see. Everything below 1 MiB lives in the first low-RAM
/// e820 range except the ACPI area (reserved) and the legacy VGA/BIOS hole.
///
/// ```
/// 0x0000_0500  GDT (4 descriptors, 32 bytes)              GDT.swift
/// 0x0000_7000  zero page (struct boot_params, 4 KiB)     BootParams.swift
/// 0x0000_8FF0  initial RSP (stack grows down to 0x8000)
/// 0x0000_9000  PML4                                        PageTables.swift
/// 0x0000_A000  PDPT
/// 0x0000_B000  4 page directories (2 MiB pages), to 0xEFFF
/// 0x0002_0000  kernel command line (≤ 4096 bytes incl. NUL)
/// 0x0009_FC00  EBDA-sized reserved tail of conventional memory (e820 reserved)
/// 0x000E_0000  ACPI tables, 128 KiB, RSDP first (e820 reserved) ACPITables.swift
/// 0x0010_0000  protected-mode kernel load address; 64-bit entry at +0x200
/// 0xC000_0000  32-bit MMIO hole (PCI, IO-APIC 0xFEC0_0000, LAPIC 0xFEE0_0000) to 4 GiB
/// ```
public enum BootLayout {
    public static let gdtAddress: UInt64 = 0x500
    public static let zeroPageAddress: UInt64 = 0x7000
    public static let initialStackPointer: UInt64 = 0x8FF0
    public static let pml4Address: UInt64 = 0x9000
    public static let pdptAddress: UInt64 = 0xA000
    /// First of four consecutive page directories (one per GiB of the identity map).
    public static let pageDirectoryAddress: UInt64 = 0xB000
    public static let commandLineAddress: UInt64 = 0x20000
    /// Size of the command line buffer, including the terminating NUL.
    public static let commandLineMaxSize = 4096
    /// Start of the reserved range at the top of conventional memory (below the VGA hole).
    public static let ebdaAddress: UInt64 = 0x9FC00
    public static let vgaHoleAddress: UInt64 = 0xA0000
    public static let acpiAreaBase: UInt64 = 0xE0000
    public static let acpiAreaSize = 0x20000
    public static let kernelLoadAddress: UInt64 = 0x100000
    /// Offset of the 64-bit entry point (`startup_64`) from the protected-mode kernel's start.
    public static let kernelEntryOffset64: UInt64 = 0x200
    public static let kernelEntry64: UInt64 = kernelLoadAddress + kernelEntryOffset64
    /// Guest RAM ends at this address below 4 GiB; the rest is placed from `highMemoryBase`.
    public static let lowMemoryLimit: UInt64 = 0xC000_0000
    public static let highMemoryBase: UInt64 = 0x1_0000_0000
    public static let ioapicAddress: UInt64 = 0xFEC0_0000
    public static let lapicAddress: UInt64 = 0xFEE0_0000
    /// Reserved in e820 from here to 4 GiB (IO-APIC, LAPIC, the legacy BIOS flash window).
    public static let platformMMIOReservedBase: UInt64 = 0xFEC0_0000
    public static let pageSize: UInt64 = 0x1000
}
