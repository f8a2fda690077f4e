import Synchronization

/// QEMU-compatible "pvpanic" ISA device (ACPI id QEMU0001, one I/O port, 0x505 by convention).
/// Linux's pvpanic driver reads the port to learn which events the host supports and writes an
/// event bit when the kernel panics; Keel turns that into a guest-crash stop instead of waiting
/// for a reboot that looks like any other.
public final class PanicNotifier: PortDevice {
    /// Event bits (read: supported; write: happened).
    public enum Event {
        public static let panicked: UInt32 = 1 << 0
        public static let crashLoaded: UInt32 = 1 << 1
    }

    public static let defaultPort: UInt16 = 0x505

    private let onPanic: @Sendable (UInt32) -> Void
    private let reported = Atomic<Bool>(false)

    /// `onPanic` is called once, with the event bits, on the first panic report.
    public init(onPanic: @escaping @Sendable (UInt32) -> Void) {
        self.onPanic = onPanic
    }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        offset == 0 ? Event.panicked : 0
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        guard offset == 0, value & Event.panicked != 0 else { return }
        if !reported.exchange(true, ordering: .acquiringAndReleasing) { onPanic(value) }
    }
}
