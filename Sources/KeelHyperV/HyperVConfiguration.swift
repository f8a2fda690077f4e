/// What the Hyper-V interface offers to one partition. The CPUID leaves, the synthetic MSRs and
/// the hypercall page are all derived from this one value, so what is advertised is what is
/// implemented.
public struct HyperVConfiguration: Sendable, Equatable {
    /// Number of virtual processors (VP indexes 0..<vpCount).
    public var vpCount: Int
    /// Host logical processor count reported in CPUID 0x40000005 EBX.
    public var hostLogicalProcessors: Int
    /// I/O port the hypercall page uses for the generic (exit to user space) path.
    public var hypercallPort: UInt8
    /// I/O port for the in-kernel HvSignalEvent fast path (ioeventfd, datamatch = connection id),
    /// or nil for the minimal page that sends every hypercall to `hypercallPort`.
    public var signalEventPort: UInt8?
    /// Guest TSC frequency in Hz. When set (and above 10 MHz) the reference TSC page and the
    /// TSC/APIC frequency MSRs are offered.
    public var tscFrequencyHz: UInt64?
    /// Guest TSC value at partition start (reference time 0), used for the TSC page offset.
    public var guestTSCAtStart: UInt64
    /// LAPIC timer input clock in Hz (KVM's in-kernel LAPIC: 1 GHz).
    public var apicFrequencyHz: UInt64
    /// Advertise the TSC-invariant control (CPUID 0x40000003 EAX bit 15, MSR 0x40000118). Only
    /// when the host TSC is invariant and every vCPU has the same TSC offset.
    public var invariantTSC: Bool
    /// Offer the guest crash MSRs (0x40000100–0x40000105).
    public var crashMSRs: Bool
    /// Messages queued per (VP, SINT) before further posts are dropped and counted.
    public var messageQueueLimit: Int

    public init(
        vpCount: Int,
        hostLogicalProcessors: Int? = nil,
        hypercallPort: UInt8,
        signalEventPort: UInt8? = nil,
        tscFrequencyHz: UInt64? = nil,
        guestTSCAtStart: UInt64 = 0,
        apicFrequencyHz: UInt64 = 1_000_000_000,
        invariantTSC: Bool = false,
        crashMSRs: Bool = true,
        messageQueueLimit: Int = 64
    ) {
        self.vpCount = max(0, vpCount)
        self.hostLogicalProcessors = hostLogicalProcessors ?? max(0, vpCount)
        self.hypercallPort = hypercallPort
        self.signalEventPort = signalEventPort
        self.tscFrequencyHz = tscFrequencyHz
        self.guestTSCAtStart = guestTSCAtStart
        self.apicFrequencyHz = apicFrequencyHz
        self.invariantTSC = invariantTSC
        self.crashMSRs = crashMSRs
        self.messageQueueLimit = max(1, messageQueueLimit)
    }

    /// Reference TSC page parameters, or nil when no usable TSC frequency is configured.
    public var referenceTSC: ReferenceTSCParameters? {
        tscFrequencyHz.flatMap { ReferenceTSCParameters(tscFrequencyHz: $0, guestTSCAtStart: guestTSCAtStart) }
    }

    /// The reference TSC page and frequency MSRs are offered only with a usable TSC frequency.
    public var offersTSCPage: Bool { referenceTSC != nil }
}
