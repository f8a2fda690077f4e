import KeelSystem
import Synchronization

/// The synthetic MSRs of one partition (design §2): partition-wide GUEST_OS_ID, HYPERCALL,
/// REFERENCE_TSC, TSC_INVARIANT_CONTROL and crash MSRs; per-VP VP_INDEX, VP_ASSIST_PAGE and the
/// SynIC MSRs (delegated to `SynIC`). Thread-safe: call from any VP thread on its MSR exits.
/// Unknown or unadvertised MSRs read as nil and reject writes: the VM injects #GP.
public final class SyntheticMSRs: Sendable {
    private struct PartitionState: Sendable {
        var guestOSID: UInt64 = 0
        var hypercall: UInt64 = 0
        var referenceTSC: UInt64 = 0
        var tscParameters: ReferenceTSCParameters?
        var tscSequence: UInt32 = 0
        var tscInvariantControl: UInt64 = 0
        var crash = [UInt64](repeating: 0, count: 5)
    }

    private final class VP: Sendable {
        let vpAssistPage = Mutex<UInt64>(0)
    }

    /// HYPERCALL bit 1: locked (further writes ignored).
    public static let hypercallLocked: UInt64 = 1 << 1
    static let hypercallReserved: UInt64 = 0xFFC

    public let configuration: HyperVConfiguration
    public let memory: any GuestMemory
    public let synic: SynIC
    private let referenceTime: @Sendable () -> UInt64
    private let state: Mutex<PartitionState>
    private let vps: [VP]

    /// - Parameter referenceTime: partition reference time in 100 ns units, monotonic, the same on
    ///   every VP. With a TSC page, build it from `ReferenceTSCParameters.referenceTime(atGuestTSC:)`
    ///   so that the MSR and the page agree.
    public init(configuration: HyperVConfiguration, memory: any GuestMemory, synic: SynIC,
                referenceTime: @escaping @Sendable () -> UInt64) {
        self.configuration = configuration
        self.memory = memory
        self.synic = synic
        self.referenceTime = referenceTime
        state = Mutex(PartitionState(tscParameters: configuration.referenceTSC))
        vps = (0..<configuration.vpCount).map { _ in VP() }
    }

    /// RDMSR: the value, or nil for #GP.
    public func read(_ msr: UInt32, vp: Int) -> UInt64? {
        guard vps.indices.contains(vp) else { return nil }
        let c = configuration
        switch msr {
        case HyperVMSR.guestOSID: return state.withLock { $0.guestOSID }
        case HyperVMSR.hypercall: return state.withLock { $0.hypercall }
        case HyperVMSR.vpIndex: return UInt64(vp)
        case HyperVMSR.timeRefCount: return referenceTime()
        case HyperVMSR.referenceTSC where c.offersTSCPage: return state.withLock { $0.referenceTSC }
        case HyperVMSR.tscFrequency where c.offersTSCPage: return c.tscFrequencyHz
        case HyperVMSR.apicFrequency where c.offersTSCPage: return c.apicFrequencyHz
        case HyperVMSR.vpAssistPage: return vps[vp].vpAssistPage.withLock { $0 }
        case HyperVMSR.tscInvariantControl where c.invariantTSC: return state.withLock { $0.tscInvariantControl }
        case HyperVMSR.crashP0...HyperVMSR.crashP4 where c.crashMSRs:
            return state.withLock { $0.crash[Int(msr - HyperVMSR.crashP0)] }
        case HyperVMSR.crashControl where c.crashMSRs:
            return GuestCrashReport.notifyBit | GuestCrashReport.messageBit
        case HyperVMSR.scontrol...HyperVMSR.eom, HyperVMSR.sint0...HyperVMSR.sint15:
            return synic.read(msr, vp: vp)
        default: return nil
        }
    }

    /// WRMSR: what happened and what the VM must do.
    public func write(_ msr: UInt32, value: UInt64, vp: Int) -> MSRWriteOutcome {
        guard vps.indices.contains(vp) else { return .rejected }
        let c = configuration
        switch msr {
        case HyperVMSR.guestOSID:
            state.withLock { $0.guestOSID = value }
            return .accepted
        case HyperVMSR.hypercall:
            return writeHypercall(value)
        case HyperVMSR.referenceTSC where c.offersTSCPage:
            return writeReferenceTSC(value)
        case HyperVMSR.vpAssistPage:
            guard SynICRegister.isValidPageMSR(value) else { return .rejected }
            vps[vp].vpAssistPage.withLock { $0 = value }
            return .accepted
        case HyperVMSR.tscInvariantControl where c.invariantTSC:
            guard value & ~1 == 0 else { return .rejected }
            state.withLock { $0.tscInvariantControl = value }
            return .accepted
        case HyperVMSR.crashP0...HyperVMSR.crashP4 where c.crashMSRs:
            state.withLock { $0.crash[Int(msr - HyperVMSR.crashP0)] = value }
            return .accepted
        case HyperVMSR.crashControl where c.crashMSRs:
            return writeCrashControl(value)
        case HyperVMSR.scontrol, HyperVMSR.siefp, HyperVMSR.simp, HyperVMSR.eom, HyperVMSR.sint0...HyperVMSR.sint15:
            return synic.write(msr, value: value, vp: vp)
        default:
            return .rejected   // VP_INDEX, TIME_REF_COUNT, SVERSION, frequencies are read-only; rest unknown
        }
    }

