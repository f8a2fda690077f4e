import CKVM
import KeelHyperV
import KeelIntegrationServices
import KeelKVM
import KeelSystem

/// The partition's reference time (100 ns ticks since the partition started, TLFS), computed
/// from the host TSC the way the guest computes it from the reference TSC page, so the
/// TIME_REF_COUNT MSR, the TSC page and the time-sync service agree.
struct GuestTimeSource: Sendable {
    /// Guest TSC frequency in Hz.
    let tscFrequencyHz: UInt64
    /// Guest TSC minus host TSC (KVM's TSC offset; one value for every vCPU).
    let tscOffset: UInt64
    /// Guest TSC when the partition was created: reference time 0.
    let guestTSCAtStart: UInt64
    let parameters: ReferenceTSCParameters?
    private let startNanoseconds = HostClock.monotonicNanoseconds()

    /// Reads vCPU 0's TSC frequency and offset. Call before the vCPU first runs.
    init(bootProcessor vcpu: KVMVirtualCPU) throws {
        tscFrequencyHz = UInt64(try vcpu.tscKilohertz()) * 1000
        let before = ckvm_rdtsc()
        let guest = try vcpu.msrs([0x10])[0]   // IA32_TSC
        let after = ckvm_rdtsc()
        let host = before &+ (after &- before) / 2
        tscOffset = guest &- host
        guestTSCAtStart = guest
        parameters = ReferenceTSCParameters(tscFrequencyHz: tscFrequencyHz, guestTSCAtStart: guest)
    }

    /// The guest's TSC now.
    func guestTSC() -> UInt64 { ckvm_rdtsc() &+ tscOffset }

    /// Partition reference time now.
    func referenceTime() -> UInt64 {
        if let parameters { return parameters.referenceTime(atGuestTSC: guestTSC()) }
        // No usable TSC frequency: no TSC page is offered; count from the host's monotonic clock.
        return (HostClock.monotonicNanoseconds() &- startNanoseconds) / 100
    }
}

extension GuestTimeSource {
    /// The clock readings the integration services need: host UTC in 100 ns units since 1601
    /// and the guest's reference time at (nearly) the same instant.
    func integrationClock() -> ICClock {
        let reference = referenceTime()
        let utc = HostClock.realtimeNanoseconds() / 100 &+ 116_444_736_000_000_000
        return ICClock(monotonicNanoseconds: HostClock.monotonicNanoseconds(), hostUTC100ns: utc,
                       referenceTime100ns: reference)
    }
}
