import Synchronization
@testable import KeelDevices

/// Records every level an interrupt line is driven to.
final class RecordingLine: InterruptLine {
    private let levels = Mutex<[Bool]>([])
    func setLevel(_ asserted: Bool) { levels.withLock { $0.append(asserted) } }
    var history: [Bool] { levels.withLock { $0 } }
    var level: Bool { levels.withLock { $0.last ?? false } }
    func clear() { levels.withLock { $0.removeAll() } }
}

/// Collects values handed to a sink closure.
final class Recorder<T: Sendable>: Sendable {
    private let items = Mutex<[T]>([])
    var all: [T] { items.withLock { $0 } }
    func append(_ item: T) { items.withLock { $0.append(item) } }
    func clear() { items.withLock { $0.removeAll() } }
    var sink: @Sendable (T) -> Void { { self.append($0) } }
}

/// A settable clock for injected time sources.
final class ManualClock<T: Sendable>: Sendable {
    private let value: Mutex<T>
    init(_ initial: T) { value = Mutex(initial) }
    var now: T {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

extension PortDevice {
    func read8(_ offset: UInt16) -> UInt8 { UInt8(truncatingIfNeeded: portRead(offset: offset, size: 1)) }
    func write8(_ offset: UInt16, _ value: UInt8) { portWrite(offset: offset, size: 1, value: UInt32(value)) }

    /// Every offset in 0..<length, every size 0...8, a spread of values: must not crash.
    func hammer(length: UInt16) {
        let values: [UInt32] = [0, 1, 0x7F, 0x80, 0xFF, 0x1234, 0xFFFF, 0x8000_0000, 0xFFFF_FFFF, 0xDEAD_BEEF]
        for offset in 0..<(length + 2) {
            for size in [0, 1, 2, 3, 4, 8, -1] {
                for value in values {
                    portWrite(offset: offset, size: size, value: value)
                    _ = portRead(offset: offset, size: size)
                }
            }
        }
    }
}
