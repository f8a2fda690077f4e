import KeelVMBus

/// One integration service on one VMBus channel, as a pure state machine: the caller feeds it
/// channel opens, guest packets and clock ticks, and writes the packets it returns to the
/// host→guest ring. The host speaks first (negotiation), then runs the service's cadence with
/// at most one periodic transaction outstanding; shutdown requests are sent on demand.
public struct IntegrationService: Sendable {
    public let kind: IntegrationServiceKind
    public let heartbeatIntervalNanoseconds: UInt64
    public let timeSyncSampleIntervalNanoseconds: UInt64
    /// How long a heartbeat may stay unanswered before `.heartbeatMissed`.
    public let heartbeatTimeoutNanoseconds: UInt64
    /// Message versions offered in the negotiation (e.g. only 3.0 for time sync without a reference clock).
    public let messageVersions: [ICVersion]
    /// The versions the guest chose; nil until negotiation succeeds.
    public internal(set) var negotiated: ICNegotiatedVersions?

    /// Most shutdown requests kept waiting for an answer; older ones are forgotten.
    static let maxPendingShutdowns = 8

    struct Pending: Sendable {
        enum Purpose: Sendable, Equatable {
            case negotiate, heartbeat(sequence: UInt64), timeSync(sync: Bool), shutdown(ShutdownKind)
        }
        var transactionID: UInt64
        var messageType: UInt16
        var sentAt: UInt64
        var purpose: Purpose
    }

    var nextTransactionID: UInt64 = 1
    var pending: [Pending] = []
    var heartbeatSequence: UInt64 = 0
    var nextHeartbeatAt: UInt64 = 0
    var heartbeatMissReported = false
    var nextTimeSyncAt: UInt64 = 0
    var timeSyncSyncSent = false

    public init(kind: IntegrationServiceKind, heartbeatIntervalNanoseconds: UInt64 = 2_000_000_000,
                timeSyncSampleIntervalNanoseconds: UInt64 = 5_000_000_000,
                heartbeatTimeoutNanoseconds: UInt64 = 6_000_000_000, messageVersions: [ICVersion]? = nil) {
        self.kind = kind
        self.heartbeatIntervalNanoseconds = heartbeatIntervalNanoseconds
        self.timeSyncSampleIntervalNanoseconds = timeSyncSampleIntervalNanoseconds
        self.heartbeatTimeoutNanoseconds = heartbeatTimeoutNanoseconds
        self.messageVersions = messageVersions ?? kind.messageVersions
    }

    /// The guest opened the channel: resets the service and returns the negotiate request.
    /// Transaction ids keep counting up across reopens so a stale reply never matches.
    public mutating func channelOpened(clock: ICClock) -> [VMBusPacket] {
        negotiated = nil
        pending = []
        heartbeatSequence = 0
        heartbeatMissReported = false
        timeSyncSyncSent = false
        let frameworks = IntegrationServiceKind.frameworkVersions
        let body = negotiateBody(frameworks: frameworks, messages: messageVersions)
        let packet = send(messageType: ICMessageType.negotiate, purpose: .negotiate, at: clock.monotonicNanoseconds,
                          framework: frameworks.max() ?? ICVersion(1, 0),
                          message: messageVersions.max() ?? ICVersion(1, 0), body: body)
        return [packet]
    }

    /// Periodic work; call at least every ~500 ms. Sends the next heartbeat or time sample when due
    /// and nothing periodic is outstanding, and reports a heartbeat missed past the timeout.
    public mutating func tick(clock: ICClock) -> (packets: [VMBusPacket], events: [ICEvent]) {
        guard negotiated != nil else { return ([], []) }
        let now = clock.monotonicNanoseconds
        var events: [ICEvent] = []
        if let hb = pending.first(where: { $0.messageType == ICMessageType.heartbeat }), !heartbeatMissReported {
            let waited = elapsed(since: hb.sentAt, now: now)
            if waited >= heartbeatTimeoutNanoseconds {
                heartbeatMissReported = true
                events.append(.heartbeatMissed(outstandingFor: waited))
            }
        }
        return (periodicRequests(clock: clock), events)
    }

    /// Host-initiated clean shutdown or reboot. Nil unless this is the shutdown service and it is
    /// negotiated (the caller then falls back to a forced power-off).
    public mutating func requestShutdown(_ shutdownKind: ShutdownKind, force: Bool = false) -> VMBusPacket? {
        guard kind == .shutdown, negotiated != nil else { return nil }
        let shutdowns = pending.filter { $0.messageType == ICMessageType.shutdown }
        if shutdowns.count >= Self.maxPendingShutdowns, let oldest = shutdowns.first {
            pending.removeAll { $0.transactionID == oldest.transactionID }
        }
        return send(messageType: ICMessageType.shutdown, purpose: .shutdown(shutdownKind), at: 0,
                    body: shutdownBody(shutdownKind, force: force))
    }

    /// The next monotonic time at which `tick` has something to do; nil if nothing is scheduled.
    public func nextDeadline() -> UInt64? {
        guard negotiated != nil else { return nil }
        switch kind {
        case .shutdown:
            return nil
        case .heartbeat:
            guard let hb = pending.first(where: { $0.messageType == ICMessageType.heartbeat }) else { return nextHeartbeatAt }
            return heartbeatMissReported ? nil : addingSaturated(hb.sentAt, heartbeatTimeoutNanoseconds)
        case .timeSync:
            return pending.contains { $0.messageType == ICMessageType.timeSync } ? nil : nextTimeSyncAt
        }
    }

    /// Sends whatever periodic request is due, if none is outstanding.
    mutating func periodicRequests(clock: ICClock) -> [VMBusPacket] {
        let now = clock.monotonicNanoseconds
        guard negotiated != nil, !pending.contains(where: { $0.messageType != ICMessageType.shutdown }) else { return [] }
        switch kind {
        case .heartbeat where now >= nextHeartbeatAt:
            nextHeartbeatAt = addingSaturated(now, heartbeatIntervalNanoseconds)
            let sequence = heartbeatSequence
            heartbeatSequence &+= 1
            return [send(messageType: ICMessageType.heartbeat, purpose: .heartbeat(sequence: sequence), at: now,
                         body: heartbeatBody(sequence: sequence))]
        case .timeSync where now >= nextTimeSyncAt:
            nextTimeSyncAt = addingSaturated(now, timeSyncSampleIntervalNanoseconds)
            let sync = !timeSyncSyncSent
            timeSyncSyncSent = true
            return [send(messageType: ICMessageType.timeSync, purpose: .timeSync(sync: sync), at: now,
                         body: timeSyncBody(clock: clock, sync: sync))]
        default:
            return []
        }
    }

    /// Records a pending transaction and builds its packet (negotiated versions unless given).
    mutating func send(messageType: UInt16, purpose: Pending.Purpose, at now: UInt64,
                       framework: ICVersion? = nil, message: ICVersion? = nil, body: [UInt8]) -> VMBusPacket {
        let id = nextTransactionID
        nextTransactionID &+= 1
        if nextTransactionID == 0 { nextTransactionID = 1 }
        pending.append(Pending(transactionID: id, messageType: messageType, sentAt: now, purpose: purpose))
        return icRequestPacket(transactionID: id,
                               framework: framework ?? negotiated?.framework ?? ICVersion(1, 0),
                               messageType: messageType,
                               message: message ?? negotiated?.message ?? ICVersion(1, 0), body: body)
    }
}
