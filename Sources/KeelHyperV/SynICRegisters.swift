/// Field access and validation for the SynIC MSR values.
public enum SynICRegister {
    /// SINTx reset value: masked, vector 0.
    public static let sintReset: UInt64 = 0x1_0000
    public static let sintMasked: UInt64 = 1 << 16
    public static let sintAutoEOI: UInt64 = 1 << 17
    public static let sintPolling: UInt64 = 1 << 18
    static let sintWritable: UInt64 = 0xFF | sintMasked | sintAutoEOI | sintPolling
    /// Enable bit of SCONTROL, SIMP, SIEFP (and HYPERCALL, REFERENCE_TSC, VP_ASSIST_PAGE).
    public static let enable: UInt64 = 1
    /// Bits 11:1 of the page-address MSRs are reserved.
    static let pageReserved: UInt64 = 0xFFE
    static let pageMask: UInt64 = ~0xFFF

    /// A SINT value the guest may write: no reserved bits; unmasked vectors must be 16–255.
    public static func isValidSINT(_ value: UInt64) -> Bool {
        guard value & ~sintWritable == 0 else { return false }
        return value & sintMasked != 0 || value & 0xFF >= 16
    }

    /// A page-address MSR value (enable + GPFN) with the reserved bits clear.
    public static func isValidPageMSR(_ value: UInt64) -> Bool { value & pageReserved == 0 }

    /// Page GPA of an enabled page MSR, else nil.
    public static func enabledPage(_ value: UInt64) -> UInt64? {
        value & enable != 0 ? value & pageMask : nil
    }
}

/// A snapshot of one VP's SynIC registers and queues, for the VM and for diagnostics.
public struct SynICRegisters: Sendable, Equatable {
    public var scontrol: UInt64 = 0
    public var simp: UInt64 = 0
    public var siefp: UInt64 = 0
    public var sints = [UInt64](repeating: SynICRegister.sintReset, count: SynICLayout.sintCount)
    /// Messages waiting per SINT.
    public var queuedMessages = [Int](repeating: 0, count: SynICLayout.sintCount)
    /// Messages dropped per SINT because the queue was full.
    public var droppedMessages = [UInt64](repeating: 0, count: SynICLayout.sintCount)

    public init() {}

    /// Vector of SINT `sint` if an interrupt may be sent for it now: SynIC enabled, SINT
    /// unmasked and not in polling mode.
    public func interruptVector(sint: Int) -> UInt8? {
        let value = sints[sint]
        guard scontrol & SynICRegister.enable != 0, value & SynICRegister.sintMasked == 0,
              value & SynICRegister.sintPolling == 0 else { return nil }
        return UInt8(truncatingIfNeeded: value)
    }
}
