import Synchronization

/// A device reached through x86 port I/O. `offset` is relative to the base port the device was
/// registered at; `size` is 1, 2 or 4. Called from vCPU threads: implementations synchronise
/// themselves and return quickly.
public protocol PortDevice: AnyObject, Sendable {
    func portRead(offset: UInt16, size: Int) -> UInt32
    func portWrite(offset: UInt16, size: Int, value: UInt32)
}

/// A device reached through memory-mapped I/O. `offset` is relative to the registered base;
/// `size` is 1, 2, 4 or 8.
public protocol MMIODevice: AnyObject, Sendable {
    func mmioRead(offset: UInt64, size: Int) -> UInt64
    func mmioWrite(offset: UInt64, size: Int, value: UInt64)
}

/// A level-triggered interrupt line into the platform's interrupt controller (an IO-APIC/PIC pin).
/// The VM assembly implements it on KVM; tests implement it with a recorder.
public protocol InterruptLine: Sendable {
    func setLevel(_ asserted: Bool)
}

/// Platform-wide events a device can raise: the guest asked to power off or to reset.
public enum SystemEvent: Sendable, Equatable {
    case powerOff
    case reset
}

/// Where devices report `SystemEvent`s.
public typealias SystemEventSink = @Sendable (SystemEvent) -> Void

/// Thrown when a device registration overlaps another one.
public struct BusRangeConflict: Error, CustomStringConvertible {
    public let base: UInt64
    public let length: UInt64
    public var description: String {
        "bus range 0x\(String(base, radix: 16)) (+\(length)) overlaps an existing device"
    }
}

/// A sorted, immutable-after-setup map from address ranges to devices. Lookups are a binary
/// search over a flat array: no allocation on the exit path.
public struct AddressMap<Device: Sendable>: Sendable {
    @usableFromInline struct Entry: Sendable {
        @usableFromInline let base: UInt64
        @usableFromInline let length: UInt64
        @usableFromInline let device: Device
    }
    @usableFromInline var entries: [Entry] = []

    public init() {}

    public mutating func insert(base: UInt64, length: UInt64, device: Device) throws(BusRangeConflict) {
        precondition(length > 0, "empty bus range")
        let end = base &+ length
        for e in entries where base < e.base &+ e.length && e.base < end {
            throw BusRangeConflict(base: base, length: length)
        }
        entries.append(Entry(base: base, length: length, device: device))
        entries.sort { $0.base < $1.base }
    }

    /// The device covering `address` and the offset of `address` inside its range.
    @inlinable
    public func lookup(_ address: UInt64) -> (device: Device, offset: UInt64)? {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low + high) / 2
            let e = entries[mid]
            if address < e.base {
                high = mid
            } else if address - e.base >= e.length {
                low = mid + 1
            } else {
                return (e.device, address - e.base)
            }
        }
        return nil
    }
}

/// Port I/O and MMIO dispatch for one VM. Built during VM assembly, then read-only.
/// Accesses to unclaimed addresses read as all-ones and are reported to `unclaimed`
/// (the VM rate-limits the log).
public final class DeviceBus: Sendable {
    public let ports: AddressMap<any PortDevice>
    public let mmio: AddressMap<any MMIODevice>

    public init(ports: AddressMap<any PortDevice>, mmio: AddressMap<any MMIODevice>) {
        self.ports = ports
        self.mmio = mmio
    }

    /// Returns the value read, or nil when no device claims the port (caller answers all-ones).
    @inlinable
    public func portRead(_ port: UInt16, size: Int) -> UInt32? {
        guard let (device, offset) = ports.lookup(UInt64(port)) else { return nil }
        return device.portRead(offset: UInt16(truncatingIfNeeded: offset), size: size)
    }

    /// Returns false when no device claims the port.
    @inlinable
    public func portWrite(_ port: UInt16, size: Int, value: UInt32) -> Bool {
        guard let (device, offset) = ports.lookup(UInt64(port)) else { return false }
        device.portWrite(offset: UInt16(truncatingIfNeeded: offset), size: size, value: value)
        return true
    }

    @inlinable
    public func mmioRead(_ address: UInt64, size: Int) -> UInt64? {
        guard let (device, offset) = mmio.lookup(address) else { return nil }
        return device.mmioRead(offset: offset, size: size)
    }

    @inlinable
    public func mmioWrite(_ address: UInt64, size: Int, value: UInt64) -> Bool {
        guard let (device, offset) = mmio.lookup(address) else { return false }
        device.mmioWrite(offset: offset, size: size, value: value)
        return true
    }
}
