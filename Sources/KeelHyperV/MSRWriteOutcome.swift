/// The result of a guest WRMSR on a synthetic MSR, telling the VM what to do.
public enum MSRWriteOutcome: Sendable, Equatable {
    /// Stored; nothing else to do.
    case accepted
    /// Architecturally invalid (unknown MSR, read-only MSR, reserved bits, bad VP): inject #GP
    /// (`msr.error = 1` on `KVM_EXIT_X86_WRMSR`).
    case rejected
    /// Stored, and the VM must react to the effect.
    case acceptedWithEffect(MSRWriteEffect)
}

/// Side effects of an accepted synthetic-MSR write.
public enum MSRWriteEffect: Sendable, Equatable {
    /// The HYPERCALL MSR was enabled at `gpa`; `written` is false when the page lies outside
    /// guest memory (the guest will fault calling it; worth a log line).
    case hypercallPageInstalled(gpa: UInt64, written: Bool)
    /// The reference TSC page was enabled at `gpa` (see `written` as above).
    case referenceTSCPageInstalled(gpa: UInt64, written: Bool)
    /// CRASH_CTL was written with the notify bit: the guest crashed.
    case guestCrashed(GuestCrashReport)
    /// A SynIC register (SCONTROL, SIMP, SIEFP, SINTx) or EOM was written on `vp` and queued
    /// messages were retried: inject each interrupt (`KVM_SIGNAL_MSI`). Re-read
    /// `SynIC.registers(vp:)` if SINT vectors feed irqfd routes.
    case synICUpdated(SynICUpdate)
}

/// What a SynIC register write changed.
public struct SynICUpdate: Sendable, Equatable {
    public var vp: Int
    public var msr: UInt32
    /// Interrupts to inject now (messages that could be delivered after the write).
    public var interrupts: [SynICInterrupt]
    /// The guest set auto-EOI on a SINT, which the in-kernel LAPIC cannot honour: log loudly
    /// (a guest that ignores the deprecate-AEOI hint will wedge).
    public var autoEOIRequested: Bool

    public init(vp: Int, msr: UInt32, interrupts: [SynICInterrupt], autoEOIRequested: Bool = false) {
        self.vp = vp
        self.msr = msr
        self.interrupts = interrupts
        self.autoEOIRequested = autoEOIRequested
    }
}