    /// Partition reset (reboot): every MSR back to its reset value, SynIC queues emptied. Guest
    /// memory is left alone.
    public func reset() {
        state.withLock { $0 = PartitionState(tscParameters: configuration.referenceTSC) }
        for vp in vps { vp.vpAssistPage.withLock { $0 = 0 } }
        synic.reset()
    }

    /// Changes the reference TSC parameters (e.g. after restore on another host): when the page
    /// is enabled it is rewritten with sequence 0 first, then the new values and a new sequence.
    /// Nil parameters leave the page invalid (sequence 0): the guest falls back to TIME_REF_COUNT.
    /// Returns false when an enabled page could not be written.
    @discardableResult
    public func updateReferenceTSC(_ parameters: ReferenceTSCParameters?) -> Bool {
        state.withLock { s in
            s.tscParameters = parameters
            guard let gpa = SynICRegister.enabledPage(s.referenceTSC) else { return true }
            return (try? memory.storeInteger(UInt32(0), at: gpa)) != nil && writeTSCPage(&s, gpa: gpa)
        }
    }

    private func writeHypercall(_ value: UInt64) -> MSRWriteOutcome {
        guard value & Self.hypercallReserved == 0 else { return .rejected }
        return state.withLock { s -> MSRWriteOutcome in
            if s.hypercall & Self.hypercallLocked != 0 { return .accepted }
            // TLFS: the page cannot be enabled before the guest OS identified itself.
            s.hypercall = s.guestOSID == 0 ? value & ~SynICRegister.enable : value
            guard let gpa = SynICRegister.enabledPage(s.hypercall) else { return .accepted }
            let page = HypercallPage(hypercallPort: configuration.hypercallPort,
                                     signalEventPort: configuration.signalEventPort)
            let written = (try? memory.write(page.bytes, at: gpa)) != nil
            return .acceptedWithEffect(.hypercallPageInstalled(gpa: gpa, written: written))
        }
    }

    private func writeReferenceTSC(_ value: UInt64) -> MSRWriteOutcome {
        guard SynICRegister.isValidPageMSR(value) else { return .rejected }
        return state.withLock { s -> MSRWriteOutcome in
            s.referenceTSC = value
            guard let gpa = SynICRegister.enabledPage(value) else { return .accepted }
            let written = writeTSCPage(&s, gpa: gpa)
            return .acceptedWithEffect(.referenceTSCPageInstalled(gpa: gpa, written: written))
        }
    }

    /// Writes the whole TSC page with a fresh sequence (never 0 or 0xFFFFFFFF), or sequence 0
    /// when there are no parameters.
    private func writeTSCPage(_ s: inout PartitionState, gpa: UInt64) -> Bool {
        let page: [UInt8]
        if let p = s.tscParameters {
            s.tscSequence = s.tscSequence &+ 1
            if s.tscSequence == 0 || s.tscSequence == UInt32.max { s.tscSequence = 1 }
            page = p.pageBytes(sequence: s.tscSequence)
        } else {
            page = [UInt8](repeating: 0, count: ReferenceTSCParameters.pageSize)
        }
        // Body first, sequence last, so a concurrent reader never sees a valid sequence with old data.
        do {
            try memory.write(Array(page[4...]), at: gpa + 4)
            try memory.write(Array(page[0..<4]), at: gpa)
            return true
        } catch {
            return false
        }
    }

    private func writeCrashControl(_ value: UInt64) -> MSRWriteOutcome {
        guard value & ~(GuestCrashReport.notifyBit | GuestCrashReport.messageBit) == 0 else { return .rejected }
        guard value & GuestCrashReport.notifyBit != 0 else { return .accepted }
        let parameters = state.withLock { $0.crash }
        return .acceptedWithEffect(.guestCrashed(
            GuestCrashReport.capture(parameters: parameters, control: value, memory: memory)))
    }
}
