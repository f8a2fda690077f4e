/// Ready-made DSDT device nodes for the chipset, to pass in `ACPIConfig.extraDSDT`.
public enum ACPIDevices {
    /// Default 32-bit PCI MMIO window: from the top of low RAM's limit up to the IO-APIC.
    public static let pciMMIOWindow: Range<UInt64> = BootLayout.lowMemoryLimit..<BootLayout.ioapicAddress

    /// `Device(\_SB.PCI0)`: a PNP0A03 host bridge on bus 0 reached through configuration
    /// mechanism 1 (ports 0xCF8–0xCFF). With ACPI enabled Linux only enumerates PCI root buses
    /// the DSDT declares, so without this node it never scans bus 0. The _CRS decodes buses
    /// 0–255, all I/O ports except the config ports, and `mmioWindow` (must lie below 4 GiB).
    public static func pciHostBridge(mmioWindow: Range<UInt64> = pciMMIOWindow) throws(AMLError) -> [UInt8] {
        guard !mmioWindow.isEmpty, mmioWindow.upperBound <= BootLayout.highMemoryBase else {
            throw .invalidRange(minimum: mmioWindow.lowerBound, maximum: mmioWindow.upperBound &- 1)
        }
        return try AML.device("\\_SB.PCI0", [
            AML.name("_HID", AML.eisaID("PNP0A03")),
            AML.name("_UID", AML.integer(0)),
            AML.name("_SEG", AML.integer(0)),
            AML.name("_BBN", AML.integer(0)),
            AML.name("_CRS", AML.resourceTemplate([
                AML.wordBusNumber(minimum: 0, maximum: 0xFF),
                AML.ioPort(minimum: 0xCF8, maximum: 0xCF8, alignment: 1, length: 8),
                AML.wordIO(minimum: 0x0000, maximum: 0x0CF7),
                AML.wordIO(minimum: 0x0D00, maximum: 0xFFFF),
                AML.dwordMemory(base: UInt32(mmioWindow.lowerBound),
                                length: UInt32(mmioWindow.upperBound - mmioWindow.lowerBound), producer: true),
            ])),
        ])
    }

    /// `Device(\_SB.VMBS)` with `_HID "VMBus"`: Debian kernels start `hv_vmbus` only from this
    /// ACPI node (hyperv-platform.md §9.1). The empty `_CRS` gives no MMIO window, which
    /// synthetic storage, network and the integration services do not need.
    public static func vmbus() throws(AMLError) -> [UInt8] {
        try AML.scope("\\_SB_", [
            AML.device("VMBS", [
                AML.name("_HID", AML.string("VMBus")),
                AML.name("_UID", AML.integer(0)),
                AML.name("_CRS", AML.resourceTemplate([])),
            ]),
        ])
    }
}
