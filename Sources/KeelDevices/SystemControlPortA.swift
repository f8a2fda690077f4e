import Synchronization

/// System control port A at 0x92 (length 1), "fast A20". Bit 1 (A20 gate) is stored and read
/// back; setting bit 0 (fast reset) raises `SystemEvent.reset`. Bit 0 reads 0.
public final class SystemControlPortA: PortDevice {
    private let events: SystemEventSink
    private let value = Atomic<UInt8>(0x02)   // A20 enabled

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
        value.store(byte & ~0x01, ordering: .relaxed)
        if byte & 0x01 != 0 { events(.reset) }
    }
}
