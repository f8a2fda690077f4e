import Synchronization

/// The reset control register at port 0xCF9 (length 1). Writing a value with bit 2 (reset
/// CPU) set raises `SystemEvent.reset`, whatever bits 1 (hard reset) and 3 (full reset) say;
/// reads return the last value written.
///
/// Port 0xCF9 lies inside the PCI configuration address dword (0xCF8-0xCFB): when a
/// `PCIHostBridge` is registered, pass this object to it instead of registering it directly.
public final class ResetControl: PortDevice {
    private let events: SystemEventSink
    private let value = Atomic<UInt8>(0)

    public init(events: @escaping SystemEventSink) {
        self.events = events
    }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        guard offset == 0 else { return PortAccess.mask(size) }
        return UInt32(value.load(ordering: .relaxed))
    }

    public func portWrite(offset: UInt16, size: Int, value newValue: UInt32) {
        guard offset == 0 else { return }
        let byte = UInt8(truncatingIfNeeded: newValue)
        value.store(byte, ordering: .relaxed)
        if byte & 0x04 != 0 { events(.reset) }
    }
}
