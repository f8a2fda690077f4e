import KeelIntegrationServices
import KeelSystem
import KeelVMBus
import Synchronization

/// What the integration services know about the guest, for `keel run`'s log and, later, the
/// management service.
public struct GuestIntegrationState: Sendable, Equatable {
    public enum Heartbeat: Sendable, Equatable {
        /// No heartbeat answered yet (services not loaded, or still negotiating).
        case unknown
        /// The guest answers; `sequence` is its latest reply.
        case healthy(sequence: UInt64)
        /// A heartbeat went unanswered past the timeout.
        case notResponding
    }

    /// The guest's self-description from the GUEST_OS_ID MSR, e.g. "Linux 6.12.117 (guest OS id …)".
    public var guestOS: String?
    /// Negotiated message version per service name ("heartbeat", "shutdown", "timesync").
    public var versions: [String: String] = [:]
    public var heartbeat: Heartbeat = .unknown
    /// Time-sync samples the guest acknowledged.
    public var timeSamplesAcknowledged = 0
}

/// Shared state of the partition's integration-service devices: their status, the host's
/// pending shutdown request, and the log. The devices run on the VMBus I/O thread; the worker
/// reads the status and queues requests from its own threads.
public final class IntegrationServicesHub: Sendable {
    private let status = Mutex(GuestIntegrationState())
    private let pendingShutdown = Mutex<ShutdownKind?>(nil)
    public let log: @Sendable (String) -> Void
    let guestLog: RateLimitedLog

    public init(log: @escaping @Sendable (String) -> Void) {
        self.log = log
        guestLog = RateLimitedLog(sink: log)
    }

    public var state: GuestIntegrationState { status.withLock { $0 } }

    public func guestIdentified(_ description: String) {
        let changed = status.withLock { s in
            defer { s.guestOS = description }
            return s.guestOS != description
        }
        if changed { log("guest OS: \(description)") }
    }

    /// Queues a shutdown request for the shutdown service; false when the guest has not
    /// negotiated that service (nothing would answer).
    public func requestShutdown(_ kind: ShutdownKind) -> Bool {
        guard status.withLock({ $0.versions[IntegrationServiceKind.shutdown.name] != nil }) else { return false }
        pendingShutdown.withLock { $0 = kind }
        return true
    }

    func takeShutdownRequest() -> ShutdownKind? { pendingShutdown.withLock { r in defer { r = nil }; return r } }

    func record(_ events: [ICEvent], from kind: IntegrationServiceKind) {
        for event in events {
            switch event {
            case let .negotiated(framework, message):
                status.withLock { $0.versions[kind.name] = "\(message)" }
                log("integration services: \(kind.name) version \(message) (framework \(framework))")
            case .negotiationFailed:
                log("integration services: the guest's \(kind.name) service has no version in common with Keel")
            case .heartbeat(let sequence):
                let previous = status.withLock { s in
                    defer { s.heartbeat = .healthy(sequence: sequence) }
                    return s.heartbeat
                }
                if case .healthy = previous {} else { log("guest heartbeat: healthy") }
            case .heartbeatMissed(let ns):
                status.withLock { $0.heartbeat = .notResponding }
                log("guest heartbeat: not responding for \(ns / 1_000_000) ms")
            case .shutdownAccepted(let what):
                log("guest accepted the \(what == .reboot ? "reboot" : "shutdown") request")
            case .shutdownRefused(let code):
                log("guest refused the shutdown request (status 0x\(String(code, radix: 16)))")
            case .timeSynchronized(let sync):
                status.withLock { $0.timeSamplesAcknowledged += 1 }
                if sync { log("time sync: guest clock set from the host") }
            case .diagnostic(let text):
                _ = guestLog.log("integration services (\(kind.name)): \(text)")
            }
        }
    }

    func closed(_ kind: IntegrationServiceKind) {
        status.withLock { s in
            s.versions[kind.name] = nil
            if kind == .heartbeat { s.heartbeat = .unknown }
        }
    }
}

/// One integration service (heartbeat, shutdown or time sync) as a VMBus device.
public struct IntegrationServiceDevice: VMBusDevice {
    private var service: IntegrationService
    private let hub: IntegrationServicesHub
    private let clock: @Sendable () -> ICClock

    public init(_ kind: IntegrationServiceKind, hub: IntegrationServicesHub, clock: @escaping @Sendable () -> ICClock) {
        service = IntegrationService(kind: kind)
        self.hub = hub
        self.clock = clock
    }

    public var offer: VMBusChannelOffer { service.kind.offer }

    public mutating func channelOpened(_ channel: inout VMBusChannel) {
        for packet in service.channelOpened(clock: clock()) { channel.send(packet) }
    }

    public mutating func packetReceived(_ packet: VMBusPacket, on channel: inout VMBusChannel) {
        let (packets, events) = service.receive(packet, clock: clock())
        for p in packets { channel.send(p) }
        hub.record(events, from: service.kind)
    }

    public mutating func tick(_ channel: inout VMBusChannel) {
        if service.kind == .shutdown, let request = hub.takeShutdownRequest() {
            if let packet = service.requestShutdown(request) {
                channel.send(packet)
            } else {
                hub.log("integration services: shutdown service not ready; request dropped")
            }
        }
        let (packets, events) = service.tick(clock: clock())
        for p in packets { channel.send(p) }
        hub.record(events, from: service.kind)
    }

    public mutating func channelClosed() { hub.closed(service.kind) }
}
