/// Interface-type (class) GUIDs of the synthetic devices Linux 6.1–6.12 binds to
/// (hyperv-platform.md §7). An offer's class GUID selects the guest driver.
public enum VMBusDeviceClass {
    private static func guid(_ text: String) -> VMBusGUID {
        VMBusGUID(text) ?? .zero
    }

    /// Heartbeat integration component (hv_utils).
    public static let heartbeat = guid("57164f39-9115-4e78-ab55-382f3bd5422d")
    /// Shutdown integration component (hv_utils).
    public static let shutdown = guid("0e0b6031-5213-4934-818b-38d90ced39db")
    /// Time synchronisation integration component (hv_utils).
    public static let timeSync = guid("9527e630-d0ae-497b-adce-e80ab0175caf")
    /// Key-value pair exchange (hv_utils + hv_kvp_daemon).
    public static let kvp = guid("a9a0f4e7-5a45-4d96-b827-8a841e8c03e6")
    /// Volume shadow copy / backup (hv_utils + hv_vss_daemon).
    public static let vss = guid("35fa2e29-ea23-4236-96ae-3a6ebacba440")
    /// Guest file copy (6.1 hv_utils; 6.12 uio_hv_generic).
    public static let fileCopy = guid("34d14be3-dee4-41c8-9ae7-6b174977c192")
    /// Synthetic SCSI controller (hv_storvsc).
    public static let scsi = guid("ba6163d9-04a1-4d29-b605-72e2ffb1dc7f")
    /// IDE accelerator (hv_storvsc).
    public static let ide = guid("32412632-86cb-44a2-9b5c-50d1417354f5")
    /// Synthetic Fibre Channel (hv_storvsc).
    public static let fibreChannel = guid("2f9bcc4a-0069-4af3-b76b-6fd0be528cda")
    /// Synthetic network adapter (hv_netvsc).
    public static let network = guid("f8615163-df3e-46c5-913f-f2d2f965ed0e")
    /// Dynamic memory / balloon (hv_balloon).
    public static let dynamicMemory = guid("525074dc-8985-46e2-8057-a307dc18a502")
    /// Synthetic keyboard (hyperv_keyboard).
    public static let keyboard = guid("f912ad6d-2b17-48ea-bd65-f927a61c7684")
    /// Synthetic mouse, HID (hid_hyperv).
    public static let mouse = guid("cfa8b69e-5b4a-4cc0-b98b-8ba1a1f3f95a")
    /// Synthetic video (hyperv_drm / hyperv_fb); needs an MMIO window.
    public static let video = guid("da0a7802-e377-4aac-8e77-0558eb1073f8")
    /// PCI pass-through (pci-hyperv); needs MMIO windows.
    public static let pciPassThrough = guid("44c4f61d-4444-4400-9d52-802e27ede19f")
    /// NetworkDirect (no Debian driver).
    public static let networkDirect = guid("8c2eaf3d-32a7-4b09-ab99-bd1f1c86b501")
}
