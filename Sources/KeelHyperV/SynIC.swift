import KeelSystem
import Synchronization

/// Result of posting a host → guest message.
public struct SynICPostResult: Sendable, Equatable {
    public enum Disposition: Sendable, Equatable {
        /// A message left the FIFO into the slot (this one, or an older one ahead of it).
        case delivered
        /// Waiting: slot busy (pending flag set, guest will EOM), SIMP/SynIC disabled or SINT masked.
        case queued
        /// The FIFO is full; the message is gone and counted in `droppedMessages`.
        case dropped
        /// VP or SINT number out of range.
        case invalidTarget
    }

    public var disposition: Disposition
    /// Inject this interrupt now, if set.
    public var interrupt: SynICInterrupt?

    public init(disposition: Disposition, interrupt: SynICInterrupt? = nil) {
        self.disposition = disposition
        self.interrupt = interrupt
    }
}

/// Result of setting an event flag (host → guest channel signal).
public enum SynICEventResult: Sendable, Equatable {
    /// The flag went from clear to set; inject the interrupt if there is one (none when SynIC is
    /// disabled or the SINT is masked or polling).
    case signalled(SynICInterrupt?)
    /// The flag was already set: the guest has not handled it yet, no interrupt needed.
    case alreadyPending
    /// SIEFP is disabled on that VP: the signal is lost (architectural).
    case notEnabled
    /// The SIEFP page the guest programmed is not in guest memory.
    case pageOutsideGuestMemory
    /// VP, SINT or flag number out of range.
    case invalidTarget
}

/// The synthetic interrupt controller of one partition: per-VP SynIC registers, message FIFOs,
/// SIMP delivery and SIEFP event flags. Thread-safe; each VP's state has its own mutex, so the
/// VP threads (MSR exits) and device threads (posts, signals) can call in concurrently.
public final class SynIC: Sendable {
    private final class VP: Sendable {
        let state = Mutex(SynICVPState())
    }

    public let memory: any GuestMemory
    public let queueLimit: Int
    private let vps: [VP]

    public init(vpCount: Int, memory: any GuestMemory, queueLimit: Int = 64) {
        self.memory = memory
        self.queueLimit = max(1, queueLimit)
        vps = (0..<max(0, vpCount)).map { _ in VP() }
    }

    public var vpCount: Int { vps.count }

    /// Queues `message` for SINT `sint` of VP `vp` and tries to deliver.
    public func post(_ message: SynICMessage, vp: Int, sint: Int) -> SynICPostResult {
        guard let box = box(vp), (0..<SynICLayout.sintCount).contains(sint) else {
            return SynICPostResult(disposition: .invalidTarget)
        }
        return box.state.withLock { state in
            guard state.enqueue(message, sint: sint, limit: queueLimit) else {
                return SynICPostResult(disposition: .dropped)
            }
            let (delivered, interrupt) = state.deliverHead(sint: sint, vp: vp, memory: memory)
            return SynICPostResult(disposition: delivered ? .delivered : .queued, interrupt: interrupt)
        }
    }

    /// Sets event flag `flag` (VMBus: the channel relid) in SINT `sint`'s set of VP `vp`.
    public func signalEvent(vp: Int, sint: Int, flag: Int) -> SynICEventResult {
        guard let box = box(vp), (0..<SynICLayout.sintCount).contains(sint),
              (0..<SynICLayout.eventFlagsPerSINT).contains(flag) else { return .invalidTarget }
        return box.state.withLock { $0.setEventFlag(sint: sint, flag: flag, vp: vp, memory: memory) }
    }

    /// Retries queued messages of `vp` (EOM does this itself; use after anything else that may
    /// have freed a slot).
    public func retryDelivery(vp: Int) -> [SynICInterrupt] {
        guard let box = box(vp) else { return [] }
        return box.state.withLock { $0.deliverAll(vp: vp, memory: memory) }
    }

    /// Drops messages still queued for SINT `sint` on every VP, e.g. VMBus replies from before
    /// the guest reconnected (they would confuse the new connection). A message already in a
    /// slot stays: the guest owns it.
    public func discardQueuedMessages(sint: Int) {
        guard (0..<SynICLayout.sintCount).contains(sint) else { return }
        for vp in vps { vp.state.withLock { $0.discardQueue(sint: sint) } }
    }

    /// Registers and queue counters of `vp`.
    public func registers(vp: Int) -> SynICRegisters? {
        box(vp)?.state.withLock { $0.registers }
    }

    /// Resets every VP's SynIC (partition reset / reboot): registers to reset values, queues emptied.
    public func reset() {
        for vp in vps { vp.state.withLock { $0.reset() } }
    }

    // MARK: MSR access (called by SyntheticMSRs)

    func read(_ msr: UInt32, vp: Int) -> UInt64? {
        guard let box = box(vp) else { return nil }
        return box.state.withLock { state -> UInt64? in
            let r = state.registers
            switch msr {
            case HyperVMSR.scontrol: return r.scontrol
            case HyperVMSR.sversion: return 1
            case HyperVMSR.siefp: return r.siefp
            case HyperVMSR.simp: return r.simp
            case HyperVMSR.eom: return 0
            default: return HyperVMSR.sintNumber(msr).map { r.sints[$0] }
            }
        }
    }

    func write(_ msr: UInt32, value: UInt64, vp: Int) -> MSRWriteOutcome {
        guard let box = box(vp) else { return .rejected }
        return box.state.withLock { state -> MSRWriteOutcome in
            var autoEOI = false
            switch msr {
            case HyperVMSR.scontrol:
                guard value & ~SynICRegister.enable == 0 else { return .rejected }
                state.registers.scontrol = value
            case HyperVMSR.siefp:
                guard SynICRegister.isValidPageMSR(value) else { return .rejected }
                state.registers.siefp = value
            case HyperVMSR.simp:
                guard SynICRegister.isValidPageMSR(value) else { return .rejected }
                state.registers.simp = value
            case HyperVMSR.eom:
                break
            default:
                guard let sint = HyperVMSR.sintNumber(msr), SynICRegister.isValidSINT(value) else { return .rejected }
                state.registers.sints[sint] = value
                autoEOI = value & SynICRegister.sintAutoEOI != 0
            }
            let interrupts = state.deliverAll(vp: vp, memory: memory)
            return .acceptedWithEffect(.synICUpdated(
                SynICUpdate(vp: vp, msr: msr, interrupts: interrupts, autoEOIRequested: autoEOI)))
        }
    }

    private func box(_ vp: Int) -> VP? {
        vps.indices.contains(vp) ? vps[vp] : nil
    }
}
