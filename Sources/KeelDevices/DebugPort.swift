import Synchronization

/// The POST code port at 0x80 (length 1). Linux writes to it as an I/O delay, often, so it must
/// be cheap: a write only records the code (see `lastCode`, for diagnostics); reads return
/// all-ones, as with no POST card fitted.
public final class DebugPort: PortDevice {
    private let code = Atomic<UInt8>(0)

    public init() {}

    /// The last byte the guest wrote.
    public var lastCode: UInt8 { code.load(ordering: .relaxed) }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        PortAccess.mask(size)
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        code.store(UInt8(truncatingIfNeeded: value), ordering: .relaxed)
    }
}
